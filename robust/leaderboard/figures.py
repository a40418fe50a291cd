"""The board's figures (matplotlib, Agg, written atomically): the model x attack heatmap, the curves of each
evaluation, and the gallery images the cells recorded."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING

from robust.io import atomic_path
from robust.occlusion import Curve
from robust.plots import plain_text, save_curves

if TYPE_CHECKING:
    from robust.leaderboard.tables import AttackRow, EvaluationRow

#: the only paths a render deletes (figures it wrote earlier, as recorded in the store)
FIGURE_RE = re.compile(r"^figures/[A-Za-z0-9][A-Za-z0-9._-]*\.png$")


def slug(*parts: str) -> str:
    """A file name from user strings: safe characters only, plus a short hash so distinct names never collide."""
    text = "-".join(parts)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")[:60] or "x"
    return f"{safe}-{hashlib.sha256(text.encode()).hexdigest()[:6]}"


def heatmap(attacks: list[AttackRow], models: list[str], tasks: list[str], path: Path) -> Path | None:
    """Models x attacks, coloured by each row's headline rate (TCS; another, such as ASR, is marked)."""
    import matplotlib.pyplot as plt
    import numpy as np

    cols = [t for t in tasks if any(r.attack == t for r in attacks)]
    if not cols:
        return None
    grid = np.full((len(models), len(cols)), np.nan)
    label = [["" for _ in cols] for _ in models]
    for r in attacks:
        i, j = models.index(r.name), cols.index(r.attack)
        if r.score is not None:
            grid[i, j] = r.score
            label[i][j] = f"{100 * r.score:.0f}" + ("" if r.headline == "tcs" else f" {r.headline.upper()}")
    with plain_text():
        fig, ax = plt.subplots(figsize=(1.1 * len(cols) + 2.5, 0.45 * len(models) + 1.6), dpi=110)
        im = ax.imshow(grid, cmap="magma_r", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(cols)), cols, rotation=35, ha="right", fontsize=7)
        ax.set_yticks(range(len(models)), models, fontsize=7)
        for i in range(len(models)):
            for j in range(len(cols)):
                if label[i][j]:
                    ax.text(j, i, label[i][j], ha="center", va="center", fontsize=6,
                            color="white" if grid[i, j] > 0.5 else "black")
        fig.colorbar(im, ax=ax, label="TCS (targeted) / ASR (untargeted)", fraction=0.04)
        ax.set_title("Target-class success (%), lower is more robust", fontsize=8)
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
        plt.close(fig)
    return path


def realism(rows: list[AttackRow], methods: dict[str, str], path: Path) -> Path | None:
    """Realism against success: each patch attack's rows (one point per model) with the detector's AUC, PSNR and TV
    of the patched window against TCS, or ASR for an untargeted attack (hollow markers). One model's rows under
    variants of one method (``methods``: attack name -> method; e.g. gan-patch at several critic weights) are
    joined by a line: the trade-off curve of that method's recipe."""
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r.realism and r.score is not None]
    if not rows:
        return None
    attacks = list(dict.fromkeys(r.attack for r in rows))
    panels = (("detector AUC (0.5: indistinguishable)", lambda r: (r.realism.get("detector_auc") or {}).get("auc")),
              ("PSNR to the replaced window (dB)", lambda r: r.realism["psnr"]["mean"]),
              ("TV of the patched window", lambda r: r.realism["tv"]["mean"]))
    with plain_text():
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), dpi=110)
        series: dict[tuple[str, str], list[AttackRow]] = {}
        for r in rows:
            series.setdefault((r.name, methods.get(r.attack, r.attack)), []).append(r)
        joined = False
        for group in series.values():
            if len(group) > 1:
                group = sorted(group, key=lambda r: r.score)
                for ax, (_, value) in zip(axes, panels, strict=True):
                    pts = [(r.score, value(r)) for r in group if value(r) is not None]
                    ax.plot(*zip(*pts, strict=True), color="black", lw=0.8, ls=":", zorder=1,
                            label=None if joined else "one model, variants of one attack")
                joined = True
        for i, attack in enumerate(attacks):
            group = [r for r in rows if r.attack == attack]
            colour = plt.get_cmap("tab10")(i % 10)
            targeted = group[0].headline == "tcs"
            style = {"color": colour} if targeted else {"facecolors": "none", "edgecolors": colour}
            style.update(s=22, zorder=2, label=attack + ("" if targeted else " (ASR)"))
            for ax, (_, value) in zip(axes, panels, strict=True):
                pts = [(r.score, value(r)) for r in group if value(r) is not None]
                if pts:
                    ax.scatter(*zip(*pts, strict=True), **style)
        for ax, (label, _) in zip(axes, panels, strict=True):
            ax.set_xlabel("TCS (ASR for untargeted attacks)")
            ax.set_ylabel(label)
            ax.set_xlim(-0.02, 1.02)
            ax.grid(alpha=0.3)
        axes[0].axhline(0.5, color="grey", lw=0.8, ls="--")
        axes[2].legend(fontsize=6, loc="best")
        fig.suptitle("Realism against success, one point per model: a strong and natural attack sits right and low "
                     "(AUC, TV) or high (PSNR)", fontsize=8)
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
        plt.close(fig)
    return path


def curves(rows: list[EvaluationRow], path: Path, title: str, chance: str | None = None) -> Path:
    """One evaluation's curves, a line per model with its seed band (and its chance line, when it has one)."""
    objs = [Curve(r.evaluation, r.x, r.mean, r.std, r.n, r.curve_seeds, r.xlabel, r.ylabel) for r in rows]
    return save_curves(objs, path, labels=[r.name for r in rows], title=title, chance=chance)


def write_png(data: bytes, path: Path) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path
