"""``verify-bundle`` works offline: no database driver, ORM or crypto library is even imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
THIRD_PARTY = ("sqlalchemy", "cryptography", "alembic", "psycopg", "jinja2", "apscheduler", "holidays")
PROBE = f"""
import sys
from workflows.cli import main
code = main(["audit", "verify-bundle", "tests/golden/normal.jsonl", "--json"])
loaded = [m for m in {THIRD_PARTY!r} if m in sys.modules]
print(code, loaded, file=sys.stderr)
"""


def test_verify_bundle_imports_no_third_party_library_but_transitions() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=False, timeout=60
    )
    assert done.stderr.strip().splitlines()[-1] == "0 []", done.stderr


def test_the_offline_module_runs_alone_with_python_dash_m() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "workflows.audit.offline", "tests/golden/paused-superseded.jsonl"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert '"phase": "superseded"' in done.stdout
