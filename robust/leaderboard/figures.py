"""The board's figures (matplotlib, Agg, written atomically): the model x attack heatmap, the curves of each
evaluation, and the gallery images the cells recorded."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING

from robust.evaluations.curve import Curve
from robust.io import atomic_path
from robust.plots import plain_text, save_curves, save_figure

if TYPE_CHECKING:
    from collections.abc import Callable

    from matplotlib.axes import Axes

    from robust.leaderboard.rows import AttackRow, EvaluationRow

#: the only paths a render deletes (figures it wrote earlier, as recorded in the store)
FIGURE_RE = re.compile(r"^figures/[A-Za-z0-9][A-Za-z0-9._-]*\.png$")


def slug(*parts: str) -> str:
    """A file name from user strings: safe characters only, plus a short hash so distinct names never collide."""
    text = "-".join(parts)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")[:60] or "x"
    return f"{safe}-{hashlib.sha256(text.encode()).hexdigest()[:6]}"


def heatmap(attacks: list[AttackRow], models: list[str], tasks: list[str], path: Path) -> Path | None:
    """Models x attacks, coloured by each row's headline rate: targeted attacks' TCS and untargeted attacks' ASR in
    two panels with their own scales (the two rates answer different questions)."""
    import matplotlib.pyplot as plt
    import numpy as np

    cols = [t for t in tasks if any(r.attack == t for r in attacks)]
    if not cols:
        return None
    kinds = {r.attack: r.headline for r in attacks}
    panels = [(h, [t for t in cols if kinds[t] == h]) for h in ("tcs", "asr")]
    panels = [(h, c) for h, c in panels if c]
    with plain_text():
        size = (1.1 * len(cols) + 3.2 * len(panels), 0.45 * len(models) + 1.8)
        fig, axes = plt.subplots(1, len(panels), figsize=size, dpi=110, squeeze=False,
                                 gridspec_kw={"width_ratios": [len(c) for _, c in panels]})
        for ax, (headline, names) in zip(axes[0], panels, strict=True):
            grid = np.full((len(models), len(names)), np.nan)
            for r in attacks:
                if r.attack in names and r.score is not None:
                    grid[models.index(r.name), names.index(r.attack)] = 100 * r.score  # the colorbar's %
            im = ax.imshow(grid, cmap="magma_r" if headline == "tcs" else "viridis_r", vmin=0, vmax=100,
                           aspect="auto")
            ax.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize=7)
            ax.set_yticks(range(len(models)), models, fontsize=7)
            for i in range(len(models)):
                for j in range(len(names)):
                    if not np.isnan(grid[i, j]):
                        ax.text(j, i, f"{grid[i, j]:.0f}", ha="center", va="center", fontsize=6,
                                color="white" if grid[i, j] > 50 else "black")
            label = "TCS (%), targeted" if headline == "tcs" else "ASR (%), untargeted"
            fig.colorbar(im, ax=ax, label=label, fraction=0.05)
            ax.set_title(f"{label}: lower is more robust", fontsize=8)
        return save_figure(fig, path)


def clean_vs_robust(rows: list[AttackRow], path: Path) -> Path | None:
    """Clean accuracy against robust accuracy (correct under the attack), one point per model and threat model
    (the worst cases and the untargeted attacks), each model named."""
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r.clean_acc is not None and r.robust_acc is not None]
    if not rows:
        return None
    with plain_text():
        fig, ax = plt.subplots(figsize=(5.8, 4.2), dpi=110)
        for i, attack in enumerate(dict.fromkeys(r.attack for r in rows)):
            group = [r for r in rows if r.attack == attack]
            ax.scatter([r.clean_acc for r in group], [r.robust_acc for r in group], s=24, label=attack,
                       color=plt.get_cmap("tab10")(i % 10))
            for r in group:
                ax.annotate(r.name, (r.clean_acc, r.robust_acc), fontsize=6, xytext=(3, 2), textcoords="offset points")
        ax.set_xlabel("clean accuracy")
        ax.set_ylabel("robust accuracy (correct under the attack)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax.set_title("Clean against robust accuracy: up and right is better", fontsize=8)
        return save_figure(fig, path)


def _success_panel(ax: Axes, title: str, xlabel: str) -> None:
    """A panel of success curves: its title, axes on the headline's [0, 1] scale, a grid and the legend."""
    ax.set_title(title, fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("TCS (ASR if untargeted)")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)


def budget(series: dict[str, dict[str, list[tuple[float, float]]]], path: Path) -> Path | None:
    """Robustness against budget: per attack family (a panel), each model's headline (TCS, or ASR when untargeted)
    against the patch area; ``series``: {family: {model: [(area, score), ...]}}."""
    import matplotlib.pyplot as plt

    if not series:
        return None
    with plain_text():
        fig, axes = plt.subplots(1, len(series), figsize=(4.6 * len(series), 3.6), dpi=110, squeeze=False)
        for ax, (family, lines) in zip(axes[0], series.items(), strict=True):
            for i, (model, pts) in enumerate(lines.items()):
                pts = sorted(pts)
                ax.plot([100 * a for a, _ in pts], [v for _, v in pts], marker="o", ms=3, label=model,
                        color=plt.get_cmap("tab10")(i % 10))
            _success_panel(ax, family, "patch area (% of the image)")
        fig.suptitle("Robustness against budget: success as the patch grows (lower is more robust)", fontsize=8)
        return save_figure(fig, path)


def frontier(series: dict[str, dict[str, list[tuple[int, object]]]], path: Path) -> Path | None:
    """The refinement frontier: per model (a panel), each attack family's headline (TCS, or ASR when untargeted)
    against the victim passes it spent per image, each point labelled with its step count (a family run once on a
    model is a point); ``series``: ``build.frontier_series``. Rows without counted passes are left out."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    series = {m: {f: [(k, r) for k, r in pts if r.passes] for f, pts in fams.items()} for m, fams in series.items()}
    series = {m: fams for m, fams in series.items() if any(len(p) > 1 for p in fams.values())}
    if not series:
        return None
    cols = min(4, len(series))
    rows = -(-len(series) // cols)
    with plain_text():
        fig, axes = plt.subplots(rows, cols, figsize=(max(6.0, 3.9 * cols), 3.3 * rows), dpi=110, squeeze=False)
        for ax, (model, families) in zip(list(axes.flat)[:len(series)], series.items(), strict=True):
            for i, (family, pts) in enumerate(families.items()):
                color = plt.get_cmap("tab10")(i % 10)
                xs, ys = [r.passes for _, r in pts], [r.score for _, r in pts]
                ax.plot(xs, ys, marker="o", ms=3, color=color, label=family)
                for (k, _), x, y in zip(pts, xs, ys, strict=True):
                    ax.annotate(str(k), (x, y), textcoords="offset points", xytext=(3, -9), fontsize=6, color=color)
            ax.set_xscale("log")  # plain tick labels: the figure's text is never parsed as mathtext
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if str(v)[0] in "25" else ""))
            _success_panel(ax, model, "victim passes per image (forward + backward)")
        for ax in list(axes.flat)[len(series):]:
            ax.axis("off")
        fig.suptitle("The refinement frontier: success against the per-image cost (numbers: steps per image)",
                     fontsize=8)
        return save_figure(fig, path)


def class_matrices(matrices: dict, class_names: list[str], title: str, path: Path) -> Path | None:
    """One target x true-class TCS matrix per model (hits / clean-correct images of the pair; blank: none)."""
    import matplotlib.pyplot as plt
    import numpy as np

    if not matrices:
        return None
    cols = min(4, len(matrices))
    rows = -(-len(matrices) // cols)
    with plain_text():
        fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols + 0.8, 2.5 * rows + 0.6), dpi=110, squeeze=False)
        for ax in axes.flat[len(matrices):]:
            ax.axis("off")
        for ax, (name, (hits, n)) in zip(axes.flat, matrices.items(), strict=False):
            rate = np.where(n.numpy() > 0, 100 * hits.numpy() / np.maximum(n.numpy(), 1), np.nan)
            im = ax.imshow(rate, cmap="magma_r", vmin=0, vmax=100)
            ax.set_title(f"{name} (n = {int(n.sum())})", fontsize=7)
            ax.set_xticks(range(len(class_names)), class_names, fontsize=5)
            ax.set_yticks(range(len(class_names)), class_names, fontsize=5)
            ax.set_xlabel("true class", fontsize=6)
            ax.set_ylabel("target", fontsize=6)
        fig.colorbar(im, ax=axes, fraction=0.02, label="TCS (%)")
        fig.suptitle(title, fontsize=8)
        return save_figure(fig, path, tight=False)


def realism(rows: list[AttackRow], methods: dict[str, str], path: Path) -> Path | None:
    """Realism against success: each patch attack's rows (one point per model) with the detector's AUC, PSNR and TV
    of the patched window against TCS, or ASR for an untargeted attack (hollow markers). One colour per family of
    attacks (``methods``: attack name -> its family, ``build.step_family``: gan-patch at several critic weights or
    bounds, LaVAN at several bounds), and one model's rows in a family joined by a line: the trade-off curve of that
    method's recipe or budget (the board's realism table names each point). With held-out detector AUCs
    (``build.with_heldout``) a fourth panel shows them; a board that trains no detector (``detector = false``) has
    no AUC panel."""
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r.realism and r.score is not None]
    if not rows:
        return None

    def auc(key: str) -> Callable[[AttackRow], float | None]:
        return lambda r: (r.realism.get(key) or {}).get("auc")

    heldout = any(r.realism.get("heldout_auc") for r in rows)
    panels = [(f"detector{' (same attack)' if heldout else ''} AUC (0.5: indistinguishable)", auc("detector_auc")),
              ("held-out detector AUC (other attacks)", auc("heldout_auc")),
              ("PSNR to the replaced window (dB)", lambda r: r.realism["psnr"]["mean"]),
              ("TV of the patched window", lambda r: r.realism["tv"]["mean"])]
    # no empty panel: a board without a detector (its spec's detector = false) or without a held-out one
    panels = [(label, value) for label, value in panels if any(value(r) is not None for r in rows)]
    families = list(dict.fromkeys(methods.get(r.attack, r.attack) for r in rows))
    with plain_text():
        fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels) + 2.2, 3.8), dpi=110)
        for i, family in enumerate(families):
            colour = plt.get_cmap("tab10")(i % 10)
            group = [r for r in rows if methods.get(r.attack, r.attack) == family]
            targeted = group[0].headline == "tcs"
            style = {"color": colour} if targeted else {"facecolors": "none", "edgecolors": colour}
            for ax, (_, value) in zip(axes, panels, strict=True):
                for model in dict.fromkeys(r.name for r in group):  # one model's variants: a line
                    line = sorted((r.score, value(r)) for r in group if r.name == model and value(r) is not None)
                    if len(line) > 1:
                        ax.plot(*zip(*line, strict=True), color=colour, lw=0.8, ls=":", zorder=1)
                pts = [(r.score, value(r)) for r in group if value(r) is not None]
                if pts:
                    ax.scatter(*zip(*pts, strict=True), s=22, zorder=2, **style,
                               label=family + ("" if targeted else " (ASR)") if ax is axes[0] else None)
        for ax, (label, _) in zip(axes, panels, strict=True):
            ax.set_xlabel("TCS (ASR for untargeted attacks)")
            ax.set_ylabel(label)
            ax.set_xlim(-0.02, 1.02)
            ax.grid(alpha=0.3)
            if "AUC" in label:
                ax.axhline(0.5, color="grey", lw=0.8, ls="--")
        fig.legend(fontsize=6, loc="center right", title="attack family (dotted: one model's variants)",
                   title_fontsize=6)
        fig.subplots_adjust(left=0.05, right=1 - 2.2 / (4 * len(panels) + 2.2), wspace=0.3, bottom=0.14)
        low = "AUC, TV" if any("AUC" in label for label, _ in panels) else "TV"
        fig.suptitle("Realism against success, one point per model and attack: a strong and natural attack sits "
                     f"right and low ({low}) or high (PSNR)", fontsize=8)
        return save_figure(fig, path, tight=False)


def curves(rows: list[EvaluationRow], path: Path, title: str, chance: str | float | None = None) -> Path:
    """One evaluation's curves, a line per model with its seed band (and its chance line, when it has one)."""
    objs = [Curve(r.evaluation, r.x, r.mean, r.std, r.n, r.curve_seeds, r.xlabel, r.ylabel) for r in rows]
    return save_curves(objs, path, labels=[r.name for r in rows], title=title, chance=chance)


def write_png(data: bytes, path: Path) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path
