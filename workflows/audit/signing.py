"""The checkpoint signing key: Ed25519 with the ``cryptography`` package.

The private key is a PEM (PKCS#8) file named by ``[audit] signing_key`` in the
configuration, relative to the configuration file's folder; ``govflow init``
creates it (mode 0600) when it is absent. Signing needs it; verifying a live log
only needs its public half, and verifying a bundle needs neither (the bundle
carries the public key and ``governance.ed25519`` verifies without this module).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from workflows.config import Settings
from workflows.errors import BadInput, ConfigError


def key_path(settings: Settings) -> Path:
    """Where the signing key lives: ``[audit] signing_key``, relative to the config file's folder."""
    path = Path(str(settings.get("audit", "signing_key"))).expanduser()
    return path if path.is_absolute() else settings.base_dir / path


def ensure_key(path: Path) -> bool:
    """Create an Ed25519 private key at ``path`` unless one is there; True when created."""
    if path.exists():
        load_signer(path)  # an unreadable or foreign file must not pass silently
        return False
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two `govflow init` at once must not both write a key.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    except OSError as error:
        raise ConfigError(f"audit.signing_key: cannot create {path}: {error.strerror}") from None
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    return True


@dataclass(frozen=True)
class Signer:
    """A loaded private key."""

    _key: Ed25519PrivateKey
    public_key: bytes

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)


def load_signer(path: Path) -> Signer:
    """The key at ``path``; raises :class:`BadInput` when it is missing or not an Ed25519 key."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BadInput(f"no signing key at {path} (audit.signing_key): run `govflow init` to create one") from None
    except OSError as error:
        raise BadInput(f"cannot read the signing key {path}: {error.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise BadInput(f"{path} is not an unencrypted PEM private key (audit.signing_key)") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BadInput(f"{path} is not an Ed25519 key (audit.signing_key)")
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return Signer(key, public)


def trusted_public_key(path: Path) -> bytes | None:
    """The public half of the configured key, or None when there is no key file."""
    return load_signer(path).public_key if path.exists() else None


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Ed25519 verification by ``cryptography`` (fast); same answer as ``governance.ed25519.verify``."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
