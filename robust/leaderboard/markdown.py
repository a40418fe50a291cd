"""The board as GitHub Markdown: one table per threat model, best first, every user string escaped."""

from __future__ import annotations

import re

from robust.leaderboard import cards
from robust.leaderboard.build import shared_context
from robust.leaderboard.rows import Board

_MD_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~&$])")


def _md(text: object) -> str:
    """User text as literal GitHub Markdown, inline: line breaks (``\\r`` too) would split a table row, and every
    character that could start markup, a link, an HTML tag or an entity is backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", _MD_CONTROL.sub(" ", str(text)))


def markdown(board: Board) -> str:
    """The board as GitHub Markdown (``templates/board.md.j2``): one table per threat model, best first, with Wilson
    95 % intervals; every string from a user or a file escaped (``_md``)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("robust.leaderboard", "templates"), autoescape=False,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["md"] = _md
    repro = board.reproduction
    text = env.get_template("board.md.j2").render(
        **shared_context(board), spec=board.spec, samples=board.samples, zip=zip,
        figures={k: f"figures/{p.name}" for k, p in board.figures.items()},
        fence=cards.fence(repro["spec"]) if repro.get("spec") is not None else "",
        versions_text=", ".join(f"{k} {v}" for k, v in sorted(repro["versions"].items())))
    return text.rstrip("\n") + "\n"
