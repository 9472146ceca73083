"""The ``govflow`` command line.

Parses and checks the input, calls one service function, prints the answer as
text or JSON. User mistakes end with one line on stderr and an exit code, never a
traceback:

    0 done · 1 refused by a rule · 2 bad input · 3 conflict (retry) · 4 history
    cannot be trusted · 5 database unavailable
"""

from __future__ import annotations

import argparse
import getpass
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any, NoReturn

from governance.errors import CorruptHistory, GovernanceError, RuleViolation, UnknownName
from workflows.bootstrap import Options
from workflows.errors import DefinitionFileError, WorkflowError

EXIT_OK, EXIT_REFUSED, EXIT_BAD_INPUT, EXIT_CONFLICT, EXIT_CORRUPT = 0, 1, 2, 3, 4

# Modules that add command groups: each has ``register(subparsers, common, writer)``
# and sets ``handler`` (a function of the parsed arguments returning the exit code)
# on its parsers. They must import nothing heavy at module level: start-up time counts.
EXTENSIONS: tuple[str, ...] = ("workflows.demo.cli", "workflows.audit.cli", "workflows.worker_cli")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date (YYYY-MM-DD)") from None


def _count(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None


def _global_options() -> _Parser:
    """Options accepted before or after the command; SUPPRESS keeps one from hiding the other."""
    parent = _Parser(add_help=False)
    parent.add_argument("--db", default=argparse.SUPPRESS, metavar="URL", help="database URL (else config)")
    parent.add_argument("--config", default=argparse.SUPPRESS, metavar="FILE", help="configuration file")
    parent.add_argument(
        "--now", default=argparse.SUPPRESS, metavar="DATETIME", help="run under a simulated clock (recorded as such)"
    )
    return parent


def _writer_options() -> _Parser:
    parent = _Parser(add_help=False)
    parent.add_argument("--actor", default=None, help="who records this (default: your login name)")
    parent.add_argument("--key", default=None, help="idempotency key: the same command sent twice records once")
    parent.add_argument("--json", action="store_true", help="print the outcome as JSON")
    return parent


def build_parser() -> argparse.ArgumentParser:
    common = _global_options()
    writer = _writer_options()
    parser = _Parser(
        prog="govflow", description="Workflow and approval engine for governance sign-off.", parents=[common]
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    def add(name: str, help_text: str, *parents: _Parser) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text, parents=[common, *parents])

    add("init", "create or migrate the database")

    definition = add("definition", "validate a definition file or draw its state diagram")
    dsub = definition.add_subparsers(dest="action", required=True, metavar="ACTION", parser_class=_Parser)
    validate = dsub.add_parser("validate", help="check a definition file", parents=[common])
    validate.add_argument("file")
    diagram = dsub.add_parser("diagram", help="Mermaid state diagram", parents=[common])
    diagram.add_argument("definition", help="definition id or file")

    start = add("start", "start an instance of a definition", writer)
    start.add_argument("definition", help="definition id (e.g. selep-lis-2019) or file")
    start.add_argument("--instance", required=True, help="the new instance's id")
    start.add_argument("--date", type=_day, help="start date (default: today)")

    document = add("document", "register document versions")
    docsub = document.add_subparsers(dest="action", required=True, metavar="ACTION", parser_class=_Parser)
    doc_add = docsub.add_parser("add", help="register a document version by SHA-256", parents=[common, writer])
    doc_add.add_argument("instance")
    doc_add.add_argument("file", type=Path)

    task = add("task", "complete tasks")
    tsub = task.add_subparsers(dest="action", required=True, metavar="ACTION", parser_class=_Parser)
    complete = tsub.add_parser("complete", help="mark a task done", parents=[common, writer])
    complete.add_argument("instance")
    complete.add_argument("task")
    complete.add_argument("--date", type=_day)
    complete.add_argument("--note")

    meeting = add("meeting", "schedule, reschedule or cancel meetings")
    msub = meeting.add_subparsers(dest="action", required=True, metavar="ACTION", parser_class=_Parser)
    schedule = msub.add_parser("schedule", help="schedule a meeting", parents=[common, writer])
    schedule.add_argument("instance")
    schedule.add_argument("body")
    schedule.add_argument("date", type=_day)
    schedule.add_argument("--id", dest="meeting_id")
    schedule.add_argument("--note", default="")
    reschedule = msub.add_parser("reschedule", help="move a meeting", parents=[common, writer])
    reschedule.add_argument("instance")
    reschedule.add_argument("meeting")
    reschedule.add_argument("date", type=_day)
    reschedule.add_argument("--reason", required=True)
    cancel = msub.add_parser("cancel", help="cancel a meeting", parents=[common, writer])
    cancel.add_argument("instance")
    cancel.add_argument("meeting")
    cancel.add_argument("--reason", required=True)

    decide = add("decide", "record a body's decision at a gate", writer)
    decide.add_argument("instance")
    decide.add_argument("--gate", required=True)
    decide.add_argument("--board", required=True, help="the deciding body")
    decide.add_argument("--outcome", required=True)
    decide.add_argument("--date", type=_day, required=True, help="the meeting or decision date")
    decide.add_argument("--mode", choices=["meeting", "written", "chairs-action", "delegated", "external"])
    for name in ("present", "for", "against", "abstain", "present-private", "present-public", "present-voting"):
        decide.add_argument(f"--{name}", type=_count)
    decide.add_argument("--conflicted", type=_count, default=0)
    decide.add_argument("--minute-ref")
    decide.add_argument("--authority", help="the delegating resolution (chair's action, delegated officer)")
    decide.add_argument("--condition", action="append", default=[], help="a condition (repeatable)")
    decide.add_argument("--condition-owner")
    decide.add_argument("--condition-due", type=_day)
    decide.add_argument("--deferred-to", type=_day)
    decide.add_argument("--comments")
    decide.add_argument("--declaration", action="append", default=[], help="a declaration of interest (repeatable)")

    condition = add("condition", "discharge conditions")
    csub = condition.add_subparsers(dest="action", required=True, metavar="ACTION", parser_class=_Parser)
    discharge = csub.add_parser("discharge", help="discharge a condition", parents=[common, writer])
    discharge.add_argument("instance")
    discharge.add_argument("condition")
    discharge.add_argument("--date", type=_day)
    discharge.add_argument("--evidence")

    for name, help_text in (("pause", "pause an instance"), ("resume", "resume a paused instance")):
        p = add(name, help_text, writer)
        p.add_argument("instance")
        p.add_argument("--reason", required=True)
    supersede = add("supersede", "supersede an instance (terminal)", writer)
    supersede.add_argument("instance")
    supersede.add_argument("--reason", required=True)
    supersede.add_argument("--by", help="what supersedes it")
    extend = add("extend-deadline", "move the external deadline", writer)
    extend.add_argument("instance")
    extend.add_argument("deadline", type=_day)
    extend.add_argument("--reason", required=True)

    for name, help_text in (("status", "phase, gates, deadlines"), ("history", "every event of an instance")):
        p = add(name, help_text)
        p.add_argument("instance")
        p.add_argument("--json", action="store_true")
    listing = add("list", "every instance")
    listing.add_argument("--json", action="store_true")
    for module_name in EXTENSIONS:
        importlib.import_module(module_name).register(sub, common, writer)
    return parser


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def options_of(args: argparse.Namespace) -> Options:
    return Options(db=getattr(args, "db", None), config=getattr(args, "config", None), now=getattr(args, "now", None))


def actor_of(args: argparse.Namespace) -> str:
    actor: str | None = args.actor
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _cmd_init(args: argparse.Namespace) -> int:
    from workflows.bootstrap import build_engine, settings_for
    from workflows.database import migrate, safe_url

    options = options_of(args)
    settings = settings_for(options)
    # The same engine settings as every other command (TLS mode, timeouts) apply to the migration.
    engine = build_engine(options, settings)
    revision = migrate(engine)
    print(f"database ready: {safe_url(engine)} (schema {revision})")
    from workflows.audit.signing import ensure_key, key_path

    if ensure_key(key_path(settings)):
        print(f"checkpoint signing key created: {key_path(settings)} (keep it private; back it up)")
    return EXIT_OK


def _cmd_definition(args: argparse.Namespace) -> int:
    from workflows.bootstrap import settings_for
    from workflows.definition_file import find_definition, load_definition

    if args.action == "validate":
        path = Path(args.file)
        if not path.is_file():
            raise _bad(f"no such definition file: {path}")
        definition = load_definition(path)
        gates = len(definition.gate_by_id)
        print(
            f"{path}: valid — {definition.id} {definition.version}: {len(definition.phases)} phases, {gates} gates, "
            f"{len(definition.bodies)} bodies, {len(definition.meetings)} meetings "
            f"(sha256 {definition.content_hash[:12]}…)"
        )
        return EXIT_OK
    from governance.diagram import mermaid

    settings = settings_for(options_of(args))
    print(mermaid(load_definition(find_definition(args.definition, settings.definition_dirs))), end="")
    return EXIT_OK


def _bad(message: str) -> WorkflowError:
    from workflows.errors import BadInput

    return BadInput(message)


def _cmd_query(args: argparse.Namespace) -> int:
    from workflows.bootstrap import build_query_services
    from workflows.report import history_text, list_text, status_text

    services = build_query_services(options_of(args))
    if args.command == "list":
        rows = services.instances()
        print_json(rows) if args.json else print(list_text(rows))
    elif args.command == "status":
        status = services.status(args.instance)
        print_json(status) if args.json else print(status_text(status))
    else:
        events = services.history(args.instance)
        timezone = services.load(args.instance).definition.timezone if not args.json else ""
        print_json(events) if args.json else print(history_text(events, timezone))
    return EXIT_OK


def _decision_input(args: argparse.Namespace) -> Any:
    from governance.quorum import DecisionInput

    return DecisionInput(
        gate=args.gate,
        body=args.board,
        outcome=args.outcome,
        day=args.date,
        mode=args.mode,
        present=args.present,
        votes_for=getattr(args, "for"),
        against=args.against,
        abstain=args.abstain,
        conflicted=args.conflicted,
        present_private=args.present_private,
        present_public=args.present_public,
        present_voting=args.present_voting,
        minute_ref=args.minute_ref,
        authority=args.authority,
        conditions=tuple(args.condition),
        condition_owner=args.condition_owner,
        condition_due=args.condition_due,
        deferred_to=args.deferred_to,
        comments=args.comments,
        declarations=tuple(args.declaration),
    )


def _cmd_write(args: argparse.Namespace) -> int:
    from workflows.bootstrap import build_services
    from workflows.report import outcome_text

    services = build_services(options_of(args))
    who = {"actor": actor_of(args), "key": args.key}
    command, action = args.command, getattr(args, "action", None)
    handlers: dict[tuple[str, str | None], Callable[[], Any]] = {
        ("start", None): lambda: services.start(args.definition, args.instance, day=args.date, **who),
        ("document", "add"): lambda: services.add_document(args.instance, args.file, **who),
        ("task", "complete"): lambda: services.complete_task(
            args.instance, args.task, day=args.date, note=args.note, **who
        ),
        ("meeting", "schedule"): lambda: services.schedule_meeting(
            args.instance, args.body, args.date, meeting_id=args.meeting_id, note=args.note, **who
        ),
        ("meeting", "reschedule"): lambda: services.reschedule_meeting(
            args.instance, args.meeting, args.date, args.reason, **who
        ),
        ("meeting", "cancel"): lambda: services.cancel_meeting(args.instance, args.meeting, args.reason, **who),
        ("decide", None): lambda: services.decide(args.instance, _decision_input(args), **who),
        ("condition", "discharge"): lambda: services.discharge_condition(
            args.instance, args.condition, day=args.date, evidence=args.evidence, **who
        ),
        ("pause", None): lambda: services.pause(args.instance, args.reason, **who),
        ("resume", None): lambda: services.resume(args.instance, args.reason, **who),
        ("supersede", None): lambda: services.supersede(args.instance, args.reason, by=args.by, **who),
        ("extend-deadline", None): lambda: services.extend_deadline(args.instance, args.deadline, args.reason, **who),
    }
    outcome = handlers[(command, action)]().as_json()
    print_json(outcome) if args.json else print(outcome_text(outcome))
    return EXIT_OK


def _dispatch(args: argparse.Namespace) -> int:
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is not None:
        return handler(args)
    if args.command == "init":
        return _cmd_init(args)
    if args.command == "definition":
        return _cmd_definition(args)
    if args.command in ("status", "history", "list"):
        return _cmd_query(args)
    return _cmd_write(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (the console script exits with it)."""
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except RuleViolation as error:
        return _fail(f"refused: {error}", EXIT_REFUSED)
    except UnknownName as error:
        return _fail(str(error), EXIT_BAD_INPUT)
    except CorruptHistory as error:
        return _fail(f"history cannot be trusted: {error}", EXIT_CORRUPT)
    except GovernanceError as error:
        return _fail(str(error), EXIT_REFUSED)
    except DefinitionFileError as error:
        lines = [f"{error.source}: {len(error.problems)} problem(s)", *(f"  {p}" for p in error.problems)]
        return _fail("\n".join(lines), error.exit_code)
    except WorkflowError as error:
        return _fail(str(error), error.exit_code)
    except KeyboardInterrupt:
        return _fail("interrupted; nothing half-recorded (each command is one transaction)", 130)
    except BrokenPipeError:
        return EXIT_OK
    finally:
        from workflows.bootstrap import close_engines

        close_engines()


def _fail(message: str, code: int) -> int:
    print(f"govflow: {message}", file=sys.stderr)
    return code


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
