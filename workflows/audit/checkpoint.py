"""Signed checkpoints: the statement an Ed25519 key signs over a Merkle tree head, and its checks.

A checkpoint is the payload of a ``CheckpointRecorded`` event in the ``$checkpoints``
stream. It states the tree head (``tree_size``, ``root``, see ``governance.merkle``)
of the global log's first ``tree_size`` events, when it was signed, and the head of
the checkpoint before it; the signature covers exactly :func:`statement`. It also
carries a consistency proof from the previous head (so a verifier holding only the
checkpoints can tell that the log only grew) and the tree's ``frontier`` (so the
next checkpoint starts from it instead of re-reading the whole log; its fold must
equal ``root``, so it cannot lie).

Standard library only: ``verify-bundle`` checks checkpoints with these functions and
the pure-Python ``governance.ed25519``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, Final

from governance import ed25519, merkle
from governance.chain import canonical_json

CHECKPOINT_RECORDED: Final = "CheckpointRecorded"
FORMAT: Final = "govflow-checkpoint/1"
STATEMENT_KEYS: Final = ("format", "previous", "public_key", "root", "signed_at", "tree_size")

Verifier = Callable[[bytes, bytes, bytes], bool]
"""``verify(public_key, message, signature)``: Ed25519 verification."""


def statement(payload: dict[str, Any]) -> bytes:
    """The signed message: canonical JSON of the payload's :data:`STATEMENT_KEYS`, UTF-8."""
    return canonical_json({key: payload[key] for key in STATEMENT_KEYS}).encode("utf-8")


def key_id(public_key: bytes) -> str:
    """A short name for a public key: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def unsigned_payload(
    *,
    tree_size: int,
    frontier: merkle.Frontier,
    signed_at: str,
    public_key: bytes,
    previous: dict[str, Any] | None,
    consistency: list[bytes],
) -> dict[str, Any]:
    """A checkpoint payload without its signature (add ``signature`` = sign(statement))."""
    return {
        "format": FORMAT,
        "tree_size": tree_size,
        "root": frontier.root().hex(),
        "signed_at": signed_at,
        "previous": None if previous is None else {"tree_size": previous["tree_size"], "root": previous["root"]},
        "consistency": [node.hex() for node in consistency],
        "frontier": [node.hex() for node in frontier.stack],
        "public_key": public_key.hex(),
        "key_id": key_id(public_key),
    }


def _hex(payload: dict[str, Any], key: str, size: int) -> bytes:
    value = payload.get(key)
    if not isinstance(value, str) or len(value) != 2 * size:
        raise ValueError(f"'{key}' is not {size} bytes of hex")
    return bytes.fromhex(value)


def well_formed(payload: Any) -> bool:
    """Whether ``payload`` has the fields of a checkpoint, with the right types."""
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        return False
    try:
        size = payload["tree_size"]
        _hex(payload, "public_key", ed25519.PUBLIC_KEY_SIZE)
        _hex(payload, "signature", ed25519.SIGNATURE_SIZE)
        _hex(payload, "root", 32)
        statement(payload)
        [bytes.fromhex(node) for node in payload.get("frontier", [])]
    except (KeyError, ValueError, TypeError):
        return False
    return type(size) is int and size >= 0


def problems(payload: Any, trusted_key: bytes | None, verify: Verifier = ed25519.verify) -> list[str]:
    """What is wrong with one checkpoint on its own: format, signature, key, frontier."""
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        return [f"not a {FORMAT} checkpoint"]
    try:
        size = payload["tree_size"]
        if type(size) is not int or size < 0:
            raise ValueError("'tree_size' is not a whole number")
        public = _hex(payload, "public_key", ed25519.PUBLIC_KEY_SIZE)
        signature = _hex(payload, "signature", ed25519.SIGNATURE_SIZE)
        root = _hex(payload, "root", 32)
        message = statement(payload)
        stack = [bytes.fromhex(node) for node in payload.get("frontier", [])]
    except (KeyError, ValueError, TypeError) as error:
        return [f"malformed checkpoint: {error}"]
    found: list[str] = []
    if trusted_key is not None and public != trusted_key:
        found.append(f"signed by key {key_id(public)}, not the trusted key {key_id(trusted_key)}")
    if not verify(public, message, signature):
        found.append("the signature does not verify: the checkpoint was altered or forged")
    try:
        if merkle.Frontier.resume(stack, size).root() != root:
            found.append("its frontier does not fold to its root")
    except ValueError as error:
        found.append(f"bad frontier: {error}")
    return found


def link_problems(previous: dict[str, Any] | None, payload: dict[str, Any]) -> list[str]:
    """Whether ``payload`` links to ``previous`` (the checkpoint before it) and extends its tree."""
    stated = payload.get("previous")
    if previous is None:
        return [] if stated is None else ["links to a previous checkpoint that is not there"]
    if stated is None:
        return ["does not link to the checkpoint before it"]
    if not isinstance(stated, dict):
        return ["has a malformed link to the checkpoint before it"]
    if stated != {"tree_size": previous["tree_size"], "root": previous["root"]}:
        return [
            f"links to a head of size {stated.get('tree_size')} root {str(stated.get('root'))[:12]}…, "
            f"but the checkpoint before it has size {previous['tree_size']} root {previous['root'][:12]}…"
        ]
    old_size, new_size = previous["tree_size"], payload["tree_size"]
    if new_size < old_size:
        return [f"its tree ({new_size}) is smaller than the previous one ({old_size}): the log shrank"]
    if old_size == 0:
        return []
    try:
        proof = [bytes.fromhex(node) for node in payload.get("consistency", [])]
        consistent = merkle.verify_consistency(
            old_size, new_size, bytes.fromhex(previous["root"]), bytes.fromhex(payload["root"]), proof
        )
    except (ValueError, TypeError):
        consistent = False
    if not consistent:
        return [f"the consistency proof from size {old_size} to {new_size} fails: the log was rewritten"]
    return []
