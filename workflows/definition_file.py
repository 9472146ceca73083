"""Definition files: read a workflow definition from TOML, validate it, build the domain values.

The format is documented in ``docs/definition-format.md``; the shipped example is
``workflows/definitions/selep-lis-2019.toml``. Validation reports every problem at once,
each as ``"<key path>: <message>"`` (``phases[3].gates[0].boards[2]: unknown body 'kmepp'``),
in a single :class:`~workflows.errors.DefinitionFileError`, so that a secretary fixing a file
sees the whole list rather than one complaint per run.

Reading works in two passes over the same objects. The first pass reads each table through
:class:`_Table`, which checks types, reports missing and unknown keys, and always returns a
value (a placeholder where the file was wrong), so exactly one domain object is built per
TOML entry. The second pass checks what spans tables (unique ids, references, cycles) on the
built objects; because the objects line up one-to-one with the entries, a problem's key path
is rebuilt from indices. Nothing built from a file with problems ever leaves this module.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Collection, Iterable, Mapping, Sequence
from fractions import Fraction
from itertools import pairwise
from pathlib import Path
from typing import Final, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from governance.calendar import Blackout
from governance.definition import (
    DECISION_MODES,
    PAUSED,
    SUPERSEDED,
    Body,
    BodyKind,
    Contact,
    DecisionMode,
    Definition,
    Gate,
    GateRule,
    Meeting,
    MembershipPeriod,
    Phase,
    QuorumRule,
    RejectionRoute,
    ReminderRule,
    Task,
)
from workflows.errors import BadInput, DefinitionFileError
from workflows.toml_reader import ID_PATTERN as _ID
from workflows.toml_reader import TableReader as _Table
from workflows.toml_reader import syntax_problem as _syntax_problem
from workflows.toml_reader import unknown_name as _unknown

__all__ = ["SHIPPED_DEFINITIONS", "find_definition", "load_definition", "parse_definition"]

SHIPPED_DEFINITIONS: Final = Path(__file__).parent / "definitions"

BODY_KINDS: Final = ("board", "officer", "external")
GATE_RULES: Final = ("all", "n-of-m")
SOURCES: Final = ("verified", "default", "synthetic")
ANCHORS: Final = ("meeting", "gate-due", "condition-due", "deadline")
REMINDER_KINDS: Final = ("reminder", "escalation", "warning")
# A body that does not say how it decides gets the usual mode of its kind.
DEFAULT_MODES: Final = {"board": ("meeting",), "officer": ("delegated",), "external": ("external",)}

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_FRACTION = re.compile(r"\s*(\d+)\s*(?:/\s*(\d+)\s*)?")
_SECTIONS: Final = ("workflow", "contacts", "bodies", "phases", "meetings", "blackouts", "reminders")
_TOP_ENTRY = re.compile(r"([^.\[:]+)(?:\[(\d+)\])?")
_CACHE_SIZE: Final = 32
# Parsed definitions by content hash: the CLI loads the same file on every call, and a
# Definition is immutable, so a repeated load costs one SHA-256 of the text.
_cache: dict[str, Definition] = {}


def load_definition(path: Path) -> Definition:
    """Read, validate and build the definition in ``path``.

    Raises :class:`DefinitionFileError` listing every problem (a file that cannot be read
    or is not UTF-8 is one problem).
    """
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DefinitionFileError(str(path), [f"cannot read the file: {error.strerror or error}"]) from None
    try:
        # Bytes decoded as they are (no newline translation), so the hash is the file's own.
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise DefinitionFileError(str(path), [f"line {line}: not UTF-8 text"]) from None
    return parse_definition(text, str(path))


def parse_definition(text: str, source: str) -> Definition:
    """Validate the TOML ``text`` and build its definition; ``source`` names it in errors.

    ``content_hash`` is the SHA-256 of ``text`` (UTF-8), which is also the cache key.
    Raises :class:`DefinitionFileError` listing every problem found.
    """
    content_hash = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if (cached := _cache.get(content_hash)) is not None:
        return cached
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise DefinitionFileError(source, [_syntax_problem(str(error))]) from None
    problems: list[str] = []
    definition = _read_definition(_Table(document, "", problems), content_hash)
    _check_definition(definition, problems)
    if problems:
        # The two passes find problems in different orders; list them table by table, entry by entry.
        raise DefinitionFileError(source, sorted(problems, key=_position))
    if len(_cache) >= _CACHE_SIZE:
        del _cache[next(iter(_cache))]  # oldest first: dicts keep insertion order
    _cache[content_hash] = definition
    return definition


def find_definition(name_or_path: str, search_dirs: Sequence[Path]) -> Path:
    """The definition file meant by ``name_or_path``: a path to a ``.toml`` file, or an id.

    An id such as ``selep-lis-2019`` is looked up as ``<dir>/<id>.toml`` in each of
    ``search_dirs`` in turn, then in :data:`SHIPPED_DEFINITIONS`, so a local folder can
    override a shipped definition but never hide it by omission. A bare file name
    (``selep-lis-2019.toml``) that is not in the working folder is looked up the same way.
    Raises :class:`BadInput` when nothing matches.
    """
    folders = [*search_dirs, *([] if SHIPPED_DEFINITIONS in search_dirs else [SHIPPED_DEFINITIONS])]
    path = Path(name_or_path)
    is_path = name_or_path.endswith(".toml") or path.name != name_or_path
    if is_path and path.is_file():
        return path
    file_name = name_or_path if is_path else f"{name_or_path}.toml"
    if path.name == name_or_path and (is_path or _ID.fullmatch(name_or_path)):
        for folder in folders:
            if (folder / file_name).is_file():
                return folder / file_name
    if is_path:
        raise BadInput(f"definition file '{name_or_path}' not found")
    known = sorted({p.stem for folder in folders if folder.is_dir() for p in folder.glob("*.toml")})
    raise BadInput(
        f"unknown definition '{name_or_path}' (looked in {', '.join(map(str, folders))}; "
        f"available: {', '.join(known) or 'none'})"
    )


def _position(problem: str) -> tuple[int, int]:
    """Sort key: the problem's top-level table in the documented order, then its entry in it."""
    found = _TOP_ENTRY.match(problem)
    name, index = found.groups() if found else ("", None)
    return (_SECTIONS.index(name) if name in _SECTIONS else len(_SECTIONS), int(index or 0))


# -- first pass: one table at a time ---------------------------------------------------------


def _read_definition(root: _Table, content_hash: str) -> Definition:
    workflow = root.required_table("workflow")
    definition_id = workflow.ident()
    timezone = workflow.text("timezone")
    if workflow.ok("timezone"):
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            workflow.problem("timezone", f"unknown time zone '{timezone}' (use an IANA name like Europe/London)")
    starts, deadline = workflow.day("starts"), workflow.day("deadline")
    if workflow.ok("starts", "deadline") and deadline < starts:
        workflow.problem("deadline", f"{deadline} is before the start {starts}")
    bodies = tuple(_body(t) for t in root.tables("bodies", required=True))
    body_ids = {body.id for body in bodies}
    definition = Definition(
        id=definition_id,
        version=workflow.text("version"),
        title=workflow.text("title"),
        organisation=workflow.text("organisation", ""),
        timezone=timezone,
        starts=starts,
        deadline=deadline,
        deadline_label=workflow.text("deadline_label", "external deadline"),
        written_procedure_days=workflow.integer("written_procedure_days", 5, minimum=1),
        paper_clear_days=workflow.integer("paper_clear_days", 5, minimum=0),
        minutes_clear_days=workflow.integer("minutes_clear_days", 10, minimum=1),
        contacts=tuple(_contact(t) for t in root.tables("contacts")),
        bodies=bodies,
        phases=tuple(_phase(t) for t in root.tables("phases", required=True)),
        meetings=tuple(_meeting(t) for t in root.tables("meetings")),
        blackouts=tuple(_blackout(t, body_ids) for t in root.tables("blackouts")),
        reminders=tuple(_reminder(t) for t in root.tables("reminders")),
        content_hash=content_hash,
    )
    workflow.finish()
    root.finish()
    return definition


def _contact(t: _Table) -> Contact:
    contact = Contact(role=t.ident("role"), name=t.text("name"), email=t.text("email"))
    if t.ok("email") and not _EMAIL.fullmatch(contact.email):
        t.problem("email", f"'{contact.email}' is not an email address")
    t.finish()
    return contact


def _body(t: _Table) -> Body:
    body_id, name, kind = t.ident(), t.text("name"), t.choice("kind", BODY_KINDS)
    modes = t.names("modes", DEFAULT_MODES.get(kind, ("meeting",)), non_empty=True)
    for index, mode in enumerate(modes):
        if mode not in DECISION_MODES:
            t.problem(f"modes[{index}]", f"unknown decision mode '{mode}' (one of {', '.join(DECISION_MODES)})")
    quorum_table = t.table("quorum")
    quorum = _quorum(quorum_table) if quorum_table is not None else QuorumRule()
    readers = t.tables("membership", required=True)
    membership = tuple(_membership(m) for m in readers)
    _check_membership(readers, membership, quorum)
    body = Body(
        id=body_id,
        name=name,
        kind=cast(BodyKind, kind),
        membership=membership,
        quorum=quorum,
        modes=cast("tuple[DecisionMode, ...]", modes),
        role=t.text("role", ""),
        chair=t.optional_text("chair"),
        contacts=tuple(_contact(c) for c in t.tables("contacts")),
    )
    t.finish()
    return body


def _quorum(t: _Table) -> QuorumRule:
    fraction = Fraction(0)
    text = t.text("fraction", "0")
    found = _FRACTION.fullmatch(text)
    denominator = int(found.group(2) or 1) if found else 0
    if found is None or denominator == 0:
        t.problem("fraction", f"'{text}' is not a fraction like \"1/3\"")
    else:
        fraction = Fraction(int(found.group(1)), denominator)
        if fraction > 1:
            t.problem("fraction", f"'{text}' is more than all the members")
    rule = QuorumRule(
        fraction=fraction,
        minimum=t.integer("minimum", 1, minimum=1),
        min_voting=t.optional_integer("min_voting", minimum=0),
        private_at_least_public=t.flag("private_at_least_public", False),
        conflicted_count=t.flag("conflicted_count", False),
    )
    t.finish()
    return rule


def _membership(t: _Table) -> MembershipPeriod:
    start, end = t.day("from"), t.optional_day("to")
    if end is not None and t.ok("from", "to") and end < start:
        t.problem("to", f"{end} is before 'from' ({start})")
    members = t.integer("members", minimum=1)
    period = MembershipPeriod(
        start=start,
        end=end,
        members=members,
        private=t.optional_integer("private", minimum=0),
        voting=t.optional_integer("voting", minimum=0),
        source=t.choice("source", SOURCES, "verified"),
    )
    for key, part in (("private", period.private), ("voting", period.voting)):
        if part is not None and t.ok("members", key) and part > members:
            t.problem(key, f"{part} is more than the {members} members")
    t.finish()
    return period


def _check_membership(readers: list[_Table], periods: tuple[MembershipPeriod, ...], quorum: QuorumRule) -> None:
    dated = sorted((p.start, i) for i, (t, p) in enumerate(zip(readers, periods, strict=True)) if t.ok("from"))
    for (_, before), (_, after) in pairwise(dated):
        earlier, later = periods[before], periods[after]
        if earlier.end is None or earlier.end >= later.start:
            readers[after].problem("from", f"overlaps membership[{before}] (from {earlier.start})")
    for t, period in zip(readers, periods, strict=True):
        if t.ok("members") and quorum.minimum > period.members:
            t.problem("members", f"{period.members} can never reach the quorum minimum {quorum.minimum}")


def _phase(t: _Table) -> Phase:
    phase_id = t.ident()
    if phase_id in (PAUSED, SUPERSEDED):
        t.problem("id", f"'{phase_id}' is reserved for the engine's own state")
    start, end = t.optional_day("start"), t.optional_day("end")
    if start is not None and end is not None and end < start:
        t.problem("end", f"{end} is before the start {start}")
    phase = Phase(
        id=phase_id,
        name=t.text("name"),
        start=start,
        end=end,
        description=t.text("description", ""),
        tasks=tuple(_task(task) for task in t.tables("tasks")),
        gates=tuple(_gate(gate) for gate in t.tables("gates")),
    )
    t.finish()
    return phase


def _task(t: _Table) -> Task:
    task = Task(id=t.ident(), name=t.text("name"), required=t.flag("required", True))
    t.finish()
    return task


def _gate(t: _Table) -> Gate:
    gate_id, name, boards = t.ident(), t.text("name"), t.names("boards", non_empty=True)
    rule = t.choice("rule", GATE_RULES, "all")
    n = t.optional_integer("n")
    if rule == "n-of-m" and n is None and t.ok("n"):
        t.problem("n", 'missing: rule "n-of-m" needs n')
    elif rule == "n-of-m" and n is not None and not 1 <= n <= len(boards):
        t.problem("n", f"must be between 1 and the {len(boards)} boards, got {n}")
    elif rule == "all" and n is not None:
        t.problem("n", 'only used with rule = "n-of-m"')
    on_reject = t.table("on_reject")
    gate = Gate(
        id=gate_id,
        name=name,
        boards=boards,
        rule=cast(GateRule, rule),
        n=n,
        after=t.names("after", ()),
        strict=t.flag("strict", False),
        due=t.optional_day("due"),
        document=t.flag("document", False),
        on_reject=_rejection(on_reject) if on_reject is not None else None,
    )
    t.finish()
    return gate


def _rejection(t: _Table) -> RejectionRoute:
    route = RejectionRoute(to_phase=t.text("to"), reopen_tasks=t.names("reopen", ()))
    t.finish()
    return route


def _meeting(t: _Table) -> Meeting:
    meeting = Meeting(
        id=t.ident(),
        body=t.text("body"),
        date=t.day("date"),
        synthetic=t.flag("synthetic", False),
        note=t.text("note", ""),
    )
    t.finish()
    return meeting


def _blackout(t: _Table, body_ids: set[str]) -> Blackout:
    blackout_id, start, end, bodies = t.ident(), t.day("start"), t.day("end"), t.names("bodies", ())
    # Checked here: the Blackout keeps its bodies as a set, which loses the order key paths need.
    for index, body in enumerate(bodies):
        if body and body not in body_ids:
            t.problem(f"bodies[{index}]", _unknown("body", body, body_ids))
    if end < start:
        if t.ok("start", "end"):
            t.problem("end", f"{end} is before the start {start}")
        end = start  # Blackout itself refuses a reversed window, placeholders included
    blackout = Blackout(id=blackout_id, start=start, end=end, bodies=frozenset(bodies), reason=t.text("reason"))
    t.finish()
    return blackout


def _reminder(t: _Table) -> ReminderRule:
    rule = ReminderRule(
        id=t.ident(),
        anchor=t.choice("anchor", ANCHORS),
        offset=t.integer("offset"),
        template=t.text("template"),
        to=t.names("to", non_empty=True),
        kind=t.choice("kind", REMINDER_KINDS, "reminder"),
    )
    t.finish()
    return rule


# -- second pass: what spans tables ---------------------------------------------------------


def _check_definition(d: Definition, problems: list[str]) -> None:
    gates = [(f"phases[{i}].gates[{j}]", i, g) for i, p in enumerate(d.phases) for j, g in enumerate(p.gates)]
    tasks = [(f"phases[{i}].tasks[{j}]", t) for i, p in enumerate(d.phases) for j, t in enumerate(p.tasks)]
    _unique(problems, "body", ((f"bodies[{i}]", b.id) for i, b in enumerate(d.bodies)))
    _unique(problems, "phase", ((f"phases[{i}]", p.id) for i, p in enumerate(d.phases)))
    _unique(problems, "meeting", ((f"meetings[{i}]", m.id) for i, m in enumerate(d.meetings)))
    _unique(problems, "blackout", ((f"blackouts[{i}]", b.id) for i, b in enumerate(d.blackouts)))
    _unique(problems, "reminder", ((f"reminders[{i}]", r.id) for i, r in enumerate(d.reminders)))
    _unique(problems, "task", ((path, t.id) for path, t in tasks))  # tasks and gates: across phases
    _unique(problems, "gate", ((path, g.id) for path, _, g in gates))

    if len(d.phases) == 1:  # none at all was reported when the phases were read
        problems.append("phases: at least two phases are needed (a working one and the final one)")
    elif d.phases and d.phases[-1].gates:
        problems.append(f"phases[{len(d.phases) - 1}].gates: the last phase is the final state and has no gates")
    for i, (earlier, later) in enumerate(pairwise(d.phases), start=1):
        if earlier.start and later.start and later.start < earlier.start:
            problems.append(f"phases[{i}].start: {later.start} is before the previous phase's start")

    bodies = {b.id for b in d.bodies}
    phase_index = {p.id: i for i, p in enumerate(d.phases)}
    gate_index = {g.id: i for _, i, g in gates}
    task_ids = {t.id for _, t in tasks}
    for path, i, gate in gates:
        _known(problems, f"{path}.boards", gate.boards, bodies, "body")
        _known(problems, f"{path}.after", gate.after, gate_index, "gate")
        for k, other in enumerate(gate.after):
            if gate_index.get(other, i) > i:
                problems.append(f"{path}.after[{k}]: gate '{other}' is in a later phase")
        if gate.on_reject is not None:
            target = gate.on_reject.to_phase
            if target and target not in phase_index:
                problems.append(f"{path}.on_reject.to: {_unknown('phase', target, phase_index)}")
            elif target and phase_index[target] > i:
                problems.append(f"{path}.on_reject.to: phase '{target}' comes after this gate's phase")
            _known(problems, f"{path}.on_reject.reopen", gate.on_reject.reopen_tasks, task_ids, "task")
    # Edges to unknown or later gates were reported above; a cycle can only form among the rest.
    edges = {g.id: (path, tuple(a for a in g.after if gate_index.get(a, i + 1) <= i)) for path, i, g in gates}
    _check_cycles(problems, edges)

    for i, meeting in enumerate(d.meetings):
        if meeting.body and meeting.body not in bodies:
            problems.append(f"meetings[{i}].body: {_unknown('body', meeting.body, bodies)}")
    roles = {c.role for c in d.contacts} | {c.role for b in d.bodies for c in b.contacts}
    for i, reminder in enumerate(d.reminders):
        _known(problems, f"reminders[{i}].to", reminder.to, roles, "contact role")


def _unique(problems: list[str], what: str, items: Iterable[tuple[str, str]]) -> None:
    first: dict[str, str] = {}
    for path, item_id in items:
        if item_id in first:
            problems.append(f"{path}.id: duplicate {what} id '{item_id}' (first used at {first[item_id]})")
        elif item_id:  # an empty id is a placeholder for one already reported as missing
            first[item_id] = path


def _known(problems: list[str], path: str, names: Sequence[str], known: Collection[str], what: str) -> None:
    """Report each of ``names`` (an array at ``path``) that is not among ``known``."""
    for index, name in enumerate(names):
        if name and name not in known:  # an empty name is a placeholder, reported already
            problems.append(f"{path}[{index}]: {_unknown(what, name, known)}")


def _check_cycles(problems: list[str], after: Mapping[str, tuple[str, tuple[str, ...]]]) -> None:
    """Report gates that wait for each other: none of them could ever open."""
    # Peel off gates whose prerequisites are all peeled; what remains is on or behind a cycle.
    waiting = dict(after)
    while ready := [gate for gate, (_, before) in waiting.items() if waiting.keys().isdisjoint(before)]:
        for gate in ready:
            del waiting[gate]
    # Then peel those no remaining gate waits for: what is left lies on a cycle.
    while free := [gate for gate in waiting if all(gate not in before for _, before in waiting.values())]:
        for gate in free:
            del waiting[gate]
    if len(waiting) == 1:
        ((gate, (path, _)),) = waiting.items()
        problems.append(f"{path}.after: gate '{gate}' cannot wait for itself")
    elif waiting:
        path = next(iter(waiting.values()))[0]
        problems.append(f"{path}.after: gates {', '.join(map(repr, waiting))} wait for each other in a cycle")
