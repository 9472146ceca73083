"""The ``govflow audit …`` command group and ``govflow correct`` (a ``workflows.cli`` extension).

``register`` adds the parsers; each handler imports what it needs when it runs,
so ``govflow --help`` stays fast. Exit codes follow ``workflows.cli``: 0 sound,
2 bad input, 4 tampering found (verify, verify-bundle, and any command that
meets a log that fails its seals).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_TAMPERED = 0, 4


def register(sub: Any, common: argparse.ArgumentParser, writer: argparse.ArgumentParser) -> None:
    """Add ``audit`` and ``correct`` to the top-level subparsers."""
    parser_class = type(common)
    audit = sub.add_parser(
        "audit",
        help="replay, verify, sign, prove, export, import, diff",
        description="The auditor's commands.",
        parents=[common],
    )
    asub = audit.add_subparsers(dest="action", required=True, metavar="ACTION", parser_class=parser_class)

    def add(name: str, help_text: str, handler: Any, *parents: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = asub.add_parser(
            name, help=help_text, description=help_text, parents=[common, *parents]
        )
        parser.set_defaults(handler=handler)
        return parser

    replay = add("replay", "the state at a moment, and the events behind it", _replay)
    replay.add_argument("instance")
    replay.add_argument("--as-of", required=True, metavar="DATE|DATETIME", help="in the workflow's timezone")
    replay.add_argument("--by", choices=["occurred", "recorded"], default="occurred", help=_BY_HELP)
    replay.add_argument("--json", action="store_true", help="status --json as of then, with the events")

    verify = add("verify", "check hash chains, positions and signed checkpoints (exit 4 on tampering)", _verify)
    verify.add_argument("instance", nargs="?", help="one instance (default: the whole log)")
    verify.add_argument(
        "--against", action="append", default=[], type=Path, metavar="FILE", help="a checkpoint or bundle kept outside"
    )
    verify.add_argument("--key", metavar="HEX|FILE", help="trust this public key (default: the configured key's)")
    verify.add_argument("--json", action="store_true")

    checkpoint = add("checkpoint", "sign a Merkle tree head of the whole log", _checkpoint)
    checkpoint.add_argument("--actor", default=None, help="who signs (default: your login name)")
    checkpoint.add_argument("--json", action="store_true")

    prove = add("prove", "inclusion proof of an event, or consistency proof between checkpoints", _prove)
    prove.add_argument("instance", nargs="?")
    prove.add_argument("--version", type=int, help="the event's version in its stream")
    prove.add_argument("--checkpoint", type=int, metavar="N", help="prove against checkpoint N (default: newest)")
    prove.add_argument("--between", type=int, nargs=2, metavar=("OLD", "NEW"), help="two checkpoint numbers")
    prove.add_argument("--json", action="store_true")

    export = add("export", "write a self-contained bundle of one instance", _export)
    export.add_argument("instance")
    export.add_argument("--out", required=True, type=Path, metavar="FILE")
    export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    export.add_argument("--checkpoint", action="store_true", help="sign a fresh checkpoint first")
    export.add_argument("--actor", default=None, help="who signs the fresh checkpoint")

    load = add("import", "verify a bundle and load it into an empty database (exit 4 if it fails)", _import)
    load.add_argument("file", type=Path)
    load.add_argument(
        "--key", metavar="HEX|FILE", help="the key the bundle must be signed by (default: the configured key's)"
    )
    load.add_argument("--actor", default=None, help="who imports (default: your login name)")
    load.add_argument("--json", action="store_true")

    bundle = add("verify-bundle", "verify an exported bundle offline (no database, no config)", _verify_bundle)
    bundle.add_argument("file", type=Path)
    bundle.add_argument("--key", metavar="HEX|FILE", help="the public key the checkpoint must be signed by")
    bundle.add_argument("--json", action="store_true")

    diff = add("diff", "what changed between two dates, and who did it", _diff)
    diff.add_argument("instance")
    diff.add_argument("--from", dest="start", required=True, metavar="DATE|DATETIME", help="a date: its start")
    diff.add_argument("--to", dest="end", required=True, metavar="DATE|DATETIME", help="a date: its end")
    diff.add_argument("--by", choices=["occurred", "recorded"], default="occurred", help=_BY_HELP)
    diff.add_argument("--json", action="store_true")

    correct = sub.add_parser(
        "correct",
        help="record a correction of an event (the event stays)",
        description="Record an EventCorrected amendment; a decision whose gate is open is voided.",
        parents=[common, writer],
    )
    correct.add_argument("instance")
    correct.add_argument("--version", type=int, required=True, help="the corrected event's version")
    correct.add_argument("--reason", required=True)
    correct.set_defaults(handler=_correct)


_BY_HELP = "occurred: what had happened by then (default); recorded: what the record showed then"


def _replay(args: argparse.Namespace) -> int:
    from workflows.audit import views
    from workflows.audit.app import open_audit

    audit = open_audit(args)
    replayed = audit.replay(args.instance, args.as_of, args.by)
    views.show(views.replay_json(replayed) if args.json else views.replay_text(replayed), args.json)
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    from workflows.audit import views
    from workflows.audit.app import open_audit

    audit = open_audit(args)
    report = audit.verify(args.instance, args.against, args.key)
    views.show(report.as_json() if args.json else views.verify_text(report), args.json)
    return EXIT_OK if report.ok else EXIT_TAMPERED


def _checkpoint(args: argparse.Namespace) -> int:
    from workflows.audit import views
    from workflows.audit.app import open_audit
    from workflows.cli import actor_of

    made = open_audit(args).checkpoint(actor_of(args))
    views.show(views.checkpoint_json(made) if args.json else views.checkpoint_text(made), args.json)
    return EXIT_OK


def _prove(args: argparse.Namespace) -> int:
    from workflows.audit import views
    from workflows.audit.app import open_audit
    from workflows.errors import BadInput

    audit = open_audit(args)
    if args.between:
        if args.instance or args.version is not None:
            raise BadInput("give either INSTANCE --version N or --between OLD NEW, not both")
        answer = audit.prove_consistency(*args.between)
    elif args.instance and args.version is not None:
        answer = audit.prove_inclusion(args.instance, args.version, args.checkpoint)
    else:
        raise BadInput("give INSTANCE --version N (inclusion) or --between OLD NEW (consistency)")
    views.show(answer if args.json else views.proof_text(answer), args.json)
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    from workflows.audit import views
    from workflows.audit.app import open_audit
    from workflows.cli import actor_of

    audit = open_audit(args)
    if args.checkpoint:
        audit.checkpoint(actor_of(args))
    print(views.export_text(audit.export(args.instance, args.out, args.format)))
    return EXIT_OK


def _import(args: argparse.Namespace) -> int:
    from workflows.audit import views
    from workflows.audit.app import open_audit
    from workflows.cli import actor_of

    done = open_audit(args).import_bundle(args.file, args.key, actor_of(args))
    views.show(views.import_json(done) if args.json else views.import_text(done), args.json)
    return EXIT_OK


def _verify_bundle(args: argparse.Namespace) -> int:
    # Offline on purpose: no configuration, no database, no cryptography package.
    from workflows.audit import views
    from workflows.audit.offline import verify_bundle

    report = verify_bundle(args.file, views.public_key_arg(args.key))
    views.show(report.as_json() if args.json else views.bundle_text(report), args.json)
    return EXIT_OK if report.ok else EXIT_TAMPERED


def _diff(args: argparse.Namespace) -> int:
    from workflows.audit import views
    from workflows.audit.app import open_audit

    changes = open_audit(args).diff(args.instance, args.start, args.end, args.by)
    views.show(changes if args.json else views.diff_text(changes), args.json)
    return EXIT_OK


def _correct(args: argparse.Namespace) -> int:
    from workflows.bootstrap import build_services
    from workflows.cli import actor_of, options_of, print_json
    from workflows.report import outcome_text

    services = build_services(options_of(args))
    outcome = services.correct(args.instance, args.version, args.reason, actor=actor_of(args), key=args.key)
    print_json(outcome.as_json()) if args.json else print(outcome_text(outcome.as_json()))
    return EXIT_OK
