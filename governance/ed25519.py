"""Ed25519 signature verification in pure Python (RFC 8032, section 5.1), standard library only.

Checkpoints are signed with the ``cryptography`` package (``workflows.audit.signing``);
this module lets an auditor verify those signatures with nothing but Python, so that
``govflow audit verify-bundle`` needs no third-party code. It follows the RFC's
reference implementation (section 6): extended homogeneous coordinates, cofactorless
verification ``[S]B = R + [k]A``, and the RFC's decoding checks (``S < L``, canonical
point encodings).

``sign`` is here only to check the arithmetic against the RFC's test vectors: it is
not constant-time, so it must never sign with a real key.
"""

from __future__ import annotations

import hashlib
from typing import Final

Point = tuple[int, int, int, int]

P: Final = 2**255 - 19
L: Final = 2**252 + 27742317777372353535851937790883648493
D: Final = -121665 * pow(121666, P - 2, P) % P
SQRT_M1: Final = pow(2, (P - 1) // 4, P)
_GY: Final = 4 * pow(5, P - 2, P) % P
PUBLIC_KEY_SIZE: Final = 32
SIGNATURE_SIZE: Final = 64


def _recover_x(y: int, sign: int) -> int | None:
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P)
    if x2 % P == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None
    if (x & 1) != sign:
        x = P - x
    return x


_GX: Final = _recover_x(_GY, 0) or 0
BASE: Final[Point] = (_GX, _GY, 1, _GX * _GY % P)
IDENTITY: Final[Point] = (0, 1, 1, 0)


def _add(p: Point, q: Point) -> Point:
    a = (p[1] - p[0]) * (q[1] - q[0]) % P
    b = (p[1] + p[0]) * (q[1] + q[0]) % P
    c = 2 * p[3] * q[3] * D % P
    d = 2 * p[2] * q[2] % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _multiply(scalar: int, point: Point) -> Point:
    result = IDENTITY
    while scalar > 0:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _equal(p: Point, q: Point) -> bool:
    # Projective coordinates: x1/z1 == x2/z2 and y1/z1 == y2/z2.
    return (p[0] * q[2] - q[0] * p[2]) % P == 0 and (p[1] * q[2] - q[1] * p[2]) % P == 0


def _compress(point: Point) -> bytes:
    z_inv = pow(point[2], P - 2, P)
    x = point[0] * z_inv % P
    y = point[1] * z_inv % P
    return int.to_bytes(y | ((x & 1) << 255), 32, "little")


def _decompress(data: bytes) -> Point | None:
    if len(data) != 32:
        return None
    y = int.from_bytes(data, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % P)


def _sha512_int(data: bytes) -> int:
    return int.from_bytes(hashlib.sha512(data).digest(), "little")


def _secret_expand(secret: bytes) -> tuple[int, bytes]:
    if len(secret) != 32:
        raise ValueError("an Ed25519 secret key is 32 bytes")
    digest = hashlib.sha512(secret).digest()
    scalar = int.from_bytes(digest[:32], "little")
    scalar &= (1 << 254) - 8
    scalar |= 1 << 254
    return scalar, digest[32:]


def public_key(secret: bytes) -> bytes:
    """The 32-byte public key of a 32-byte secret key."""
    scalar, _ = _secret_expand(secret)
    return _compress(_multiply(scalar, BASE))


def sign(secret: bytes, message: bytes) -> bytes:
    """A signature by the RFC's reference algorithm; NOT constant-time: for test vectors only."""
    scalar, prefix = _secret_expand(secret)
    encoded_a = _compress(_multiply(scalar, BASE))
    r = _sha512_int(prefix + message) % L
    encoded_r = _compress(_multiply(r, BASE))
    h = _sha512_int(encoded_r + encoded_a + message) % L
    s = (r + h * scalar) % L
    return encoded_r + int.to_bytes(s, 32, "little")


def verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is a valid Ed25519 signature of ``message`` by ``public``."""
    if len(public) != PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        return False
    a = _decompress(public)
    if a is None:
        return False
    encoded_r = signature[:32]
    r = _decompress(encoded_r)
    if r is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= L:
        return False  # malleable: the RFC requires S < L
    h = _sha512_int(encoded_r + public + message) % L
    return _equal(_multiply(s, BASE), _add(r, _multiply(h, a)))
