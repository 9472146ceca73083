"""The notification templates: every kind renders, escaping is right, the sandbox holds,
and ``check()`` catches a broken template before it is used."""

from __future__ import annotations

import json
import shutil
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from notifications.errors import TemplateError
from notifications.templates import (
    DEFAULT_TEMPLATE_DIR,
    KINDS,
    MAX_RENDERED_BYTES,
    SAMPLE_CONTEXT,
    TemplateRenderer,
    long_date,
    working_days,
)


@pytest.fixture(scope="module")
def renderer() -> TemplateRenderer:
    return TemplateRenderer()


@pytest.fixture
def template_dir(tmp_path: Path) -> Path:
    """A copy of the shipped templates that a test may break."""
    return Path(shutil.copytree(DEFAULT_TEMPLATE_DIR, tmp_path / "templates"))


def sample(kind: str, **changes: Any) -> dict[str, Any]:
    return {**SAMPLE_CONTEXT[kind], **changes}


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_renders_a_subject_a_text_and_an_html_part(renderer: TemplateRenderer, kind: str) -> None:
    message = renderer.render(kind, SAMPLE_CONTEXT[kind])

    assert message.kind == kind
    assert message.subject and "\n" not in message.subject
    assert message.text.startswith("Dear Alex Morgan,\n") and message.text.endswith("\n")
    assert "What you need to do" in message.text and "What you need to do" in message.html
    assert "Reference: selep-lis/" in message.text
    assert message.html.startswith("<!DOCTYPE html>") and '<html lang="en-GB">' in message.html
    assert f"<title>{message.subject}</title>".replace("&", "&amp;") in message.html


@pytest.mark.parametrize("kind", KINDS)
def test_html_loads_nothing_remote_and_keeps_styles_inline(renderer: TemplateRenderer, kind: str) -> None:
    html = renderer.render(kind, SAMPLE_CONTEXT[kind]).html

    for remote in ("<img", "<link", "<script", "src=", "url(", "@import", "<style"):
        assert remote not in html


def test_the_shipped_templates_pass_check(renderer: TemplateRenderer) -> None:
    assert renderer.check() == []


def test_every_sample_context_has_the_common_variables() -> None:
    common = {"recipient_name", "recipient_role", "organisation", "instance_title", "reference", "link", "contact"}
    assert set(SAMPLE_CONTEXT) == set(KINDS)
    assert all(common <= set(context) for context in SAMPLE_CONTEXT.values())


def test_html_escapes_a_script_in_a_variable_but_the_text_keeps_it(renderer: TemplateRenderer) -> None:
    message = renderer.render("call_for_papers", sample("call_for_papers", item_title="<script>alert(1)</script> & co"))

    assert "<script>" not in message.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in message.html
    assert "<script>alert(1)</script> & co" in message.text


def test_a_newline_in_a_variable_cannot_split_the_subject(renderer: TemplateRenderer) -> None:
    message = renderer.render("gate_passed", sample("gate_passed", gate_name="Final\r\nBcc: evil@example.com"))

    assert message.subject == "Gate passed: Final Bcc: evil@example.com"


@pytest.mark.parametrize(
    ("kind", "changes", "expected"),
    [
        ("paper_deadline", {"working_days_left": 3}, "in 3 working days"),
        ("escalation", {"escalation_level": 2}, "deferred to a later meeting or withdrawn"),
        ("escalation", {"item_type": "minutes", "overdue_item": "the draft minutes"}, "draft minutes to be published"),
        ("publication", {"outstanding_items": []}, "All the expected papers have been received."),
        ("quorum_check", {"meeting_time": ""}, "Board meets on Friday 4 October 2019"),
        ("minutes", {"breached": True, "working_days_left": 0}, "This breaches the publication rules"),
        ("condition_due", {"working_days_left": -4}, "is now 4 working days overdue"),
        ("condition_due", {"working_days_left": 0}, "which is today"),
        ("gate_overdue", {"waiting_for": []}, "Every decision it needs has been taken"),
        ("at_risk", {"forecast_date": None}, "No meeting now scheduled can take it."),
        ("decision_recorded", {"conditions": [], "outcome": "approved"}, "    approved\n"),
        ("gate_passed", {"next_step": "", "link": ""}, "This was the last gate of the workflow."),
    ],
)
def test_each_branch_of_the_templates_renders(
    renderer: TemplateRenderer, kind: str, changes: dict[str, Any], expected: str
) -> None:
    message = renderer.render(kind, sample(kind, **changes))

    assert expected in message.text
    assert "\n\n\n" not in message.text


def test_a_context_that_went_through_json_renders_the_same(renderer: TemplateRenderer) -> None:
    context = SAMPLE_CONTEXT["decision_recorded"]
    via_json = json.loads(json.dumps(context, default=date.isoformat))

    assert renderer.render("decision_recorded", via_json) == renderer.render("decision_recorded", context)


def test_a_missing_variable_is_a_template_error_naming_it_and_its_line(renderer: TemplateRenderer) -> None:
    context = sample("gate_passed")
    del context["gate_name"]

    with pytest.raises(TemplateError, match=r"gate_passed\.txt\.j2 line 2: 'gate_name' is undefined"):
        renderer.render("gate_passed", context)


def test_a_value_of_the_wrong_type_is_a_template_error_with_its_position(renderer: TemplateRenderer) -> None:
    with pytest.raises(TemplateError, match=r"minutes\.txt\.j2 line \d+: '18/10/2019' is not an ISO date"):
        renderer.render("minutes", sample("minutes", minutes_due="18/10/2019"))


def test_an_unknown_variable_in_an_edited_template_is_a_template_error(template_dir: Path) -> None:
    path = template_dir / "minutes.html.j2"
    path.write_text(path.read_text().replace("{{ minutes_due|longdate }}", "{{ minutes_deu|longdate }}"))

    with pytest.raises(TemplateError, match="'minutes_deu' is undefined"):
        TemplateRenderer(template_dir).render("minutes", SAMPLE_CONTEXT["minutes"])


def test_an_unknown_kind_is_a_template_error(renderer: TemplateRenderer) -> None:
    with pytest.raises(TemplateError, match="unknown notification kind 'agenda'"):
        renderer.render("agenda", {})


def test_the_rendered_size_is_capped(template_dir: Path) -> None:
    (template_dir / "gate_passed.html.j2").write_text("{% for i in range(90000) %}{{ gate_name }}{% endfor %}")

    with pytest.raises(TemplateError, match=f"exceeds {MAX_RENDERED_BYTES // 1024} KiB"):
        TemplateRenderer(template_dir).render("gate_passed", SAMPLE_CONTEXT["gate_passed"])


@pytest.mark.parametrize("expression", ["'x' * 100000000", "[1] * 100000000", "10 ** 100000000"])
def test_a_huge_value_is_refused_before_it_is_built(template_dir: Path, expression: str) -> None:
    (template_dir / "gate_passed.html.j2").write_text(f"{{{{ {expression} }}}}")
    started = time.perf_counter()

    with pytest.raises(TemplateError, match=r"gate_passed\.html\.j2 line 1: .*(too large|not allowed)"):
        TemplateRenderer(template_dir).render("gate_passed", SAMPLE_CONTEXT["gate_passed"])
    assert time.perf_counter() - started < 1


@pytest.mark.parametrize(
    "source",
    [
        "{{ gate_name.__class__.__mro__ }}",
        "{{ decided_by.append('x') }}",
        "{{ gate_name|attr('__class__') }}",
        "{{ '{0.__class__}'.format(gate_name) }}",
    ],
)
def test_the_sandbox_refuses_attribute_walks_and_mutation(template_dir: Path, source: str) -> None:
    (template_dir / "gate_passed.html.j2").write_text(source)

    with pytest.raises(TemplateError):
        TemplateRenderer(template_dir).render("gate_passed", SAMPLE_CONTEXT["gate_passed"])


def test_check_reports_a_syntax_error_with_its_file_and_line(template_dir: Path) -> None:
    path = template_dir / "at_risk.txt.j2"
    path.write_text(path.read_text().replace("{% if forecast_date %}", "{% if forecast_date %", 1))

    problems = TemplateRenderer(template_dir).check()

    assert any(problem.startswith("at_risk.txt.j2 line 8: ") for problem in problems), problems


def test_check_reports_an_unknown_variable_even_in_a_branch_the_sample_skips(template_dir: Path) -> None:
    path = template_dir / "minutes.txt.j2"
    path.write_text(path.read_text().replace("{% if breached %}\n", "{% if breached %}\n{{ minutes_approver }}\n", 1))

    problems = TemplateRenderer(template_dir).check()

    assert problems == ["minutes.txt.j2: unknown variable(s) minutes_approver (not in the minutes sample)"]


def test_check_reports_an_unknown_variable_in_a_layout(template_dir: Path) -> None:
    path = template_dir / "_layout.html.j2"
    path.write_text(path.read_text().replace("{{ reference }}", "{{ reference }} {{ unsubscribe_link }}"))

    problems = TemplateRenderer(template_dir).check()

    assert "gate_passed.html.j2: unknown variable(s) unsubscribe_link (not in the gate_passed sample)" in problems


def test_check_reports_missing_and_misspelt_files(template_dir: Path) -> None:
    (template_dir / "quorum_check.html.j2").rename(template_dir / "quorum_chek.html.j2")

    problems = TemplateRenderer(template_dir).check()

    assert f"template quorum_check.html.j2 not found in {template_dir}" in problems
    assert "quorum_chek.html.j2: not a known kind (a misspelt file name?)" in problems


def test_check_reports_a_text_template_without_a_subject(template_dir: Path) -> None:
    path = template_dir / "gate_passed.txt.j2"
    path.write_text(path.read_text().replace("{% block subject %}Gate passed: {{ gate_name }}{% endblock %}\n", ""))

    assert TemplateRenderer(template_dir).check() == ["gate_passed.txt.j2: no {% block subject %} (the subject line)"]


def test_long_dates_are_british_and_accept_iso_strings() -> None:
    assert long_date(date(2019, 10, 4)) == "Friday 4 October 2019"
    assert long_date("2019-12-13") == "Friday 13 December 2019"
    assert long_date(datetime(2020, 3, 20, 10, 30)) == "Friday 20 March 2020, 10:30"
    with pytest.raises(ValueError, match="not an ISO date"):
        long_date("13/12/2019")


def test_working_days_are_counted_in_words() -> None:
    words = ["0 working days", "1 working day", "2 working days", "-1 working day"]
    assert [working_days(n) for n in (0, 1, 2, -1)] == words


def test_a_decision_with_a_condition_without_owner_or_due_date_renders(renderer: TemplateRenderer) -> None:
    from notifications.templates import SAMPLE_CONTEXT

    context = dict(SAMPLE_CONTEXT["decision_recorded"])
    context["conditions"] = [{"text": "add a skills annex", "owner": None, "due": None}]
    rendered = renderer.render("decision_recorded", context)
    assert "add a skills annex (no owner named; no due date)" in rendered.text
    assert "no due date" in rendered.html
