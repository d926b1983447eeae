"""The ``flows`` command line: validate, bundle, push, test, run, schema, openapi, replay,
init, demo, and the commands installed distributions add (``flows.commands``:
``segment-sink``).

Every failure is reported as clear lines on stderr (``flows: error: ...``)
with a non-zero exit code; nothing prints a traceback for a user mistake.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable
from importlib.metadata import EntryPoint, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from collector.event import EventValidationError
from flows.cli import demo as demo_command
from flows.cli import init as init_command
from flows.cli.commands import CommandError, CommandTakenError, Handler, add_installed_commands
from flows.flowfile.config import FlowError, read_flow_file, resolve_flow

if TYPE_CHECKING:
    from flows.graph import Flow

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def _load(file: str, flow: str | None) -> Flow:
    """Read, resolve and build a flow (a bundle's pins checked first), as every command does."""
    from flows.flowfile.bundle import check_pins
    from flows.graph import build_flow

    data = read_flow_file(file)
    check_pins(data)
    return build_flow(resolve_flow(data, flow))


def cmd_validate(args: argparse.Namespace) -> int:
    flow = _load(args.file, args.flow)  # a bundle that run would refuse fails here too
    for line in _warnings(flow):
        print(f"flows: warning: {line}", file=sys.stderr)
    destinations = [a.id for a in flow.collector.destinations]
    transformers = list(flow.transformers)
    more = f", {_count(transformers, 'transformer')}" if transformers else ""
    stores = f", {_count(list(flow.stores), 'store')}" if flow.stores else ""
    print(
        f"ok: {args.file}: flow {flow.name!r} with "
        f"{_count(destinations, 'destination')}, {_count(list(flow.sources), 'source')}"
        f"{more}{stores}"
    )
    if not args.check:
        return EXIT_OK
    failed = 0
    for active in flow.collector.destinations:
        report = active.destination.check_connection()
        status = "ok" if report.ok else "FAILED"
        print(f"{active.id}: {status}: {report.detail}")
        failed += not report.ok
    if failed:
        raise CommandError(f"{failed} destination connection check(s) failed")
    return EXIT_OK


def _warnings(flow: Flow) -> list[str]:
    """Settings that are valid but will not do what was meant (the exit code stays 0)."""
    from flows.http.cors import trace_header_warning

    lines = list(flow.warnings)
    for source_id, source in flow.sources.items():
        if getattr(source, "type", "") != "http":
            continue
        problem = trace_header_warning(source.settings.cors)
        if problem is not None:
            where = f"flows.{flow.name}.sources.{source_id}.config.settings.cors.headers"
            lines.append(f"{where}: {problem}")
    return lines


def _count(names: list[str], noun: str) -> str:
    plural = noun if len(names) == 1 else f"{noun}s"
    return f"{len(names)} {plural}" + (f" ({', '.join(names)})" if names else "")


def cmd_bundle(args: argparse.Namespace) -> int:
    from flows.flowfile.bundle import make_bundle

    data = read_flow_file(args.file)
    bundle = make_bundle(data, source=Path(args.file).name, flow_name=args.flow)
    text = json.dumps(bundle, indent=2, ensure_ascii=False) + "\n"
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"bundle written: {args.output} (flow {bundle['bundle']['flow']!r})", file=sys.stderr)
    return EXIT_OK


def cmd_push(args: argparse.Namespace) -> int:
    from flows.graph import preview

    flow = _load(args.file, args.flow)
    events = _read_events(args.event)
    out = sys.stdout.buffer
    failures = []
    for index, raw in enumerate(events):
        try:
            lines = preview(flow, raw)
        except EventValidationError as error:
            failures.append(f"event {index}: {'; '.join(str(e) for e in error.errors)}")
            continue
        for line in lines:
            out.write(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
            if "failed" in line:
                failures.append(
                    f"event {index}: destination {line['destination']} failed on "
                    f"{line['event']!r}: {line['failed']}"
                )
    out.flush()
    if failures:
        raise CommandError(failures)
    return EXIT_OK


def cmd_test(args: argparse.Namespace) -> int:
    from flows.cli.step_examples import FAIL, render_table, run_examples

    flow = _load(args.file, args.flow)
    results = run_examples(flow)
    print(render_table(results))
    return EXIT_FAILED if any(result.status == FAIL for result in results) else EXIT_OK


def _read_events(source: str) -> list[Any]:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as error:
        raise CommandError(f"--event: cannot read {source}: {error.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise CommandError(
            f"--event: {source}: invalid JSON at line {error.lineno} column {error.colno}: {error.msg}"
        ) from None
    if isinstance(data, dict) and isinstance(data.get("batch"), list):
        return list(data["batch"])
    return data if isinstance(data, list) else [data]


def cmd_run(args: argparse.Namespace) -> int:
    from flows.server.logs import configure_logging
    from flows.server.serving import ListenError, serve

    configure_logging(args.log_level, args.log_format)
    flow = _load(args.file, args.flow)
    source = _http_source(args.file, flow)

    def announce(url: str) -> None:
        print(
            f"flows: serving flow {flow.name!r} on {url} (POST {source.settings.path})", flush=True
        )

    try:
        return serve(
            flow.collector,
            source,
            port=args.port,
            host=args.host,
            shutdown_timeout=args.shutdown_timeout,
            ready_message=announce,
            workers=args.workers,
            access_log=args.access_log,
        )
    except ListenError as error:
        raise CommandError(str(error)) from None


def _http_source(file: str, flow: Flow) -> Any:
    """The flow's first http source (the one ``flows run`` serves)."""
    http_sources = [s for s in flow.sources.values() if getattr(s, "type", "") == "http"]
    if not http_sources:
        raise CommandError(f"{file}: flow {flow.name!r} has no http source to serve")
    return http_sources[0]


def _write_json(document: Any, output: str) -> int:
    text = json.dumps(document, indent=2) + "\n"
    if output == "-":
        sys.stdout.write(text)
    else:
        Path(output).write_text(text, encoding="utf-8")
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from flows.flowfile.schema import flow_file_schema

    return _write_json(flow_file_schema(), args.output)


def cmd_openapi(args: argparse.Namespace) -> int:
    from flows.http.openapi import openapi_document

    source = _http_source(args.file, _load(args.file, args.flow))
    return _write_json(openapi_document(source.settings), args.output)


OLD_REPLAY_FORM = (
    "flows replay FILE --flow FLOW_FILE [--name NAME] is deprecated; "
    "use flows replay FILE FLOW_FILE --flow NAME"
)


def _replay_flow(args: argparse.Namespace) -> tuple[str, str | None, bool]:
    """(flow file, flow name, old form?) of ``flows replay``.

    The old form is the one without a second positional: there ``--flow`` is
    the file and ``--name`` the flow's name. With FLOW_FILE, ``--flow`` is the
    name, as in every other command.
    """
    if args.flow_file is not None:
        if args.name is not None:
            raise CommandError("--name belongs to the old form; with FLOW_FILE use --flow NAME")
        return args.flow_file, args.flow, False
    if args.flow is None:
        raise CommandError("replay needs a flow file: flows replay FILE FLOW_FILE [--flow NAME]")
    print(f"flows: warning: {OLD_REPLAY_FORM}", file=sys.stderr)
    return args.flow, args.name, True


def cmd_replay(args: argparse.Namespace) -> int:
    from collector.replay import replay_file, replayable
    from flows.cli.replay_progress import ReplayProgress

    flow_file, flow_name, old_form = _replay_flow(args)
    try:
        flow = _load(flow_file, flow_name)
    except FlowError as error:
        if not old_form:
            raise
        # In the old form the flow's name is --name (--flow is the file).
        raise FlowError([line.replace("--flow", "--name") for line in error.errors]) from None
    everyone = {active.id: active.destination for active in flow.collector.destinations}
    replaying = replayable(everyone.values())
    if not replaying:
        kinds = ", ".join(f"{d.id} ({d.type})" for d in everyone.values()) or "none"
        raise CommandError(
            f"{flow_file}: flow {flow.name!r} has no destination that replays dead letters "
            f"(its destinations: {kinds})"
        )
    if args.destination is not None and args.destination not in replaying:
        found = everyone.get(args.destination)
        what = (
            f"destination {args.destination!r} ({found.type}) cannot replay dead letters"
            if found is not None
            else f"no destination {args.destination!r} in flow {flow.name!r}"
        )
        raise CommandError(f"--destination: {what}; those that can: {', '.join(sorted(replaying))}")
    progress = ReplayProgress(dry_run=args.dry_run)
    try:
        report = replay_file(
            args.file,
            everyone,
            destination=args.destination,
            on_problem=lambda line: print(line, file=sys.stderr),
            on_progress=progress,
            dry_run=args.dry_run,
            rate=args.rate,
        )
    except OSError as error:
        raise CommandError(f"{args.file}: cannot read: {error.strerror or error}") from None
    progress.done(report)
    if args.dry_run:
        for target, count in report.planned.items():
            print(f"would replay {count} message(s) to {target!r} ({everyone[target].type})")
        planned = sum(report.planned.values())
        print(
            f"dry run: {planned} message(s) from {args.file} would be replayed; "
            f"{report.failed} line(s) would fail; nothing sent",
            flush=True,
        )
        if report.failed:
            raise CommandError(f"{report.failed} line(s) would not be replayed")
        return EXIT_OK
    failed = f"; {report.failed} failed -> {report.failed_path}" if report.failed else "; 0 failed"
    print(f"replayed {report.replayed} message(s) from {args.file}{failed}", flush=True)
    if report.failed:
        raise CommandError(
            f"{report.failed} line(s) not replayed; they are in {report.failed_path}"
        )
    return EXIT_OK


def _positive_rate(text: str) -> float:
    """``--rate``: messages per second, more than 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, not {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def build_parser(installed: Iterable[EntryPoint] | None = None) -> argparse.ArgumentParser:
    """The parser of every command: ours, then those of ``installed`` (default: the
    ``flows.commands`` entry points)."""
    parser = argparse.ArgumentParser(
        prog="flows",
        description="Run walkerOS-style event flows: HTTP in, Segment (and more) out.",
    )
    parser.add_argument("--version", action="version", version=f"flows {version('walkeros-flows')}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, handler: Handler, help_: str) -> argparse.ArgumentParser:
        if name in commands.choices:
            raise CommandTakenError(f"flows has a {name!r} command already")
        sub = commands.add_parser(name, help=help_, description=help_)
        sub.set_defaults(handler=handler)
        return sub

    validate = command(
        "validate", cmd_validate, "Check a flow file (and, with --check, connections)"
    )
    validate.add_argument("file", help="flow file or bundle (JSON)")
    validate.add_argument("--flow", help="flow name (default: the only one, or 'default')")
    validate.add_argument(
        "--check", action="store_true", help="also test each destination's connection"
    )

    bundle = command("bundle", cmd_bundle, "Write one validated, deployable flow with $env kept")
    bundle.add_argument("file", help="flow file (JSON)")
    bundle.add_argument("--flow", help="flow name (default: the only one, or 'default')")
    bundle.add_argument("-o", "--output", required=True, help="bundle file to write ('-': stdout)")

    push = command("push", cmd_push, "Show the messages an event would produce, sending nothing")
    push.add_argument("file", help="flow file or bundle (JSON)")
    push.add_argument(
        "--event", required=True, help="event JSON file (an event, a list, or {batch}); '-': stdin"
    )
    push.add_argument("--flow", help="flow name (default: the only one, or 'default')")

    test = command("test", cmd_test, "Run every step's examples (in -> out); exit 1 on a failure")
    test.add_argument("file", help="flow file or bundle (JSON)")
    test.add_argument("--flow", help="flow name (default: the only one, or 'default')")

    run = command("run", cmd_run, "Serve a flow until SIGTERM/SIGINT, then flush and exit")
    run.add_argument("file", help="flow file or bundle (JSON)")
    run.add_argument("--flow", help="flow name (default: the only one, or 'default')")
    run.add_argument("--port", type=int, help="listen port (default: PORT, else the flow's)")
    run.add_argument("--host", help="listen address (default: the flow's, else 0.0.0.0)")
    run.add_argument(
        "--workers",
        type=_positive_int,
        default=int(os.environ.get("FLOWS_WORKERS", "1")),
        help="server processes sharing the port (default: FLOWS_WORKERS, else 1); "
        "one per core for the most throughput",
    )
    run.add_argument(
        "--shutdown-timeout",
        type=float,
        default=float(os.environ.get("FLOWS_SHUTDOWN_TIMEOUT", "10")),
        help="seconds to flush destinations on shutdown (default 10)",
    )
    run.add_argument(
        "--log-level",
        default=os.environ.get("FLOWS_LOG_LEVEL", "info"),
        choices=["debug", "info", "warning", "error"],
        help="log level (default: FLOWS_LOG_LEVEL, else info)",
    )
    run.add_argument(
        "--log-format",
        default=os.environ.get("FLOWS_LOG_FORMAT", "text"),
        choices=["text", "json"],
        help="log lines as text or one JSON object each (default: FLOWS_LOG_FORMAT, else text)",
    )
    run.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=os.environ.get("FLOWS_ACCESS_LOG", "") not in ("", "0", "false", "no"),
        help="log one line per HTTP request as flows.http.access (default: off, "
        "on when FLOWS_ACCESS_LOG=1)",
    )
    run.add_argument(
        "-v",
        dest="log_level",
        action="store_const",
        const="debug",
        help="same as --log-level debug",
    )

    schema = command("schema", cmd_schema, "Print the JSON Schema of flow files (for editors)")
    schema.add_argument("-o", "--output", default="-", help="file to write (default: stdout)")

    openapi = command(
        "openapi", cmd_openapi, "Print the OpenAPI 3.1 description of a flow's http source"
    )
    openapi.add_argument("file", help="flow file or bundle (JSON)")
    openapi.add_argument("--flow", help="flow name (default: the only one, or 'default')")
    openapi.add_argument("-o", "--output", default="-", help="file to write (default: stdout)")

    replay = command("replay", cmd_replay, "Send the messages of a dead-letter file again")
    replay.add_argument(
        "file", metavar="DEADLETTER", help="dead-letter file (JSON lines, deadLetterFile)"
    )
    replay.add_argument(
        "flow_file",
        nargs="?",
        metavar="FLOW_FILE",
        help="flow file or bundle whose destination settings (host, write key, url) to use",
    )
    replay.add_argument(
        "--flow",
        metavar="NAME",
        help="flow name (default: the only one, or 'default'); without FLOW_FILE, the "
        "deprecated form: --flow FLOW_FILE [--name NAME]",
    )
    replay.add_argument("--name", help=argparse.SUPPRESS)
    replay.add_argument(
        "--destination",
        metavar="ID",
        help="destination id to send to (default: the one each line records)",
    )
    replay.add_argument(
        "--dry-run",
        action="store_true",
        help="read and check every line, say what would go to each destination, send nothing",
    )
    replay.add_argument(
        "--rate",
        type=_positive_rate,
        metavar="N",
        help="send at most N messages per second (default: no limit)",
    )
    init_command.add_command(command)
    demo_command.add_command(command)
    add_installed_commands(
        command, lambda line: print(f"flows: warning: {line}", file=sys.stderr), installed
    )
    return parser


def main(argv: list[str] | None = None, installed: Iterable[EntryPoint] | None = None) -> int:
    """Entry point of the ``flows`` console command."""
    parser = build_parser(installed)
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except (CommandError, FlowError) as error:
        lines = error.lines if isinstance(error, CommandError) else error.errors
        for line in lines:
            print(f"flows: error: {line}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
