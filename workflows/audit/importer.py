"""``govflow audit import``: load a verified bundle into an empty database, in one transaction.

The bundle is first checked by the offline verifier (``verify_bundle``); if anything is
wrong, nothing is written (exit 4). It must then be importable: a checkpoint that covers
every one of its events and stands right after the tree it signs (what ``audit export
--checkpoint`` writes), and an empty target log (exit 2 otherwise). Then, in one write
transaction:

1. the definitions the events name (those not there yet);
2. the instance's events and the bundle's checkpoint, exactly as stored in the source
   (same texts, hashes, versions and positions), with ``executemany`` in batches;
3. a ``BundleImported`` event in the ``$imports`` stream, right after the checkpoint: the
   positions loaded and the subtree hashes standing for the ones left out
   (``workflows.audit.imported``), so that the source checkpoint's tree can be rebuilt;
4. the *seal*: a checkpoint signed by this database's key over that tree plus the two
   events above, linked to the imported checkpoint by a consistency proof. It is what
   lets ``audit verify`` trust the import record (an unsigned record could hide a deletion);
5. the streams projection rows, ``log_head``, and the reminder cursor (moved past the
   imported events: the notifications the instance had are in the source's log, so the
   worker must not plan them afresh as new work).

Only an empty log is accepted: positions are global, so the bundle's positions and
checkpoint only make sense in a log holding nothing else below them, and a second
import would mix two sources' positions and checkpoint chains.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from governance import merkle
from governance.chain import GENESIS_HASH, format_timestamp
from governance.events import NewEvent
from workflows.audit import checkpoint as cp
from workflows.audit import imported, ledger
from workflows.audit.offline import BundleContents, verify_bundle
from workflows.audit.records import CHECKPOINT_STREAM, COLUMNS, StoredEvent
from workflows.database import store_error, write_transaction
from workflows.definition_file import parse_definition
from workflows.errors import BadInput
from workflows.services import is_instance_stream
from workflows.store.base import AppendRequest
from workflows.store.sealing import prepare, seal

BATCH: Final = 1000
_INSERT: Final = f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({{marks}})"
_INSERT_STREAMS: Final = (
    "INSERT INTO streams (stream_id, version, definition_id, definition_hash, phase, created_at, updated_at) "
    "VALUES ({marks})"
)


class BundleRefused(ledger.LogTampered):
    """The bundle fails verification: nothing was imported (exit 4, like ``verify-bundle``)."""


@dataclass(frozen=True)
class Imported:
    """What an import wrote."""

    instance: str
    events: int
    checkpoint: int
    tree_size: int
    seal: int
    key_id: str
    log_head: int


@dataclass(frozen=True)
class Signing:
    """The importer's key, which signs the seal."""

    public_key: bytes
    sign: Callable[[bytes], bytes]


def import_bundle(
    engine: Engine,
    path: Path,
    *,
    trusted_key: bytes | None,
    verify: cp.Verifier,
    signing: Signing,
    now: datetime,
    actor: str,
    meta: dict[str, Any],
) -> Imported:
    """Verify the bundle at ``path`` and load it into the empty log of ``engine``; see the module doc.

    Raises :class:`BundleRefused` (tampered, exit 4), :class:`BadInput` (not importable
    or the log is not empty, exit 2) or ``StoreError``.
    """
    contents = BundleContents()
    report = verify_bundle(path, trusted_key, verify, keep=contents)
    if not report.ok:
        count = len(report.problems)
        raise BundleRefused(
            f"{path} does not verify ({count} problem{'s' if count != 1 else ''}; the first: {report.problems[0]}): "
            "nothing was imported"
        )
    checkpoint, payload = contents.checkpoint, contents.checkpoint_payload
    if checkpoint is None or payload is None:
        raise BadInput(f"{path} holds no checkpoint: export it with `govflow audit export --checkpoint`")
    uncovered = report.events - report.covered
    if uncovered:
        raise BadInput(
            f"{uncovered} of the bundle's events are newer than its checkpoint: "
            "export it again with `govflow audit export --checkpoint`"
        )
    tree_size: int = payload["tree_size"]
    if checkpoint.position != tree_size + 1:
        raise BadInput(
            f"events were recorded between the tree checkpoint {checkpoint.version} signs ({tree_size} events) and "
            f"the checkpoint itself (position {checkpoint.position}): export again with `--checkpoint`"
        )
    assert report.state is not None  # a sound bundle replays
    if not is_instance_stream(report.instance):
        raise BadInput(f"'{report.instance}' is not an instance's stream: only instances are imported")
    rows = contents.events
    fillers = _fillers(rows, contents.proofs, tree_size, payload)
    mark = _marked(contents, checkpoint, tree_size, fillers, path, signing, now, actor, meta)
    seal_payload = ledger.next_payload(
        payload,
        [bytes.fromhex(checkpoint.hash), bytes.fromhex(mark.hash)],
        tree_size + 2,
        public_key=signing.public_key,
        sign=signing.sign,
        now=now,
    )
    sealed = _sealed(
        AppendRequest(
            stream_id=CHECKPOINT_STREAM,
            expected_version=checkpoint.version,
            actor=actor,
            definition_hash="",
            definition_id="audit",
            recorded_at=now,
            phase="checkpoint",
            meta=meta,
        ),
        NewEvent(cp.CHECKPOINT_RECORDED, seal_payload, now),
        position=tree_size + 3,
        prev_hash=checkpoint.hash,
    )
    instance = report.instance
    stamp = format_timestamp(now)
    streams = [
        (instance, rows[-1].version, report.state.definition.id, rows[-1].definition_hash, report.state.phase,
         rows[0].recorded_at, rows[-1].recorded_at),
        (CHECKPOINT_STREAM, sealed.version, "audit", "", "checkpoint", checkpoint.recorded_at, stamp),
        (imported.IMPORTS_STREAM, 1, "audit", "", "imported", stamp, stamp),
    ]  # fmt: skip
    definitions = [
        (digest, parsed.id, parsed.version, text)
        for digest, text in contents.definitions.items()
        for parsed in [parse_definition(text, f"definition {digest[:12]}")]
    ]
    try:
        with write_transaction(engine) as connection:
            _check_empty(connection)
            _insert_definitions(connection, definitions, stamp)
            _insert_events(connection, [*rows, checkpoint, mark, sealed])
            connection.exec_driver_sql(_placeholders(_INSERT_STREAMS, 7, connection), streams)
            head = (sealed.position,)
            for table in ("log_head", "notification_cursor"):
                sql = f"UPDATE {table} SET position = {{marks}} WHERE id = 1"
                connection.exec_driver_sql(_placeholders(sql, 1, connection), head)
    except DBAPIError as error:
        raise store_error(engine, error, f"import {path.name}") from error
    return Imported(
        instance=instance,
        events=len(rows),
        checkpoint=checkpoint.version,
        tree_size=tree_size,
        seal=sealed.version,
        key_id=cp.key_id(signing.public_key),
        log_head=sealed.position,
    )


def _fillers(
    rows: Sequence[StoredEvent], proofs: dict[int, list[str]], tree_size: int, payload: dict[str, Any]
) -> list[imported.Filler]:
    """The subtrees standing for the positions left out, checked to rebuild the signed root."""
    indices = [row.position - 1 for row in rows]
    paths = {row.position - 1: proofs[row.position] for row in rows}
    stack = [bytes.fromhex(node) for node in payload["frontier"]]
    fillers = imported.fillers_from_proofs(indices, paths, tree_size, stack)
    frontier = merkle.Frontier()
    leaves = [(row.position - 1, merkle.leaf_hash(bytes.fromhex(row.hash))) for row in rows]
    gaps = imported.feed(frontier, leaves, fillers, tree_size)
    if gaps or frontier.root().hex() != payload["root"]:
        # Each proof held on its own, so this would take proofs that disagree with each other.
        raise BundleRefused("the bundle's inclusion proofs do not make one tree: nothing was imported")
    return fillers


def _marked(
    contents: BundleContents,
    checkpoint: StoredEvent,
    tree_size: int,
    fillers: list[imported.Filler],
    path: Path,
    signing: Signing,
    now: datetime,
    actor: str,
    meta: dict[str, Any],
) -> StoredEvent:
    """The ``BundleImported`` event, sealed at the position after the imported checkpoint."""
    with path.open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    data = imported.mark_payload(
        instance=str(contents.header.get("instance")),
        checkpoint=checkpoint,
        tree_size=tree_size,
        positions=[row.position for row in contents.events],
        fillers=fillers,
        bundle_sha256=digest,
        exported_at=str(contents.header.get("exported_at")),
        events=len(contents.events),
    )
    data["key_id"] = cp.key_id(bytes.fromhex(str(contents.header.get("public_key"))))
    data["sealed_by"] = cp.key_id(signing.public_key)
    request = AppendRequest(
        stream_id=imported.IMPORTS_STREAM,
        expected_version=0,
        actor=actor,
        definition_hash="",
        definition_id="audit",
        recorded_at=now,
        phase="imported",
        meta=meta,
    )
    return _sealed(request, NewEvent(imported.BUNDLE_IMPORTED, data, now), position=checkpoint.position + 1)


def _sealed(request: AppendRequest, event: NewEvent, *, position: int, prev_hash: str = GENESIS_HASH) -> StoredEvent:
    texts, meta, recorded_at = prepare(request, [event])
    (row,) = seal(
        request,
        texts,
        meta,
        recorded_at,
        first_version=request.expected_version + 1,
        first_position=position,
        prev_hash=prev_hash,
    )
    return row


def _check_empty(connection: Connection) -> None:
    lock = " FOR UPDATE" if connection.dialect.name == "postgresql" else ""
    # Locking log_head first makes a concurrent append or import wait, then see a non-empty log.
    head: int = connection.exec_driver_sql(f"SELECT position FROM log_head WHERE id = 1{lock}").scalar_one()
    held: int = connection.exec_driver_sql(
        "SELECT COUNT(*) FROM (SELECT 1 FROM events LIMIT 1) AS anything"
    ).scalar_one()
    if head or held:
        raise BadInput(
            f"the database already holds events (up to position {head}): "
            "`audit import` loads a bundle only into an empty database (`govflow init` a new one)"
        )


def _insert_definitions(connection: Connection, definitions: list[tuple[str, str, str, str]], stamp: str) -> None:
    have = {row[0] for row in connection.exec_driver_sql("SELECT hash FROM definitions")}
    new = [(*definition, stamp) for definition in definitions if definition[0] not in have]
    if new:
        sql = "INSERT INTO definitions (hash, definition_id, version, content, registered_at) VALUES ({marks})"
        connection.exec_driver_sql(_placeholders(sql, 5, connection), new)


def _insert_events(connection: Connection, rows: Sequence[StoredEvent]) -> None:
    sql = _placeholders(_INSERT, len(COLUMNS), connection)
    for start in range(0, len(rows), BATCH):
        connection.exec_driver_sql(sql, list(rows[start : start + BATCH]))


def _placeholders(sql: str, count: int, connection: Connection) -> str:
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    return sql.format(marks=", ".join([mark] * count))
