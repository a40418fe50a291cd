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
    """A matplotlib context in which no text is parsed as mathtext or TeX: a name such as ``$x$`` shows as typed.

    It also selects the Agg backend (for good, not only inside the context: figures are only ever written to files).

    Returns:
        A context manager (``matplotlib.rc_context`` with ``text.parse_math`` and ``text.usetex`` off).

    Examples:
        >>> import matplotlib
        >>> from robust.plots import plain_text
        >>> with plain_text():
        ...     print(matplotlib.rcParams["text.parse_math"], matplotlib.rcParams["text.usetex"])
        False False
    """
    import matplotlib

    matplotlib.use("Agg")
    return matplotlib.rc_context({"text.parse_math": False, "text.usetex": False})


def save_curves(curves: Sequence, path: str | os.PathLike, *, labels: Sequence[str] | None = None,
                title: str = "", chance: str | float | None = None) -> Path:
    """Plot curves into one PNG: each a line (its mean) with a band (mean +- std over seeds), and where chance lies.

    Each line's legend gives its label and its area (``Curve.area``). The axis labels are the first curve's, and the
    chance line spans the first curve's x range. Every text is plain (``plain_text``). Written atomically.

    Args:
        curves: the ``Curve`` objects to draw.
        path: the PNG to write.
        labels: one legend label per curve (default: each curve's ``name``).
        title: the figure's title.
        chance: where a model that tells nothing apart lies: ``"diagonal"`` draws y = x, a number a horizontal line at
            that height, None nothing.

    Returns:
        ``path``, as a Path.

    Raises:
        InputError: no curves, or not one label per curve.

    Examples:
        >>> from robust.evaluations.curve import Curve
        >>> from robust.plots import save_curves
        >>> curve = Curve("patch-drop", [0.0, 0.5, 1.0], [0.9, 0.5, 0.1], [0.0, 0.02, 0.01], 100, 3,
        ...               "share dropped", "accuracy")
        >>> save_curves([curve], "curves.png", title="digits-m", chance=0.1)
        PosixPath('curves.png')
        >>> save_curves([curve], "curves.png", labels=["a", "b"])
        Traceback (most recent call last):
        robust.checks.InputError: labels has 2 entries; expected one per curve (1).
    """
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
    """Write a matplotlib figure as a PNG, atomically (``atomic_path``), and close it.

    Args:
        fig: the figure.
        path: the PNG to write (missing parent folders are created).
        tight: apply ``fig.tight_layout()`` first.

    Returns:
        ``path``, as a Path.

    Examples:
        >>> import matplotlib.pyplot as plt
        >>> from robust.plots import plain_text, save_figure
        >>> with plain_text():
        ...     fig, ax = plt.subplots(figsize=(3, 2))
        ...     _ = ax.plot([0, 1], [0, 1])
        ...     path = save_figure(fig, "figures/line.png")
        >>> path, path.read_bytes()[:4], plt.fignum_exists(fig.number)
        (PosixPath('figures/line.png'), b'\\x89PNG', False)
    """
    import matplotlib.pyplot as plt

    if tight:
        fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def jet(s: torch.Tensor) -> torch.Tensor:
    """The jet colour map (blue, green, red) of values in [0, 1], in torch.

    Channel c is ``clamp(1.5 - |4 s - k|, 0, 1)`` with k = 3, 2, 1 for red, green and blue: 0 is dark blue, 0.5 green
    (with half red and blue), 1 dark red.

    Args:
        s: the values, e.g. Grad-CAM maps.

    Returns:
        The RGB images, in [0, 1].

    Shape:
        s: N x H x W in [0, 1]; returns N x 3 x H x W.

    Examples:
        >>> import torch
        >>> from robust.plots import jet
        >>> jet(torch.tensor([[[0.0, 0.5, 1.0]]]))[0, :, 0]
        tensor([[0.0000, 0.5000, 0.5000],
                [0.0000, 1.0000, 0.0000],
                [0.5000, 0.5000, 0.0000]])
    """
    import torch

    return torch.stack([(1.5 - (4 * s - c).abs()).clamp(0, 1) for c in (3, 2, 1)], 1)


def gallery(net: Backbone, x: torch.Tensor, y: torch.Tensor, res: AttackResult, examples: int, scale: int = 3
             ) -> tuple[bytes | None, list[dict]]:
    """A PNG strip of a few images of a batch under an attack, and each column's labels.

    What a board cell keeps of its first batch. Only clean-correct images are shown: the attack's successes first, then
    its failures (half each where the batch has them; more of one kind where the other runs short). Each column is one
    image, in three rows: clean, attacked, and the attacked image (55 %) blended with the jet-coloured Grad-CAM (45 %)
    of its predicted class. Tiles are framed by a white pixel and scaled up ``scale`` times. An attack succeeds on an
    image when it reaches its target, or, untargeted, when it changes the prediction.

    Args:
        net: the model (a ``Backbone``); its ``class_names`` (or class indices) name the classes.
        x: the clean images.
        y: their labels.
        res: the attack's ``AttackResult`` on ``x`` (its ``x_adv`` and ``target``).
        examples: the most images shown.
        scale: the factor each pixel is enlarged by.

    Returns:
        ``(png, labels)``: the PNG's bytes, and for each column a dict ``{"clean", "attacked", "success", "target"}``
        (the clean and attacked predictions' class names, whether the attack succeeded, the target's name or None);
        ``(None, [])`` when no image of the batch is clean-correct.

    Shape:
        x: N x C x H x W in [0, 1]; y: N; the PNG is 3 (H + 2) ``scale`` pixels high and k (W + 2) ``scale`` wide for
        k columns.

    Examples:
        >>> import io, torch
        >>> from PIL import Image
        >>> from robust.attacks.base import AttackResult
        >>> from robust.models import load_model
        >>> from robust.plots import gallery
        >>> net = load_model("zoo:digits-m/resnet", "cpu")
        >>> x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        >>> y = net(x).argmax(1)  # labels the model gets right: every image is clean-correct
        >>> x_adv = x.clone()
        >>> x_adv[2:] = 0  # the "attack" blanks the last two images, which changes their prediction
        >>> png, labels = gallery(net, x, y, AttackResult(x_adv=x_adv), examples=4)
        >>> Image.open(io.BytesIO(png)).size  # 4 columns, 3 rows of 34 x 34 tiles, scaled 3 times
        (408, 306)
        >>> [label["success"] for label in labels], sorted(labels[0])
        ([True, True, False, False], ['attacked', 'clean', 'success', 'target'])
        >>> gallery(net, x, (y + 1) % 10, AttackResult(x_adv=x_adv), examples=4)  # none clean-correct
        (None, [])
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
