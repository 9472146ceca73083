"""Rendering notification templates: one Jinja2 text and HTML pair per kind of message.

Each kind has ``<kind>.txt.j2`` and ``<kind>.html.j2`` in the template directory
(``notifications/templates/`` by default). The subject is the ``{% block subject %}`` of
the text template; the HTML template receives it as ``subject``. Files starting with
``_`` are shared layouts (``_layout.txt.j2``, ``_layout.html.j2``) that the kinds extend.
The variables each kind may use are the contract in :mod:`notifications.samples`.

Templates are user-editable, so they run in Jinja2's immutable sandbox, with
``StrictUndefined`` (a typo is an error, not a blank), autoescaping for ``.html.j2``
only (escaping the text part would show ``&amp;`` to readers), a cap on the size of each
rendered part, and ``*``/``**`` refused when they would build a huge value before the
cap could see it (``+`` too). Filters: ``longdate`` (``Friday 4 October 2019``) and
``working_days`` (``1 working day``, ``3 working days``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from notifications.errors import TemplateError
from notifications.samples import SAMPLE_CONTEXT

if TYPE_CHECKING:
    import jinja2

__all__ = ["KINDS", "MAX_RENDERED_BYTES", "SAMPLE_CONTEXT", "RenderedMessage", "TemplateRenderer"]

KINDS: tuple[str, ...] = (
    "call_for_papers",
    "paper_deadline",
    "escalation",
    "publication",
    "quorum_check",
    "minutes",
    "condition_due",
    "gate_overdue",
    "at_risk",
    "decision_recorded",
    "gate_passed",
)
DEFAULT_TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
MAX_RENDERED_BYTES = 256 * 1024
MAX_SUBJECT_CHARS = 250
# Variables the renderer itself supplies, on top of the kind's context.
RENDERER_VARIABLES = frozenset({"subject"})
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


@dataclass(frozen=True)
class RenderedMessage:
    """A rendered notification: the subject line and the two alternative bodies."""

    kind: str
    subject: str
    text: str
    html: str


class TemplateRenderer:
    """Renders the templates of one directory; the Jinja2 environment is built once."""

    def __init__(self, template_dir: Path | None = None) -> None:
        import jinja2

        self.template_dir = template_dir or DEFAULT_TEMPLATE_DIR
        self._loader = jinja2.FileSystemLoader(self.template_dir)
        self._env = _make_environment(self._loader)

    def render(self, kind: str, context: Mapping[str, Any]) -> RenderedMessage:
        """Render ``kind`` with ``context``; raises :class:`TemplateError` for any template problem."""
        if kind not in KINDS:
            raise TemplateError(f"unknown notification kind '{kind}' (known: {', '.join(KINDS)})")
        text_name, html_name = f"{kind}.txt.j2", f"{kind}.html.j2"
        text_template = self._load(text_name)
        subject = _render_subject(text_template, text_name, context)
        text = _normalise_text(_render(text_template, text_name, context))
        html = _render(self._load(html_name), html_name, {**context, "subject": subject})
        return RenderedMessage(kind=kind, subject=subject, text=text, html=html)

    def check(self) -> list[str]:
        """Every problem of the template directory, one line each; an empty list means all is well.

        Each kind must render with ``SAMPLE_CONTEXT[kind]`` and use no variable outside it
        (checked on the source, so a branch the sample does not take is checked too).
        """
        problems: list[str] = []
        for kind in KINDS:
            allowed = set(SAMPLE_CONTEXT[kind]) | RENDERER_VARIABLES
            for name in (f"{kind}.txt.j2", f"{kind}.html.j2"):
                try:
                    unknown = self._undeclared(name, set()) - allowed
                except TemplateError as error:
                    problems.append(str(error))
                    continue
                if unknown:
                    names = ", ".join(sorted(unknown))
                    problems.append(f"{name}: unknown variable(s) {names} (not in the {kind} sample)")
            try:
                self.render(kind, SAMPLE_CONTEXT[kind])
            except TemplateError as error:
                problems.append(str(error))
        known = {f"{kind}.{part}.j2" for kind in KINDS for part in ("txt", "html")}
        for path in sorted(self.template_dir.glob("*.j2")):
            if path.name not in known and not path.name.startswith("_"):
                problems.append(f"{path.name}: not a known kind (a misspelt file name?)")
        return list(dict.fromkeys(problems))  # a missing file is reported once, not per check

    def _load(self, name: str) -> jinja2.Template:
        import jinja2

        try:
            return self._env.get_template(name)
        except jinja2.TemplateSyntaxError as error:
            raise TemplateError(f"{error.name or name} line {error.lineno}: {error.message}") from None
        except jinja2.TemplateNotFound as error:
            raise TemplateError(f"template {error.name} not found in {self.template_dir}") from None

    def _undeclared(self, name: str, seen: set[str]) -> set[str]:
        """Variables ``name`` and the layouts it extends or includes look up in the context."""
        import jinja2
        from jinja2 import meta

        seen.add(name)
        try:
            source, _, _ = self._loader.get_source(self._env, name)
            tree = self._env.parse(source, name)
        except jinja2.TemplateSyntaxError as error:
            raise TemplateError(f"{name} line {error.lineno}: {error.message}") from None
        except jinja2.TemplateNotFound:
            raise TemplateError(f"template {name} not found in {self.template_dir}") from None
        found = meta.find_undeclared_variables(tree) - set(self._env.globals)
        for child in meta.find_referenced_templates(tree):
            if child is not None and child not in seen:
                found |= self._undeclared(child, seen)
        return found


def _make_environment(loader: jinja2.BaseLoader) -> jinja2.Environment:
    import jinja2
    from jinja2.exceptions import SecurityError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class BoundedSandbox(ImmutableSandboxedEnvironment):
        # The sandbox lets `"x" * 10**9` through; refuse such values before they exist.
        # (A template can still grow a value step by step with `~` or filters; the
        # streaming cap in _render stops the output, and editing templates is an admin task.)
        intercepted_binops = frozenset({"*", "**", "+"})

        def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
            if operator in "*+" and _oversized(operator, left, right):
                raise SecurityError(f"the result of '{operator}' would be too large")
            if operator == "**" and isinstance(left, int) and isinstance(right, int) and abs(right) > 64:
                raise SecurityError("exponents above 64 are not allowed")
            return super().call_binop(context, operator, left, right)

    env = BoundedSandbox(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )

    def strict(function: Callable[[Any], str]) -> Callable[[Any], str]:
        def apply(value: Any) -> str:
            if isinstance(value, jinja2.Undefined):
                str(value)  # StrictUndefined raises here, naming the missing variable
            return function(value)

        return apply

    env.filters.update({"longdate": strict(long_date), "working_days": strict(working_days)})
    return env


def _oversized(operator: str, left: Any, right: Any) -> bool:
    sequences = (str, list, tuple)
    if operator == "+":
        return (
            isinstance(left, sequences) and isinstance(right, sequences) and len(left) + len(right) > MAX_RENDERED_BYTES
        )
    for sequence, count in ((left, right), (right, left)):
        if isinstance(sequence, sequences) and isinstance(count, int):
            return len(sequence) * count > MAX_RENDERED_BYTES
    return False


def _render(template: jinja2.Template, name: str, context: Mapping[str, Any]) -> str:
    # Stream the output so a loop that grows without bound stops at the cap.
    chunks: list[str] = []
    size = 0
    for chunk in _guarded(name, lambda: template.generate(dict(context))):
        size += len(chunk.encode())
        if size > MAX_RENDERED_BYTES:
            raise TemplateError(f"{name}: rendered output exceeds {MAX_RENDERED_BYTES // 1024} KiB")
        chunks.append(chunk)
    return "".join(chunks)


def _render_subject(template: jinja2.Template, name: str, context: Mapping[str, Any]) -> str:
    block = template.blocks.get("subject")
    if block is None:
        raise TemplateError(f"{name}: no {{% block subject %}} (the subject line)")

    def produce() -> Iterator[str]:
        try:
            yield from block(template.new_context(dict(context)))
        except Exception:
            # What Template.generate does: map the traceback back to template lines.
            template.environment.handle_exception()

    text = "".join(_guarded(name, produce))
    # One line: a newline in a variable must not become a header break.
    subject = " ".join(text.split())
    if not subject:
        raise TemplateError(f"{name}: the subject is empty")
    if len(subject) > MAX_SUBJECT_CHARS:
        raise TemplateError(f"{name}: the subject is longer than {MAX_SUBJECT_CHARS} characters")
    return subject


def _guarded(name: str, produce: Callable[[], Iterator[str]]) -> Iterator[str]:
    """Yield from ``produce()``, turning any error a template can cause into a TemplateError."""
    try:
        yield from produce()
    except TemplateError:
        raise
    except Exception as error:  # a user-edited template can raise anything; all of it is a template problem
        where = _template_position(error) or name
        message = getattr(error, "message", None) or str(error) or type(error).__name__
        raise TemplateError(f"{where}: {message}") from error


def _template_position(error: BaseException) -> str | None:
    """``"name line N"`` of the innermost template frame (a layout's, if the error is there)."""
    # Jinja2 rewrites tracebacks so that template frames carry the template's file name.
    position = None
    trace = error.__traceback__
    while trace is not None:
        filename = Path(trace.tb_frame.f_code.co_filename).name
        if filename.endswith(".j2"):
            position = f"{filename} line {trace.tb_lineno}"
        trace = trace.tb_next
    return position


def _normalise_text(text: str) -> str:
    # Editors need not fight Jinja2's whitespace: trailing spaces go, runs of blank lines become one.
    lines = [line.rstrip() for line in text.strip("\n").splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n"


def long_date(value: date | str) -> str:
    """``Friday 4 October 2019`` from a date, datetime or ISO string (the ``longdate`` filter)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"'{value}' is not an ISO date") from None
    if not isinstance(value, date):
        raise ValueError(f"longdate needs a date, not {type(value).__name__}")
    # Names spelt out rather than %A/%B, which follow the process locale.
    text = f"{_DAYS[value.weekday()]} {value.day} {_MONTHS[value.month - 1]} {value.year}"
    return f"{text}, {value:%H:%M}" if isinstance(value, datetime) else text


def working_days(count: int) -> str:
    """``1 working day`` / ``3 working days`` (the ``working_days`` filter)."""
    return f"{count} working day{'' if abs(count) == 1 else 's'}"
