"""The dependency direction of DESIGN.md holds: workflows → governance, workflows → notifications.

``governance`` imports only the standard library and ``transitions``; ``notifications``
imports neither ``governance`` nor ``workflows``. Checked on the source (AST), so
an import hidden inside a function counts too.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT_PACKAGES = {"governance", "workflows", "notifications"}


def imported_roots(package: str, root: Path = ROOT) -> dict[str, set[str]]:
    """Top-level modules imported by each file of a package."""
    found: dict[str, set[str]] = {}
    for path in sorted((root / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        roots: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots.add(node.module.split(".")[0])
        found[str(path.relative_to(root))] = roots
    return found


def test_governance_imports_only_the_standard_library_and_transitions() -> None:
    allowed = set(sys.stdlib_module_names) | {"transitions", "governance", "__future__"}
    offenders = {f: sorted(r - allowed) for f, r in imported_roots("governance").items() if r - allowed}
    assert offenders == {}


@pytest.mark.parametrize("package", ["governance", "notifications"])
def test_inner_packages_never_import_the_application(package: str) -> None:
    forbidden = PROJECT_PACKAGES - {package}
    offenders = {f: sorted(r & forbidden) for f, r in imported_roots(package).items() if r & forbidden}
    assert offenders == {}


def test_the_architecture_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    package = tmp_path / "governance"
    package.mkdir()
    (package / "rules.py").write_text("import json\n\ndef f():\n    from workflows import cli\n")
    assert imported_roots("governance", tmp_path) == {"governance/rules.py": {"json", "workflows"}}


def test_the_domain_knows_the_same_template_kinds_as_the_email_package() -> None:
    """governance may not import notifications, so it keeps its own list: the two must agree."""
    from governance.ladder import KINDS as DOMAIN_KINDS
    from notifications.templates import KINDS as TEMPLATE_KINDS

    assert tuple(DOMAIN_KINDS) == tuple(TEMPLATE_KINDS)
