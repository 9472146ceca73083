"""Definition files: the shipped LIS loads with the ids scripts rely on, and bad files are
reported problem by problem, each with its key path."""

from __future__ import annotations

import hashlib
import re
from datetime import date
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workflows.definition_file import SHIPPED_DEFINITIONS, find_definition, load_definition, parse_definition
from workflows.errors import BadInput, DefinitionFileError

LIS_PATH = SHIPPED_DEFINITIONS / "selep-lis-2019.toml"
LIS_TEXT = LIS_PATH.read_text(encoding="utf-8")
FORMAT_DOC = Path(__file__).parents[2] / "docs" / "definition-format.md"

# A small valid definition that the validation tests break one thing at a time.
MINIMAL = """
[workflow]
id = "budget-2024"
version = "1"
title = "Budget 2024"
timezone = "Europe/London"
starts = 2024-01-08
deadline = 2024-03-01

[[contacts]]
role = "secretary"
name = "Committee secretary"
email = "secretary@council.example"

[[bodies]]
id = "cabinet"
name = "Cabinet"
kind = "board"

  [[bodies.membership]]
  from = 2024-01-01
  members = 10

[[bodies]]
id = "full-council"
name = "Full Council"
kind = "board"

  [[bodies.membership]]
  from = 2024-01-01
  members = 54

[[phases]]
id = "draft"
name = "Draft budget"
start = 2024-01-08
end = 2024-02-09

  [[phases.tasks]]
  id = "draft-written"
  name = "Draft written"

  [[phases.gates]]
  id = "cabinet-recommends"
  name = "Cabinet recommends the budget"
  boards = ["cabinet"]

[[phases]]
id = "setting"
name = "Budget setting"

  [[phases.gates]]
  id = "council-sets"
  name = "Full Council sets the budget"
  boards = ["full-council"]
  after = ["cabinet-recommends"]

    [phases.gates.on_reject]
    to = "draft"
    reopen = ["draft-written"]

[[phases]]
id = "set"
name = "Budget set"
"""


def edited(text: str, old: str, new: str) -> str:
    """``text`` with the single occurrence of ``old`` replaced, so a test cannot edit the wrong spot."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def problems_in(text: str) -> list[str]:
    with pytest.raises(DefinitionFileError) as raised:
        parse_definition(text, "test.toml")
    assert raised.value.source == "test.toml"
    return raised.value.problems


def only_problem(text: str) -> str:
    problems = problems_in(text)
    assert len(problems) == 1, problems
    return problems[0]


# -- the shipped LIS --------------------------------------------------------------------------


def test_the_lis_definition_loads_with_the_mandated_phases_gates_and_bodies() -> None:
    lis = load_definition(LIS_PATH)

    assert lis.id == "selep-lis-2019"
    assert [phase.id for phase in lis.phases] == [
        "scoping",
        "evidence",
        "drafting",
        "sign-off",
        "co-design",
        "negotiation",
        "agreed",
    ]
    gates = {gate.id: phase.id for phase in lis.phases for gate in phase.gates}
    assert gates == {
        "approach-agreed": "scoping",
        "evidence-agreed": "evidence",
        "structure-agreed": "drafting",
        "federated-endorsement": "sign-off",
        "final-agreement": "sign-off",
        "priorities-agreed": "co-design",
        "lis-agreed": "negotiation",
    }
    assert {body.id for body in lis.bodies} == {
        "strategic-board",
        "accountability-board",
        "success-essex",
        "kmep",
        "ose",
        "team-east-sussex",
        "government",
        "secretariat",
    }
    assert lis.phases[-1].gates == ()


def test_the_lis_definition_carries_the_verified_facts() -> None:
    lis = load_definition(LIS_PATH)
    bodies = {body.id: body for body in lis.bodies}

    assert (lis.starts, lis.deadline, lis.timezone) == (date(2019, 6, 3), date(2020, 3, 31), "Europe/London")
    strategic = bodies["strategic-board"]
    assert strategic.membership_on(date(2019, 10, 4)).members == 27  # type: ignore[union-attr]
    assert strategic.chair == "Christian Brodie"
    assert strategic.modes == ("meeting", "written", "chairs-action")
    assert strategic.quorum.fraction == Fraction(1, 3)
    assert strategic.quorum.private_at_least_public
    assert strategic.quorum.required(27) == 9
    accountability = bodies["accountability-board"]
    assert (accountability.quorum.minimum, accountability.quorum.min_voting) == (3, 2)
    assert accountability.membership[0].members == 9
    assert bodies["kmep"].membership[0].members == 28
    tes = bodies["team-east-sussex"].membership[0]
    assert (tes.members, tes.private) == (17, 9)
    assert (bodies["government"].kind, bodies["government"].modes) == ("external", ("external",))
    assert (bodies["secretariat"].kind, bodies["secretariat"].modes) == ("officer", ("delegated",))
    assert (lis.paper_clear_days, lis.minutes_clear_days) == (5, 10)


def test_the_lis_gates_follow_the_plan() -> None:
    lis = load_definition(LIS_PATH)
    gates = {gate.id: gate for phase in lis.phases for gate in phase.gates}
    federated = ("success-essex", "kmep", "ose", "team-east-sussex")

    assert gates["approach-agreed"].boards == ("secretariat",)
    assert gates["approach-agreed"].due == date(2019, 7, 31)
    assert gates["evidence-agreed"].boards == federated
    assert not gates["evidence-agreed"].strict
    assert gates["structure-agreed"].due == date(2019, 10, 4)
    assert gates["federated-endorsement"].boards == federated
    assert gates["federated-endorsement"].document
    assert gates["final-agreement"].after == ("federated-endorsement",)
    assert gates["priorities-agreed"].boards == ("government",)
    lis_agreed = gates["lis-agreed"]
    assert lis_agreed.due == date(2020, 3, 31)
    assert lis_agreed.document
    assert lis_agreed.on_reject is not None
    assert lis_agreed.on_reject.to_phase == "drafting"
    drafting_tasks = {task.id for task in lis.phases[2].tasks}
    assert drafting_tasks <= set(lis_agreed.on_reject.reopen_tasks)
    for gate_id in ("federated-endorsement", "final-agreement"):
        assert gates[gate_id].on_reject.to_phase == "drafting"  # type: ignore[union-attr]


def test_the_lis_meetings_blackout_and_reminders_are_encoded() -> None:
    lis = load_definition(LIS_PATH)
    meetings = {(m.body, m.date): m for m in lis.meetings}

    assert not meetings[("strategic-board", date(2019, 10, 4))].synthetic
    for day in (date(2019, 9, 24), date(2019, 11, 26), date(2020, 1, 28)):
        assert not meetings[("kmep", day)].synthetic
    assert meetings[("strategic-board", date(2019, 12, 13))].synthetic
    assert meetings[("strategic-board", date(2020, 3, 20))].synthetic
    assert all(m.synthetic and m.note for m in lis.meetings if m.body in {"success-essex", "ose"})
    (blackout,) = lis.blackouts
    assert (blackout.id, blackout.start, blackout.end) == (
        "pre-election-2019",
        date(2019, 11, 6),
        date(2019, 12, 12),
    )
    assert blackout.bodies == frozenset({"government"})
    ladder = {r.offset for r in lis.reminders if r.anchor == "meeting"}
    assert ladder == {-15, -10, -8, -6, -5, -1, 5, 8, 10}
    assert any(r.anchor == "deadline" and r.kind == "warning" for r in lis.reminders)


def test_the_lis_contacts_use_only_example_addresses() -> None:
    lis = load_definition(LIS_PATH)
    contacts = [*lis.contacts, *(c for body in lis.bodies for c in body.contacts)]

    assert contacts
    assert all(c.email.endswith(".example") for c in contacts)
    assert {"programme-lead", "chief-executive", "secretary"} <= {c.role for c in lis.contacts}


def test_the_content_hash_is_the_sha256_of_the_file_text() -> None:
    assert load_definition(LIS_PATH).content_hash == hashlib.sha256(LIS_PATH.read_bytes()).hexdigest()


def test_a_second_load_of_the_same_text_comes_from_the_cache() -> None:
    assert parse_definition(MINIMAL, "a.toml") is parse_definition(MINIMAL, "b.toml")


def test_the_minimal_example_is_valid() -> None:
    budget = parse_definition(MINIMAL, "test.toml")

    assert budget.phases[1].gates[0].on_reject is not None
    assert budget.bodies[0].modes == ("meeting",)  # the default for a board


def test_every_complete_example_in_the_format_document_is_valid() -> None:
    blocks = re.findall(r"```toml\n(.*?)```", FORMAT_DOC.read_text(encoding="utf-8"), flags=re.DOTALL)
    complete = [block for block in blocks if "[workflow]" in block and "[[phases]]" in block]

    assert complete
    for block in complete:
        parse_definition(block, "docs/definition-format.md")


# -- key paths ------------------------------------------------------------------------------


def test_an_unknown_board_is_reported_with_its_key_path() -> None:
    text = edited(
        LIS_TEXT,
        'boards = ["success-essex", "kmep", "ose", "team-east-sussex"]\n  rule = "all"\n  strict = false'
        "              # no veto",
        'boards = ["success-essex", "ose", "kmepp", "team-east-sussex"]\n  rule = "all"\n  strict = false'
        "              # no veto",
    )

    assert only_problem(text) == "phases[3].gates[0].boards[2]: unknown body 'kmepp' (did you mean 'kmep'?)"


def test_a_misspelt_key_is_reported_as_unknown() -> None:
    text = edited(MINIMAL, 'boards = ["cabinet"]', 'bords = ["cabinet"]')

    assert problems_in(text) == [
        "phases[0].gates[0].boards: missing required key",
        "phases[0].gates[0].bords: unknown key 'bords' (did you mean 'boards'?)",
    ]


def test_a_missing_required_key_is_reported() -> None:
    assert only_problem(edited(MINIMAL, 'title = "Budget 2024"\n', "")) == "workflow.title: missing required key"


def test_a_quoted_date_is_reported_with_a_hint() -> None:
    problem = only_problem(edited(MINIMAL, "starts = 2024-01-08", 'starts = "2024-01-08"'))

    assert problem.startswith("workflow.starts: expected a date")
    assert "without quotes" in problem


def test_a_number_where_a_flag_belongs_is_reported() -> None:
    text = edited(MINIMAL, 'name = "Draft written"', 'name = "Draft written"\n  required = 1')

    assert only_problem(text) == "phases[0].tasks[0].required: expected true or false, got an integer (1)"


def test_a_syntax_error_names_its_line_and_column() -> None:
    problem = only_problem(edited(MINIMAL, 'version = "1"', "version = "))

    assert problem.startswith("line 4, column 11: TOML syntax error")


def test_several_problems_are_reported_at_once() -> None:
    text = edited(MINIMAL, 'timezone = "Europe/London"', 'timezone = "Europe/Lundon"')
    text = edited(text, "members = 54", "members = 0")
    text = edited(text, 'boards = ["full-council"]', 'boards = ["full-counsel"]')

    assert problems_in(text) == [
        "workflow.timezone: unknown time zone 'Europe/Lundon' (use an IANA name like Europe/London)",
        "bodies[1].membership[0].members: must be at least 1, got 0",
        "phases[1].gates[0].boards[0]: unknown body 'full-counsel' (did you mean 'full-council'?)",
    ]


# -- ids ------------------------------------------------------------------------------------


def test_gate_ids_must_be_unique_across_phases() -> None:
    text = edited(MINIMAL, 'id = "council-sets"', 'id = "cabinet-recommends"')

    assert "phases[1].gates[0].id: duplicate gate id 'cabinet-recommends' (first used at phases[0].gates[0])" in (
        problems_in(text)
    )


def test_body_ids_must_be_unique() -> None:
    text = edited(MINIMAL, 'id = "full-council"', 'id = "cabinet"')

    assert "bodies[1].id: duplicate body id 'cabinet' (first used at bodies[0])" in problems_in(text)


def test_an_id_must_be_kebab_case() -> None:
    problem = only_problem(edited(MINIMAL, 'id = "set"', 'id = "Set Budget"'))

    assert problem.startswith("phases[2].id: 'Set Budget' is not a valid id")


@pytest.mark.parametrize("reserved", ["paused", "superseded"])
def test_a_phase_cannot_take_a_reserved_id(reserved: str) -> None:
    problem = only_problem(edited(MINIMAL, 'id = "set"', f'id = "{reserved}"'))

    assert problem == f"phases[2].id: '{reserved}' is reserved for the engine's own state"


# -- references -----------------------------------------------------------------------------


def test_a_gate_cannot_come_after_a_gate_of_a_later_phase() -> None:
    text = edited(MINIMAL, 'boards = ["cabinet"]', 'boards = ["cabinet"]\n  after = ["council-sets"]')

    assert only_problem(text) == "phases[0].gates[0].after[0]: gate 'council-sets' is in a later phase"


def test_gates_waiting_for_each_other_are_a_cycle() -> None:
    scrutiny = """
  [[phases.gates]]
  id = "scrutiny"
  name = "Scrutiny committee comments"
  boards = ["cabinet"]
  after = ["council-sets"]
"""
    text = edited(MINIMAL, 'after = ["cabinet-recommends"]', 'after = ["scrutiny"]')
    text = edited(text, '[[phases]]\nid = "set"', f'{scrutiny}\n[[phases]]\nid = "set"')

    assert only_problem(text) == (
        "phases[1].gates[0].after: gates 'council-sets', 'scrutiny' wait for each other in a cycle"
    )


def test_a_gate_cannot_wait_for_itself() -> None:
    text = edited(MINIMAL, 'after = ["cabinet-recommends"]', 'after = ["council-sets"]')

    assert only_problem(text) == "phases[1].gates[0].after: gate 'council-sets' cannot wait for itself"


def test_an_unknown_after_gate_is_reported() -> None:
    text = edited(MINIMAL, 'after = ["cabinet-recommends"]', 'after = ["cabinet-recomends"]')

    assert only_problem(text) == (
        "phases[1].gates[0].after[0]: unknown gate 'cabinet-recomends' (did you mean 'cabinet-recommends'?)"
    )


def test_a_rejection_cannot_send_the_workflow_forward() -> None:
    problem = only_problem(edited(MINIMAL, 'to = "draft"', 'to = "set"'))

    assert problem == "phases[1].gates[0].on_reject.to: phase 'set' comes after this gate's phase"


def test_a_rejection_can_only_reopen_known_tasks() -> None:
    problem = only_problem(edited(MINIMAL, 'reopen = ["draft-written"]', 'reopen = ["draft-writen"]'))

    assert problem.startswith("phases[1].gates[0].on_reject.reopen[0]: unknown task 'draft-writen'")


def test_meetings_blackouts_and_reminders_must_name_known_bodies_and_roles() -> None:
    text = (
        MINIMAL
        + """
[[meetings]]
id = "cabinet-2024-01-15"
body = "cabinett"
date = 2024-01-15

[[blackouts]]
id = "pre-election-2024"
start = 2024-03-25
end = 2024-05-02
bodies = ["cabinet", "mayor"]
reason = "Local elections"

[[reminders]]
id = "call-for-papers"
anchor = "meeting"
offset = -15
template = "call-for-papers"
to = ["clerk"]
"""
    )

    assert problems_in(text) == [
        "meetings[0].body: unknown body 'cabinett' (did you mean 'cabinet'?)",
        "blackouts[0].bodies[1]: unknown body 'mayor'",
        "reminders[0].to[0]: unknown contact role 'clerk'",
    ]


# -- rules ----------------------------------------------------------------------------------


def test_an_n_of_m_gate_needs_n_within_its_boards() -> None:
    text = edited(
        MINIMAL,
        'boards = ["full-council"]',
        'boards = ["full-council", "cabinet"]\n  rule = "n-of-m"\n  n = 3',
    )

    assert only_problem(text) == "phases[1].gates[0].n: must be between 1 and the 2 boards, got 3"


def test_an_n_of_m_gate_without_n_is_reported() -> None:
    text = edited(MINIMAL, 'boards = ["full-council"]', 'boards = ["full-council"]\n  rule = "n-of-m"')

    assert only_problem(text) == 'phases[1].gates[0].n: missing: rule "n-of-m" needs n'


@pytest.mark.parametrize(
    ("fraction", "message"),
    [
        ("4/3", "'4/3' is more than all the members"),
        ("1/0", "'1/0' is not a fraction like \"1/3\""),
        ("a third", "'a third' is not a fraction like \"1/3\""),
    ],
)
def test_a_quorum_fraction_must_be_between_nought_and_one(fraction: str, message: str) -> None:
    cabinet = 'name = "Cabinet"\nkind = "board"\n'
    text = edited(MINIMAL, cabinet, f'{cabinet}\n  [bodies.quorum]\n  fraction = "{fraction}"\n')

    assert only_problem(text) == f"bodies[0].quorum.fraction: {message}"


def test_membership_periods_must_not_overlap() -> None:
    text = edited(
        MINIMAL,
        "members = 54",
        "members = 54\n  to = 2024-06-30\n\n  [[bodies.membership]]\n  from = 2024-02-01\n  members = 51",
    )

    assert only_problem(text) == "bodies[1].membership[1].from: overlaps membership[0] (from 2024-01-01)"


def test_private_and_voting_members_cannot_exceed_the_members() -> None:
    text = edited(MINIMAL, "members = 10", "members = 10\n  private = 11\n  voting = 10")

    assert only_problem(text) == "bodies[0].membership[0].private: 11 is more than the 10 members"


def test_a_decision_mode_must_be_known() -> None:
    text = edited(MINIMAL, 'name = "Cabinet"', 'name = "Cabinet"\nmodes = ["meeting", "telepathy"]')

    assert only_problem(text).startswith("bodies[0].modes[1]: unknown decision mode 'telepathy'")


def test_a_body_kind_must_be_known() -> None:
    problem = only_problem(edited(MINIMAL, 'name = "Cabinet"\nkind = "board"', 'name = "Cabinet"\nkind = "committee"'))

    assert problem == "bodies[0].kind: 'committee' is not one of 'board', 'officer', 'external'"


def test_windows_and_the_deadline_cannot_end_before_they_start() -> None:
    text = edited(MINIMAL, "end = 2024-02-09", "end = 2024-01-01")
    text = edited(text, "deadline = 2024-03-01", "deadline = 2023-12-31")

    assert problems_in(text) == [
        "workflow.deadline: 2023-12-31 is before the start 2024-01-08",
        "phases[0].end: 2024-01-01 is before the start 2024-01-08",
    ]


def test_a_definition_needs_at_least_two_phases() -> None:
    text = MINIMAL.split("[[phases]]")[0] + '[[phases]]\nid = "only"\nname = "Only"\n'

    assert only_problem(text) == "phases: at least two phases are needed (a working one and the final one)"


def test_the_last_phase_has_no_gates() -> None:
    text = MINIMAL + '\n  [[phases.gates]]\n  id = "never"\n  name = "Never"\n  boards = ["cabinet"]\n'

    assert only_problem(text) == "phases[2].gates: the last phase is the final state and has no gates"


# -- finding definitions --------------------------------------------------------------------


def test_a_definition_is_found_by_its_id() -> None:
    assert find_definition("selep-lis-2019", [SHIPPED_DEFINITIONS]) == LIS_PATH


def test_the_shipped_folder_is_always_searched_last(tmp_path: Path) -> None:
    assert find_definition("selep-lis-2019", []) == LIS_PATH
    assert find_definition("selep-lis-2019.toml", [tmp_path]) == LIS_PATH


def test_a_definition_is_found_by_its_path(tmp_path: Path) -> None:
    path = tmp_path / "budget.toml"
    path.write_text(MINIMAL, encoding="utf-8")

    assert find_definition(str(path), [SHIPPED_DEFINITIONS]) == path
    assert load_definition(find_definition(str(path), [])).id == "budget-2024"


def test_an_earlier_folder_wins_over_the_shipped_one(tmp_path: Path) -> None:
    (tmp_path / "selep-lis-2019.toml").write_text(MINIMAL, encoding="utf-8")

    assert find_definition("selep-lis-2019", [tmp_path, SHIPPED_DEFINITIONS]) == tmp_path / "selep-lis-2019.toml"


def test_an_unknown_definition_says_where_it_looked() -> None:
    with pytest.raises(
        BadInput, match=r"unknown definition 'nope' \(looked in .*definitions; available: selep-lis-2019\)"
    ):
        find_definition("nope", [SHIPPED_DEFINITIONS])


def test_a_missing_definition_file_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="not found"):
        find_definition(str(tmp_path / "missing.toml"), [SHIPPED_DEFINITIONS])


def test_a_file_that_is_not_utf8_is_one_problem(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(MINIMAL.replace("Budget 2024", "Budget £2024").encode("latin-1"))

    with pytest.raises(DefinitionFileError) as raised:
        load_definition(path)

    assert raised.value.problems == ["line 5: not UTF-8 text"]


# -- robustness -----------------------------------------------------------------------------

LIS_LINES = LIS_TEXT.splitlines(keepends=True)
WRONG_VALUES = ["1", '"x"', "true", "[]", "2019-01-01", "{}", '["x", 1]', "-3", '"1/0"']


@settings(max_examples=60, deadline=None)
@given(line=st.integers(0, len(LIS_LINES) - 1), replacement=st.sampled_from(["", *WRONG_VALUES]))
def test_any_broken_line_is_reported_as_problems_never_as_a_crash(line: int, replacement: str) -> None:
    # Deleting a line, or giving a key a value of the wrong type, must give problems with key
    # paths; the placeholders used while reading must never leak into an exception of their own.
    original = LIS_LINES[line]
    if replacement and "=" in original and not original.lstrip().startswith("#"):
        replacement = f"{original.split('=')[0]}= {replacement}\n"
    else:
        replacement = ""
    mutated = "".join([*LIS_LINES[:line], replacement, *LIS_LINES[line + 1 :]])

    problems = ["<none>: the file still loads"]
    try:
        parse_definition(mutated, "mutated.toml")
    except DefinitionFileError as error:
        problems = error.problems

    assert problems
    assert all(": " in problem for problem in problems)
