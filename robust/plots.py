"""Figures (matplotlib, Agg backend, written atomically): curves with their seed spread. Every text in a figure
is plain text (``plain_text``): a name such as ``$x$`` is shown as typed, never parsed as mathtext or TeX."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from robust.checks import InputError
from robust.io import atomic_path


def plain_text():
    """A matplotlib context (the Agg backend) in which no text is parsed as mathtext or TeX."""
    import matplotlib

    matplotlib.use("Agg")
    return matplotlib.rc_context({"text.parse_math": False, "text.usetex": False})


def save_curves(curves: Sequence, path: str | os.PathLike, *, labels: Sequence[str] | None = None,
                title: str = "", chance: str | float | None = None) -> Path:
    """One PNG with each ``Curve`` as a line (mean) and a band (mean +- std over seeds), and where a model that
    tells nothing apart lies: ``chance="diagonal"`` draws y = x, a number a horizontal line at that height."""
    import matplotlib.pyplot as plt

    if not curves:
        raise InputError("curves is empty; expected at least one Curve.")
    labels = list(labels) if labels is not None else [c.name for c in curves]
    if len(labels) != len(curves):
        raise InputError(f"labels has {len(labels)} entries; expected one per curve ({len(curves)}).")
    with plain_text():
        fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=120)
        for c, label in zip(curves, labels, strict=True):
            lo = [m - s for m, s in zip(c.mean, c.std, strict=True)]
            hi = [m + s for m, s in zip(c.mean, c.std, strict=True)]
            ax.plot(c.x, c.mean, marker="o", ms=3, label=f"{label} (area {c.area:.3f})")
            ax.fill_between(c.x, lo, hi, alpha=0.2)
        xs = [min(curves[0].x), max(curves[0].x)]
        if chance == "diagonal":
            ax.plot(xs, xs, color="grey", ls="--", lw=1, label="chance (y = x)")
        elif isinstance(chance, (int, float)):
            ax.plot(xs, [chance, chance], color="grey", ls="--", lw=1, label=f"chance ({chance:.3g})")
        ax.set_xlabel(curves[0].xlabel)
        ax.set_ylabel(curves[0].ylabel)
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        return save_figure(fig, path)


def save_figure(fig, path: str | os.PathLike, tight: bool = True) -> Path:
    """Write a matplotlib figure as a PNG, atomically, and close it."""
    import matplotlib.pyplot as plt

    if tight:
        fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


__all__ = ["plain_text", "save_curves", "save_figure"]
