"""The ``lesionseg`` command.

Each sub-command lives in its own module ``lesionseg.cli.cmd_<name>`` exposing ``register(subparsers)``
(adds its parser and sets ``func``) and is listed in :data:`COMMAND_MODULES`. Heavy imports (torch, MONAI)
happen inside the command functions so that ``lesionseg --help`` stays quick.

Exit codes: 0 success, 1 internal error, 2 bad input (one sentence on stderr), 3 a batch in which some
cases failed, 130 cancelled.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from lesionseg import __version__
from lesionseg.errors import CancelledError, LesionSegError

#: Sub-command modules, in the order ``--help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "synth",
    "cases",
    "prepare",
    "transfer-mask",
    "threshold-perfusion",
    "difficulty",
    "train",
    "train-f1-estimator",
    "segment",
    "evaluate",
    "report",
    "analyse",
    "refine",
    "revisions",
    "review-queue",
    "demo",
)

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_PARTIAL = 3


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one sentence and exit code 2 (argparse's own code)."""

    def error(self, message: str) -> None:  # noqa: D401 - argparse API
        self.exit(EXIT_BAD_INPUT, f"lesionseg {self.prog.split(' ', 1)[-1]}: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every sub-command registered."""
    parser = _Parser(prog="lesionseg", description="Stroke lesion segmentation with curriculum learning.")
    parser.add_argument("--version", action="version", version=f"lesionseg {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging detail to stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(f"lesionseg.cli.cmd_{name.replace('-', '_')}").register(subparsers)
    return parser


def _tolerate_narrow_terminal_encodings() -> None:
    """Let messages with "mm²", "±" or progress bars print on an ASCII terminal instead of crashing.

    Under a C locale without UTF-8 mode, ``sys.stdout`` is ASCII with strict errors; a unit in a message
    would then raise ``UnicodeEncodeError`` after the work was done. Unencodable characters are escaped.
    """
    for stream in (sys.stdout, sys.stderr):
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
        if encoding != "utf8" and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    _tolerate_narrow_terminal_encodings()
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return int(args.func(args) or EXIT_OK)
    except LesionSegError as error:
        print(f"lesionseg {args.command}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except CancelledError as error:
        print(f"lesionseg {args.command}: cancelled{': ' + str(error) if str(error) else ''}", file=sys.stderr)
        return CancelledError.exit_code
    except KeyboardInterrupt:
        print(f"lesionseg {args.command}: interrupted", file=sys.stderr)
        return CancelledError.exit_code
    except Exception:  # an internal error: show the traceback, it is a bug to report
        logging.getLogger("lesionseg").exception("internal error in 'lesionseg %s'", args.command)
        return EXIT_INTERNAL
