"""The `python -m loadlab` command line: up, down, status, verify."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from pydantic import ValidationError

from loadlab.errors import GateFailed, UsageError
from loadlab.settings import StackSettings


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2 (argparse prints usage too)
        self.exit(2, f"loadlab: {message} (see `python -m loadlab {self._sub()}--help`)\n")

    def _sub(self) -> str:
        parts = self.prog.split()[1:]
        return " ".join(parts) + " " if parts else ""


def _stack_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", help="where the cluster, logs and PIDs live (.loadlab)")


def _up_options(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add(
        "--pgbouncer",
        action="store_true",
        default=None,
        help="put PgBouncer (transaction mode) in front",
    )
    add(
        "--database-url",
        help="use this existing PostgreSQL instead of starting one (its loadlab tables are reset)",
    )
    add("--scale", type=float, help="seed size; 1.0 = 10,000 users and orders")
    add(
        "--pg-bin", help="folder of initdb and postgres (default: newest /usr/lib/postgresql/*/bin)"
    )
    add("--pg-port", type=int)
    add("--pgbouncer-port", type=int)
    add("--flask-port", type=int)
    add("--fastapi-port", type=int)
    add("--web-workers", type=int, help="gunicorn / uvicorn worker processes per service")
    add("--web-threads", type=int, help="gunicorn threads per worker")
    add("--db-pool-size", type=int)
    add("--db-max-overflow", type=int)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="loadlab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    up = sub.add_parser("up", help="start PostgreSQL, PgBouncer (optional) and both services")
    _stack_options(up)
    _up_options(up)
    down = sub.add_parser("down", help="stop everything `up` started")
    _stack_options(down)
    down.add_argument("--purge", action="store_true", help="also delete the cluster and logs")
    status = sub.add_parser("status", help="what is running, with PIDs and health")
    _stack_options(status)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    verify = sub.add_parser(
        "verify", help="check both services give the same answers and SQL counts"
    )
    _stack_options(verify)
    return parser


def settings_from(args: argparse.Namespace) -> StackSettings:
    """Defaults, then LOADLAB_* environment, then the flags given."""
    given = {
        k: v for k, v in vars(args).items() if v is not None and k in StackSettings.model_fields
    }
    try:
        return StackSettings(**given)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "--" + str(first["loc"][0]).replace("_", "-") if first["loc"] else "settings"
        raise UsageError(f"{name}: {first['msg']}") from None


def _print_status(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        health = "healthy" if row["healthy"] else ("running" if row["running"] else "stopped")
        pid = row["pid"] if row["pid"] is not None else "-"
        print(f"  {row['name']:<14} {health:<8} pid {pid!s:<8} {row['url']}")


def _cmd_up(settings: StackSettings) -> int:
    from loadlab.stack import lifecycle

    state, started = lifecycle.up(settings)
    print("loadlab is up" if started else "loadlab was already up")
    _print_status(lifecycle.status(settings))
    print(f"logs: {settings.state_dir / 'logs'}; stop with `python -m loadlab down`")
    return 0


def _cmd_down(settings: StackSettings, purge: bool) -> int:
    from loadlab.stack import lifecycle

    stopped = lifecycle.down(settings, purge)
    print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    return 0


def _cmd_status(settings: StackSettings, as_json: bool) -> int:
    from loadlab.stack import lifecycle

    rows = lifecycle.status(settings)
    if as_json:
        print(json.dumps({"components": rows}, indent=2))
    elif rows:
        _print_status(rows)
    else:
        print("nothing is running (start it with `python -m loadlab up`)")
    return 0 if all(r["healthy"] for r in rows) else 1


def _cmd_verify(settings: StackSettings) -> int:
    from loadlab import verify

    return verify.run(settings)


def _on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # same clean-up path as Ctrl-C


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (0 ok, 1 a check failed, 2 bad usage)."""
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        settings = settings_from(args)
        if args.command == "up":
            return _cmd_up(settings)
        if args.command == "down":
            return _cmd_down(settings, args.purge)
        if args.command == "status":
            return _cmd_status(settings, args.json)
        return _cmd_verify(settings)
    except UsageError as exc:
        print(f"loadlab: {exc}", file=sys.stderr)
        return exc.exit_code
    except GateFailed as exc:
        print(f"loadlab: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("loadlab: interrupted; everything started was stopped", file=sys.stderr)
        return 130
