"""The pure-Python Ed25519 verifier agrees with RFC 8032's test vectors and with ``cryptography``."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from governance import ed25519

# RFC 8032, section 7.1: TEST 1, TEST 2, TEST 3 (secret key, public key, message, signature).
RFC_8032 = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
]


@pytest.mark.parametrize(("secret", "public", "message", "signature"), RFC_8032)
def test_the_rfc_8032_vectors_hold(secret: str, public: str, message: str, signature: str) -> None:
    assert ed25519.public_key(bytes.fromhex(secret)).hex() == public
    assert ed25519.sign(bytes.fromhex(secret), bytes.fromhex(message)).hex() == signature
    assert ed25519.verify(bytes.fromhex(public), bytes.fromhex(message), bytes.fromhex(signature))


def test_signatures_made_by_cryptography_verify_and_any_change_fails() -> None:
    for size in (0, 1, 63, 64, 1000):
        key = Ed25519PrivateKey.generate()
        public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        message = bytes(range(256))[:size] * 1
        signature = key.sign(message)
        assert ed25519.verify(public, message, signature)
        assert not ed25519.verify(public, message + b"x", signature)
        for index in (0, 31, 32, 63):
            flipped = bytearray(signature)
            flipped[index] ^= 1
            assert not ed25519.verify(public, message, bytes(flipped))


def test_malformed_keys_and_signatures_are_refused() -> None:
    _, public, _, signature = RFC_8032[0]
    key, sig = bytes.fromhex(public), bytes.fromhex(signature)
    assert not ed25519.verify(key[:31], b"", sig)
    assert not ed25519.verify(key, b"", sig[:63])
    # S + L verifies the same equation but the RFC requires S < L (no malleability).
    s = int.from_bytes(sig[32:], "little") + ed25519.L
    assert not ed25519.verify(key, b"", sig[:32] + s.to_bytes(32, "little"))
    assert not ed25519.verify(b"\xff" * 32, b"", sig)
