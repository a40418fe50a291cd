"""Figures (matplotlib, Agg backend, written atomically): curves with their seed spread. Every text in a figure
is plain text (``plain_text``): a name such as ``$x$`` is shown as typed, never parsed as mathtext or TeX."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from robust.checks import InputError
from robust.io import atomic_path

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    import torch
    from matplotlib.figure import Figure

    from robust.attacks.base import AttackResult
    from robust.models.backbone import Backbone


def plain_text() -> AbstractContextManager[None]:
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


def save_figure(fig: Figure, path: str | os.PathLike, tight: bool = True) -> Path:
    """Write a matplotlib figure as a PNG, atomically, and close it."""
    import matplotlib.pyplot as plt

    if tight:
        fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def jet(s: torch.Tensor) -> torch.Tensor:
    """The jet colour map of values in [0, 1]: N x H x W -> N x 3 x H x W."""
    import torch

    return torch.stack([(1.5 - (4 * s - c).abs()).clamp(0, 1) for c in (3, 2, 1)], 1)


def gallery(net: Backbone, x: torch.Tensor, y: torch.Tensor, res: AttackResult, examples: int, scale: int = 3
             ) -> tuple[bytes | None, list[dict]]:
    """A PNG strip of ``examples`` images of the batch, the attack's successes first and then its failures (half
    each where the batch has them; clean-correct images only), one column per image: clean, attacked, and the
    attacked image under the Grad-CAM of its predicted class; plus each column's labels (clean prediction,
    attacked prediction, target, and whether the attack succeeded: its target reached, or any change if
    untargeted); no PNG when no image of the batch is clean-correct. ``net``: a Backbone; ``x`` N x C x H x W in
    [0, 1], ``y`` N labels, ``res`` the attack's ``AttackResult`` on them. What a board cell keeps of its first batch.

    Example::

        png, labels = gallery(net, x, y, make_attack("lavan-12pct")(net, x, y), examples=4)
    """
    import torch
    from PIL import Image

    from robust.cam import cam
    from robust.models.state import eval_mode

    with eval_mode(net), torch.no_grad():
        clean, adv = net(x).argmax(1), net(res.x_adv).argmax(1)
    won = adv == res.target if res.target is not None else adv != y
    correct = (clean == y).nonzero().flatten()
    wins, losses = correct[won[correct]], correct[~won[correct]]
    half = examples // 2
    take = min(len(wins), max(half, examples - len(losses)))
    index = torch.cat([wins[:take], losses[:examples - take]])
    if not len(index):
        return None, []
    x, clean, adv, won = x[index], clean[index], adv[index], won[index]
    x_adv = res.x_adv[index].detach().float()
    target = None if res.target is None else res.target[index]
    overlay = 0.55 * x_adv + 0.45 * jet(cam(net, x_adv, adv))
    rows = torch.stack([x.float(), x_adv, overlay])  # 3 x N x C x H x W
    rows = torch.nn.functional.pad(rows, (1, 1, 1, 1), value=1.0)  # white gaps between the tiles
    grid = rows.permute(2, 0, 3, 1, 4).flatten(3, 4).flatten(1, 2)  # C x 3(H+2) x N(W+2)
    grid = grid.repeat_interleave(scale, 1).repeat_interleave(scale, 2)
    pixels = (grid.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    names = net.class_names or [str(i) for i in range(net.num_classes)]
    labels = [{"clean": names[int(c)], "attacked": names[int(a)], "success": bool(w),
               "target": None if target is None else names[int(target[i])]}
              for i, (c, a, w) in enumerate(zip(clean, adv, won, strict=True))]
    return buf.getvalue(), labels


__all__ = ["gallery", "jet", "plain_text", "save_curves", "save_figure"]
