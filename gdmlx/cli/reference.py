"""The command-line reference (docs/cli.md), made from the parser's own help texts, so that
it cannot drift from the code: ``python -m gdmlx.cli.reference > docs/cli.md``."""

import argparse
import os

from gdmlx.cli.main import build_parser

WIDTH = 100          # columns of the help text, fixed so that the file does not depend on a terminal


def _subcommands(parser, prefix):
    """``(name, parser)`` of every subcommand under ``parser``, depth first."""
    for action in parser._actions:                    # argparse keeps subparsers only here
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{prefix} {name}", sub
                yield from _subcommands(sub, f"{prefix} {name}")


def markdown():
    """docs/cli.md: ``gdmlx --help`` (the list of commands), then every subcommand's
    ``--help``, in the parser's order."""
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(WIDTH)
    try:
        parts = ["# gdmlx command-line reference\n",
                 "`gdmlx --help` and every subcommand's `--help`, made by `python -m gdmlx.cli.reference > docs/cli.md`"
                 " (a test checks that this file matches the code). What the commands do, with "
                 "measured numbers, is in [guide.md](guide.md).\n"]
        parser = build_parser()
        parts.append(f"## gdmlx\n\n```text\n{parser.format_help().rstrip()}\n```\n")
        for name, sub in _subcommands(parser, "gdmlx"):
            parts.append(f"## {name}\n\n```text\n{sub.format_help().rstrip()}\n```\n")
        return "\n".join(parts)
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


if __name__ == "__main__":
    print(markdown(), end="")
