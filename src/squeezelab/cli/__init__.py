"""The `squeezelab` command: parses arguments, calls the library, prints.

Each subcommand lives in its own module with `add_parser(subparsers)`; this file only wires them
together and turns a `SqueezelabError` into one line on stderr and exit code 2 (`--debug` shows
the traceback instead). The parsers read their defaults from the plain config modules and import
the library inside the command functions, so `--help` and argument errors never load torch.
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import sys
import warnings

from squeezelab import __version__
from squeezelab.errors import SqueezelabError, SqueezelabWarning

# Modules under squeezelab.cli, one per subcommand (or group of related subcommands).
COMMAND_MODULES = ["models", "train", "evaluate", "compress", "export", "bench", "serve", "analysis", "convert"]


def _shows_default(action: argparse.Action) -> bool:
    """An option whose default is worth printing: not None, not a switch's True/False."""
    return bool(action.option_strings) and not any(action.default is v for v in (None, False, True, argparse.SUPPRESS))


class HelpFormatter(argparse.HelpFormatter):
    """Appends "(default: X)" to an option's help unless the help already names its default."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or not _shows_default(action):
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line, naming the fix, instead of usage + error."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def add_argument(self, *args, **kwargs):  # noqa: D102
        action = super().add_argument(*args, **kwargs)
        if not action.help and _shows_default(action):  # argparse prints nothing for an option without help
            action.help = "(default: %(default)s)"
        return action

    def error(self, message: str):  # noqa: D102
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="squeezelab", description="Build, train, inspect, compress, export and serve SqueezeNet.")
    parser.add_argument("--version", action="version", version=f"squeezelab {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(f"squeezelab.cli.{name}").add_parser(subparsers)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """squeezelab's own warnings as one line each; everybody else's as Python prints them."""
    if issubclass(category, SqueezelabWarning):
        print(f"squeezelab: warning: {message}", file=sys.stderr, flush=True)
    else:
        _python_show_warning(message, category, filename, lineno, file, line)


_python_show_warning = warnings.showwarning


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    with warnings.catch_warnings():
        warnings.simplefilter("always", SqueezelabWarning)
        warnings.showwarning = _show_warning
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
        except BrokenPipeError:  # `squeezelab ... | head`: the reader has gone, which is no error
            try:  # stdout to /dev/null, so the flush at exit does not fail a second time
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
                pass
            return 0
