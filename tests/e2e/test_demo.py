"""``govflow demo`` end to end: the run's outcome checked against the scenario and the mail server."""

from __future__ import annotations

import email
import mailbox
import subprocess
import sys
from collections import Counter
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from workflows.bank_holidays import england_and_wales_bank_holidays
from workflows.cli import main
from workflows.database import make_engine
from workflows.demo.scenario import SHIPPED_SCENARIOS, load_scenario
from workflows.store.sql import SqlEventStore

pytestmark = pytest.mark.slow
LONDON = ZoneInfo("Europe/London")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "out"
    assert main(["demo", "--out", str(out), "--fast"]) == 0
    return out


def _sent(out: Path) -> list[dict[str, object]]:
    store = SqlEventStore(make_engine(f"sqlite:///{out / 'govflow.db'}"))
    try:
        return [e.data for e in store.read_stream("notifications:selep-lis") if e.type == "NotificationSent"]
    finally:
        store.engine.dispose()


def test_the_run_ends_where_the_scenario_says_history_supports(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = load_scenario(SHIPPED_SCENARIOS / "selep-lis-2019.toml")
    assert (
        main(["--db", f"sqlite:///{demo / 'govflow.db'}", "--now", "2020-03-31", "status", "selep-lis", "--json"]) == 0
    )
    import json

    status = json.loads(capsys.readouterr().out)
    assert status["phase"] == scenario.expected_phase == "paused"
    gates = {g["id"]: g["status"] for g in status["gates"]}
    assert gates["final-agreement"] == "passed"
    assert gates["lis-agreed"] == "waiting"


def test_every_email_the_log_records_reached_the_smtp_server_once(demo: Path) -> None:
    sent = _sent(demo)
    received = [email.message_from_bytes(m.as_bytes()) for m in mailbox.Maildir(demo / "mail", create=False)]
    by_id = Counter(str(m["Message-ID"]) for m in received)
    assert len(received) == len(sent) > 50
    assert all(count == 1 for count in by_id.values())
    assert set(by_id) == {str(s["message_id"]) for s in sent}
    kinds = Counter(str(s["kind"]) for s in sent)
    for kind in ("call_for_papers", "paper_deadline", "publication", "quorum_check", "minutes", "escalation"):
        assert kinds[kind] > 0, kind
    assert kinds["decision_recorded"] > 0 and kinds["gate_passed"] > 0


def test_no_email_went_out_on_a_weekend_or_a_bank_holiday(demo: Path) -> None:
    holidays = england_and_wales_bank_holidays(2019, 2020)
    for message in mailbox.Maildir(demo / "mail", create=False):
        sent_at = email.utils.parsedate_to_datetime(message["Date"]).astimezone(LONDON)
        day: date = sent_at.date()
        assert day.weekday() < 5 and day not in holidays, message["Subject"]


def test_the_bundle_verifies_offline(demo: Path) -> None:
    checked = subprocess.run(
        [sys.executable, "-m", "workflows.cli", "audit", "verify-bundle", str(demo / "lis-audit.jsonl")],
        capture_output=True,
        text=True,
        cwd=demo,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr


def test_the_report_holds_the_timeline_with_one_row_per_phase(demo: Path) -> None:
    page = (demo / "report.html").read_text(encoding="utf-8")
    assert '<svg id="timeline"' in page
    assert page.count('<g class="phase"') == 7
    assert page.count('class="actual"') >= 7  # the loop back to drafting draws second bars
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")  # nothing fetched


def test_an_existing_output_folder_is_kept_without_force(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (demo / "govflow.db").stat().st_mtime_ns
    assert main(["demo", "--out", str(demo), "--fast"]) == 2
    assert "add --force" in capsys.readouterr().err
    assert (demo / "govflow.db").stat().st_mtime_ns == before
