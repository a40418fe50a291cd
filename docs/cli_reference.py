"""Write docs/reference/cli.md: every command's --help, as the installed ``robust`` prints it (the help texts that
name registered methods filled from the registry). The test suite regenerates it and fails when the committed page
differs, so the page cannot fall behind the CLI.

    python docs/cli_reference.py            # rewrite docs/reference/cli.md
    python docs/cli_reference.py --check    # exit 1 when it is out of date
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PAGE = Path(__file__).parent / "reference" / "cli.md"


def commands(group: object, words: list[str]) -> list[list[str]]:
    """Every command path under ``group`` (typer's click group), depth first, in the order help lists them."""
    out = [words]
    if hasattr(group, "list_commands"):
        ctx = group.make_context("robust", ["--help"], resilient_parsing=True)
        for name in group.list_commands(ctx):
            out += commands(group.get_command(ctx, name), [*words, name])
    return out


def render() -> str:
    os.environ["COLUMNS"] = "110"  # rich wraps help at this width, the same on every machine
    os.environ["NO_COLOR"] = "1"
    import typer
    from typer.testing import CliRunner

    from robust.cli import _describe_methods, app

    _describe_methods()
    runner = CliRunner()
    parts = ["# Command line", "",
             "Every command's `--help`, generated from the CLI itself (`python docs/cli_reference.py`; a test fails "
             "when this page is out of date).", ""]
    for words in commands(typer.main.get_command(app), []):
        result = runner.invoke(app, [*words, "--help"], prog_name="robust", terminal_width=110)
        text = "\n".join(line.rstrip() for line in result.output.splitlines()).strip("\n")
        parts += [f"## `{' '.join(['robust', *words])}`", "", "```text", text, "```", ""]
    return "\n".join(parts)


if __name__ == "__main__":
    page = render()
    if "--check" in sys.argv[1:]:
        sys.exit(0 if PAGE.read_text() == page else 1)
    PAGE.write_text(page)
