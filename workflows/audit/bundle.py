"""``govflow audit export``: one instance's evidence as a self-contained bundle.

JSON Lines (the evidence; format in ``docs/audit-bundle.md``): a header, the text of
every definition the events ran under, the newest signed checkpoint (itself a stored
event), then the instance's events exactly as stored, each with its inclusion proof
in that checkpoint's tree. Every line is canonical JSON, so any changed byte either
breaks the JSON, its canonical form, a hash, a proof or the signature.

CSV is a reading copy for spreadsheets: one row per event with the stored texts
(so hashes can still be recomputed), but no definitions or checkpoint.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from governance.chain import canonical_json
from workflows.audit.checkpoint import key_id
from workflows.audit.ledger import Checkpoint, checkpoints, inclusion_proofs
from workflows.audit.log import AuditLog
from workflows.audit.offline import BUNDLE_FORMAT
from workflows.audit.records import CHECKPOINT_STREAM, COLUMNS, StoredEvent, as_json
from workflows.errors import BadInput, StoreError, UnknownInstance
from workflows.store.base import EventStore

FORMATS: Final = ("jsonl", "csv")


@dataclass(frozen=True)
class Exported:
    """What an export wrote."""

    path: Path
    events: int
    covered: int
    checkpoint: int | None

    @property
    def uncovered(self) -> int:
        return self.events - self.covered


def _proof(checkpoint: Checkpoint | None, position: int, paths: dict[int, list[str]]) -> dict[str, Any] | None:
    if checkpoint is None or position not in paths:
        return None
    return {
        "checkpoint": checkpoint.version,
        "tree_size": checkpoint.tree_size,
        "leaf_index": position - 1,
        "path": paths[position],
    }


def _lines(store: EventStore, log: AuditLog, instance: str, exported_at: str) -> tuple[list[dict[str, Any]], Exported]:
    rows = list(log.iter_stream(instance))  # one instance: small
    if not rows:
        raise UnknownInstance(instance)
    recorded = checkpoints(log)
    newest = recorded[-1] if recorded else None
    covered = [row.position for row in rows if newest is not None and row.position <= newest.tree_size]
    paths = inclusion_proofs(log, newest, covered) if newest is not None and covered else {}
    lines: list[dict[str, Any]] = [
        {
            "kind": "header",
            "format": BUNDLE_FORMAT,
            "instance": instance,
            "exported_at": exported_at,
            "events": len(rows),
            "checkpoint": newest.version if newest else None,
            "public_key": newest.payload["public_key"] if newest else None,
            "key_id": key_id(bytes.fromhex(newest.payload["public_key"])) if newest else None,
        }
    ]
    for digest in sorted({row.definition_hash for row in rows}):
        text = store.load_definition(digest)
        if text is None:
            raise StoreError(f"definition {digest[:12]}… is missing from the database")
        lines.append({"kind": "definition", "hash": digest, "text": text})
    if newest is not None:
        checkpoint_row = next(r for r in log.iter_stream(CHECKPOINT_STREAM) if r.version == newest.version)
        lines.append({"kind": "checkpoint", **as_json(checkpoint_row)})
    for row in rows:
        lines.append({"kind": "event", **as_json(row), "proof": _proof(newest, row.position, paths)})
    summary = Exported(Path(), len(rows), len(covered), newest.version if newest else None)
    return lines, summary


def export_bundle(
    store: EventStore, log: AuditLog, instance: str, out: Path, *, fmt: str = "jsonl", exported_at: str
) -> Exported:
    """Write the bundle of ``instance`` to ``out`` (atomically: a partial file never appears)."""
    if fmt not in FORMATS:
        raise BadInput(f"unknown bundle format '{fmt}' (known: {', '.join(FORMATS)})")
    lines, summary = _lines(store, log, instance, exported_at)
    temporary = out.with_name(f".{out.name}.partial")
    try:
        with temporary.open("w", encoding="utf-8", newline="") as handle:
            if fmt == "jsonl":
                handle.writelines(canonical_json(line) + "\n" for line in lines)
            else:
                _write_csv(handle, (line for line in lines if line["kind"] == "event"))
        os.replace(temporary, out)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise BadInput(f"cannot write {out}: {error.strerror}") from None
    return Exported(out, summary.events, summary.covered, summary.checkpoint)


def _write_csv(handle: Any, events: Iterable[dict[str, Any]]) -> None:
    writer = csv.writer(handle)
    writer.writerow([*COLUMNS, "proof_checkpoint", "proof_path"])
    for line in events:
        row = StoredEvent(**{name: line[name] for name in COLUMNS})
        texts = row._replace(data=canonical_json(line["data"]), meta=canonical_json(line["meta"]))
        proof = line["proof"]
        writer.writerow(
            [*texts, proof["checkpoint"] if proof else "", " ".join(proof["path"]) if proof else ""],
        )
