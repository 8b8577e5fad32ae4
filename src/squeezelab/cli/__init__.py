"""The `squeezelab` command: parses arguments, calls the library, prints.

Each subcommand lives in its own module with `add_parser(subparsers)`; this file only wires them
together and turns a `SqueezelabError` into one line on stderr and exit code 2 (`--debug` shows
the traceback instead).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from squeezelab.errors import SqueezelabError

# Modules under squeezelab.cli, one per subcommand (or group of related subcommands).
COMMAND_MODULES = ["models", "train", "evaluate", "compress", "export", "bench", "serve", "analysis", "convert"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line, naming the fix, instead of usage + error."""

    def error(self, message: str):  # noqa: D102
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="squeezelab", description="Build, train, inspect, compress, export and serve SqueezeNet.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(f"squeezelab.cli.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except SqueezelabError as exc:
        if args.debug:
            raise
        print(f"squeezelab: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("squeezelab: interrupted", file=sys.stderr)
        return 130
