"""A griffe extension for the API page: the ``>>>`` examples in robust's docstrings become ``pycon`` code blocks
(without it, Markdown reads each ``>>>`` as a nested quote). Docstrings stay plain doctest, which tests can run."""

from __future__ import annotations

from typing import Any

import griffe


def fence(text: str) -> str:
    """Each run of lines starting with ``>>>`` or ``...`` (with the output lines after it, up to a blank line) in a
    fenced pycon block at the indentation of its first line (so it stays inside an ``Examples:`` section);
    ``# doctest:`` directives dropped."""
    out: list[str] = []
    block: list[str] = []
    indent = ""
    for line in [*text.splitlines(), ""]:
        stripped = line.strip()
        if stripped.startswith((">>>", "...")) or (block and stripped):
            if not block:
                indent = line[:len(line) - len(line.lstrip())]
            block.append(indent + stripped.split("  # doctest:")[0].split(" # doctest:")[0])
            continue
        if block:
            out += [indent + "```pycon", *block, indent + "```"]
            block = []
        out.append(line)
    return "\n".join(out[:-1])


class DoctestFences(griffe.Extension):
    """Fence the doctest examples of every object's docstring."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = fence(obj.docstring.value)
