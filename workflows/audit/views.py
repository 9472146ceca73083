"""What the audit commands print: JSON as built, or text laid out for a person.

Standard library only, like the offline verifier that uses it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from workflows.audit.diff import event_view, local_date, state_view
from workflows.audit.integrity import Finding
from workflows.audit.replay import BY_OCCURRED, Replayed
from workflows.errors import BadInput

_HEX_KEY = re.compile(r"[0-9a-fA-F]{64}")
_MEANING = {
    "occurred": "what had happened by then, including decisions entered later",
    "recorded": "what the record showed at that moment",
}


def show(value: Any, as_json: bool) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False) if as_json else value)


def public_key_arg(text: str | None) -> bytes | None:
    """A public key given as 64 hex digits, or as a file holding them."""
    if text is None:
        return None
    candidate = text.strip()
    if not _HEX_KEY.fullmatch(candidate):
        path = Path(text)
        try:
            candidate = path.read_text(encoding="utf-8").strip()
        except OSError:
            raise BadInput(f"--key: '{text}' is neither 64 hex digits nor a readable file") from None
        if not _HEX_KEY.fullmatch(candidate):
            raise BadInput(f"--key: {path} does not hold a public key as 64 hex digits")
    return bytes.fromhex(candidate)


def replay_json(replayed: Replayed) -> dict[str, Any]:
    """``status --json`` as of the replay's moment, plus the events behind it."""
    status = state_view(replayed) or {}
    return {
        **status,
        "replay": {
            "as_of": replayed.as_of.isoformat(),
            "by": replayed.by,
            "meaning": _MEANING[replayed.by],
            "events_applied": len(replayed.applied),
            "events_not_yet_in_effect": replayed.later,
            "held_back": [{"version": r.version, "type": r.type, "why": why} for r, why in replayed.held_back],
        },
        "events": [event_view(row) for row in replayed.applied],
    }


def _line(event: dict[str, Any]) -> str:
    return (
        f"    v{event['version']:<4} {event['occurred_at'][:16]}  recorded {event['recorded_at'][:16]}  "
        f"{event['type']:<20} by {event['actor']}"
    )


def replay_text(replayed: Replayed) -> str:
    from workflows.report import status_text

    assert replayed.instance is not None
    definition = replayed.instance.definition
    day = local_date(replayed.as_of, replayed)
    lines = [
        f"as of {replayed.as_of.isoformat()} ({day.isoformat()}), by {replayed.by}: {_MEANING[replayed.by]}",
        f"replayed under {definition.id} {definition.version} (sha256 {definition.content_hash[:12]}…) "
        "and the calendar recorded when the instance started",
        status_text(state_view(replayed) or {}),
        f"  events behind it ({len(replayed.applied)}; {replayed.later} later not yet in effect)",
        *(_line(event_view(row)) for row in replayed.applied),
    ]
    if replayed.held_back:
        lines.append("  held back (dated in time, but they depend on later facts)")
        lines.extend(f"    v{row.version} {row.type}: {why}" for row, why in replayed.held_back)
    if replayed.by == BY_OCCURRED and any(r.recorded_at[:10] > r.occurred_at[:10] for r in replayed.applied):
        lines.append("  (some events were entered after they happened; --by recorded shows the record as it stood)")
    return "\n".join(lines)


def _findings(findings: list[Finding]) -> list[str]:
    return [f"  {finding}" for finding in findings]


def verify_text(report: Any) -> str:
    scope = "the whole log" if report.scope == "log" else f"instance '{report.scope}'"
    summary = (
        f"{scope}: {report.events} events in {report.streams} stream(s), {report.checkpoints} checkpoint(s); "
        f"the newest covers {report.covered} events"
    )
    if report.imported is not None:
        summary += (
            f"\npositions 1 to {report.imported} were imported from a bundle: the source log's other events "
            "there are absent, and the signed checkpoints show they were left out, not deleted"
        )
    if report.ok:
        return f"{summary}\nOK: hash chains, versions, positions and signed checkpoints all hold"
    more = [f"  … and {report.dropped} more"] if report.dropped else []
    count = len(report.findings) + report.dropped
    return "\n".join([summary, f"TAMPERING FOUND: {count} problem(s)", *_findings(report.findings), *more])


def checkpoint_json(made: Any) -> dict[str, Any]:
    return {"checkpoint": made.version, "position": made.position, "payload": made.payload}


def checkpoint_text(made: Any) -> str:
    payload = made.payload
    return (
        f"checkpoint {made.version} signed (position {made.position}): the first {payload['tree_size']} events, "
        f"root {payload['root']}\n  key {payload['key_id']} (public key {payload['public_key']})"
    )


def proof_text(answer: dict[str, Any]) -> str:
    if answer["kind"] == "inclusion":
        head = (
            f"'{answer['instance']}' version {answer['version']} (position {answer['position']}, "
            f"hash {answer['event_hash'][:16]}…) is leaf {answer['leaf_index']} of checkpoint {answer['checkpoint']} "
            f"(tree of {answer['tree_size']} events, root {answer['root'][:16]}…)"
        )
    else:
        old, new = answer["old"], answer["new"]
        head = (
            f"checkpoint {new['checkpoint']} ({new['tree_size']} events) extends checkpoint {old['checkpoint']} "
            f"({old['tree_size']} events)"
        )
    state = "verifies" if answer["verified"] else "FAILS"
    return "\n".join([head, f"proof of {len(answer['path'])} hash(es) {state}:", *(f"  {h}" for h in answer["path"])])


def export_text(exported: Any) -> str:
    text = f"wrote {exported.path}: {exported.events} events"
    if exported.checkpoint is None:
        return text + "; no checkpoint yet, so nothing is signed (run `govflow audit checkpoint` first)"
    text += f", {exported.covered} proven in checkpoint {exported.checkpoint}"
    if exported.uncovered:
        text += f"; {exported.uncovered} newer event(s) are not covered (run `govflow audit checkpoint`)"
    return text


def import_json(done: Any) -> dict[str, Any]:
    return {
        "instance": done.instance,
        "events": done.events,
        "checkpoint": done.checkpoint,
        "tree_size": done.tree_size,
        "seal": done.seal,
        "key_id": done.key_id,
        "log_head": done.log_head,
    }


def import_text(done: Any) -> str:
    return (
        f"imported {done.events} events of '{done.instance}' with checkpoint {done.checkpoint} "
        f"(a tree of {done.tree_size} events of the source log); sealed by checkpoint {done.seal}, "
        f"signed with key {done.key_id}"
    )


def bundle_text(report: Any) -> str:
    from workflows.report import status_text

    key = f"key {report.key_id}" + (
        " (pinned with --key)" if report.pinned else " (the bundle's own; pin it with --key)"
    )
    lines = [
        f"{report.path}: {report.events} events of '{report.instance}', "
        + (
            f"{report.covered} proven in checkpoint {report.checkpoint} signed by {key}"
            if report.checkpoint
            else "no checkpoint"
        )
    ]
    if report.ok:
        lines.append("OK: every line, hash, link, proof and signature holds")
    else:
        lines.append(f"TAMPERING FOUND: {len(report.problems)} problem(s)")
        lines.extend(f"  {p}" for p in report.problems)
    if report.status is not None:
        lines.append("replayed final state:")
        lines.append(status_text(report.status))
    return "\n".join(lines)


def diff_text(changes: dict[str, Any]) -> str:
    phase = changes["phase"]
    lines = [
        f"'{changes['instance']}' from {changes['from']} to {changes['to']} (by {changes['by']})",
        f"  phase: {phase['from']} → {phase['to']}" if phase["from"] != phase["to"] else f"  phase: {phase['to']}",
    ]
    for gate in changes["gates"]:
        decided = ", ".join(f"{body} {outcome}" for body, outcome in gate["decisions"].items())
        lines.append(f"  gate {gate['gate']}: {gate['from']} → {gate['to']}" + (f" ({decided})" if decided else ""))
    lines.append(f"  {len(changes['events'])} event(s):")
    lines.extend(_line(event) for event in changes["events"])
    if changes["actors"]:
        lines.append("  who: " + ", ".join(f"{a['actor']} ({a['events']})" for a in changes["actors"]))
    return "\n".join(lines)
