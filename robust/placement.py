"""Where a patch goes and how it is pasted: window scores from saliency, boxes, masks, a batched ``paste``.

Boxes are a ``LongTensor`` N x 4 of (top, left, height, width) in pixels. ``windows`` scores every
``side x side`` window by the mean saliency inside it (the average pooling of the protocol, computed from a
summed-area table, at a given stride) and takes the arg-max (salient) or arg-min window per image;
``random_boxes`` and ``fixed_boxes`` are the ablations.
``paste`` composites ``(1 - M) * x + M * patch`` for the whole batch at once and is differentiable with respect
to the patch (and the images).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from robust.checks import InputError, check_choice, check_positive_int

SHAPES = ("square", "circle")


def patch_side(area: float, image_hw: tuple[int, int]) -> int:
    """Side in pixels of a square patch covering ``area`` (a fraction in (0, 1)) of an H x W image."""
    if not isinstance(area, (int, float)) or not 0 < area < 1:
        raise InputError(f"area={area!r} is not valid; expected a fraction of the image area in (0, 1).")
    h, w = image_hw
    side = max(1, round(math.sqrt(area * h * w)))
    if side > min(h, w):
        raise InputError(f"area={area!r} gives a {side} px patch, larger than the {h} x {w} image; "
                         "expected a patch that fits.")
    return side


def _check_side(side: int, image_hw: tuple[int, int]) -> None:
    h, w = image_hw
    if not isinstance(side, int) or side < 1 or side > min(h, w):
        raise InputError(f"side={side!r} is not valid for a {h} x {w} image; expected 1 <= side <= {min(h, w)}.")


def windows(saliency: torch.Tensor, side: int, *, stride: int = 1, mode: str = "max") -> torch.Tensor:
    """The window (box) with the highest (``mode='max'``) or lowest mean saliency in each N x H x W map."""
    if saliency.ndim != 3:
        raise InputError(f"saliency has shape {tuple(saliency.shape)}; expected N x H x W.")
    _check_side(side, tuple(saliency.shape[-2:]))
    check_positive_int(stride, "stride")
    if mode not in ("max", "min"):
        raise InputError(f"mode={mode!r} is not valid; expected 'max' or 'min'.")
    scores = window_means(saliency, side)[:, ::stride, ::stride]
    flat = scores.flatten(1)
    idx = flat.argmax(1) if mode == "max" else flat.argmin(1)
    top, left = (idx // scores.shape[-1]) * stride, (idx % scores.shape[-1]) * stride
    return _boxes(top, left, side)


def window_means(saliency: torch.Tensor, side: int) -> torch.Tensor:
    """Mean of every side x side window (stride 1) of N x H x W maps, from a summed-area table: O(H W) whatever
    the side (average pooling costs O(H W side^2)). In float64 so that near-ties are ranked exactly."""
    s = F.pad(saliency.double().cumsum(1).cumsum(2), (1, 0, 1, 0))
    total = s[:, side:, side:] - s[:, :-side, side:] - s[:, side:, :-side] + s[:, :-side, :-side]
    return total / (side * side)


def random_boxes(u: torch.Tensor, image_hw: tuple[int, int], side: int) -> torch.Tensor:
    """Uniformly random boxes that lie inside the image, one per row of ``u`` (N x 2 uniform numbers in [0, 1),
    for the top and the left; e.g. ``Draws.uniform(stream, 2)``), on ``u``'s device."""
    _check_side(side, image_hw)
    h, w = image_hw
    top = (u[:, 0].double() * (h - side + 1)).long()
    left = (u[:, 1].double() * (w - side + 1)).long()
    return _boxes(top, left, side)


def fixed_boxes(n: int, image_hw: tuple[int, int], side: int, where: str = "center",
                device: torch.device | str | None = None) -> torch.Tensor:
    """``n`` copies of the centre box or of a corner box (``top-left``, ``top-right``, ...)."""
    _check_side(side, image_hw)
    h, w = image_hw
    spots = {"center": ((h - side) // 2, (w - side) // 2), "top-left": (0, 0), "top-right": (0, w - side),
             "bottom-left": (h - side, 0), "bottom-right": (h - side, w - side)}
    if where not in spots:
        raise InputError(f"where={where!r} is not valid; expected one of {tuple(spots)}.")
    top, left = spots[where]
    return _boxes(torch.full((n,), top, device=device), torch.full((n,), left, device=device), side)


def _boxes(top: torch.Tensor, left: torch.Tensor, side: int) -> torch.Tensor:
    sides = torch.full_like(top, side)
    return torch.stack([top, left, sides, sides], 1).long()


def shape_mask(shape: str, side: int, device: torch.device | str | None = None) -> torch.Tensor:
    """A side x side {0, 1} mask: the full square, or the inscribed disc."""
    check_choice(shape, SHAPES, "shape")
    if shape == "square":
        return torch.ones(side, side, device=device)
    c = torch.arange(side, device=device, dtype=torch.float32) - (side - 1) / 2
    return ((c[:, None] ** 2 + c[None, :] ** 2) <= (side / 2) ** 2).float()


def check_boxes(boxes: torch.Tensor, n: int, image_hw: tuple[int, int]) -> torch.Tensor:
    """Require N x 4 integer boxes (top, left, height, width) that lie inside an H x W image."""
    if not isinstance(boxes, torch.Tensor) or boxes.shape != (n, 4) or boxes.is_floating_point():
        shape = tuple(boxes.shape) if isinstance(boxes, torch.Tensor) else type(boxes).__name__
        raise InputError(f"boxes has shape {shape}; expected an integer tensor ({n}, 4) of (top, left, h, w).")
    if n:
        h, w = image_hw
        top, left, bh, bw = boxes.unbind(1)
        inside = (top >= 0) & (left >= 0) & (bh >= 1) & (bw >= 1) & (top + bh <= h) & (left + bw <= w)
        if not bool(inside.all()):
            i = int((~inside).nonzero()[0])
            raise InputError(f"boxes[{i}] = {boxes[i].tolist()} lies outside the {h} x {w} image; expected "
                             "0 <= top, top + height <= H, 0 <= left, left + width <= W.")
    return boxes


def context_side(side: int, image_hw: tuple[int, int]) -> int:
    """Side of the square context around a ``side`` px window (what gan-patch's generator and the realism
    measures see): twice the window, within the image."""
    return min(2 * side, *image_hw)


def context_boxes(boxes: torch.Tensor, image_hw: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """The square context box around each window box (N x 4, one side p; ``context_side`` of it, shifted to stay
    inside the image) and the window's box inside that context."""
    h, w = image_hw
    p = int(boxes[0, 2]) if len(boxes) else 1
    s = context_side(p, image_hw)
    top = (boxes[:, 0] - (s - p) // 2).clamp(0, h - s)
    left = (boxes[:, 1] - (s - p) // 2).clamp(0, w - s)
    inner = torch.stack([boxes[:, 0] - top, boxes[:, 1] - left, boxes[:, 2], boxes[:, 3]], 1)
    return _boxes(top, left, s), inner


def paste(x: torch.Tensor, patch: torch.Tensor, boxes: torch.Tensor, mask: torch.Tensor | None = None
          ) -> torch.Tensor:
    """Composite a patch into each image at its box: ``(1 - M) * x + M * patch``, M the mask placed at the box.

    Batched (no per-image loop) and differentiable with respect to ``patch`` and ``x``.

    Args:
        x: the images.
        patch: one patch per image, or one for all.
        boxes: each patch's box (top, left, height, width in pixels; height = width = p), inside the image.
        mask: the patch's shape as a p x p mask in [0, 1] (default: all ones, a square).

    Returns:
        The patched images.

    Shape:
        x: N x C x H x W; patch: N x C x p x p or C x p x p; boxes: N x 4 (integers); returns N x C x H x W.

    Examples:
        >>> import torch
        >>> from robust.placement import paste
        >>> out = paste(torch.zeros(1, 3, 8, 8), torch.ones(3, 2, 2), torch.tensor([[1, 2, 2, 2]]))
        >>> out[0, 0]
        tensor([[0., 0., 0., 0., 0., 0., 0., 0.],
                [0., 0., 1., 1., 0., 0., 0., 0.],
                [0., 0., 1., 1., 0., 0., 0., 0.],
                [0., 0., 0., 0., 0., 0., 0., 0.],
                [0., 0., 0., 0., 0., 0., 0., 0.],
                [0., 0., 0., 0., 0., 0., 0., 0.],
                [0., 0., 0., 0., 0., 0., 0., 0.],
                [0., 0., 0., 0., 0., 0., 0., 0.]])
    """
    if x.ndim != 4:
        raise InputError(f"x has shape {tuple(x.shape)}; expected N x C x H x W.")
    n, c, h, w = x.shape
    if patch.ndim == 3:
        patch = patch.expand(n, *patch.shape)  # one patch for every image, stated by its shape
    if patch.ndim != 4 or patch.shape[0] != n or patch.shape[1] != c or patch.shape[2] != patch.shape[3]:
        raise InputError(f"patch has shape {tuple(patch.shape)}; expected ({n}, {c}, p, p) or ({c}, p, p).")
    p = patch.shape[-1]
    if p > min(h, w):
        raise InputError(f"patch side {p} is larger than the {h} x {w} image; expected a patch that fits.")
    check_boxes(boxes, n, (h, w))
    boxes = boxes.to(x.device)
    if n and not bool(((boxes[:, 2] == p) & (boxes[:, 3] == p)).all()):
        raise InputError(f"boxes do not all have the patch's size {p} x {p}.")
    m = torch.ones(p, p, device=x.device, dtype=x.dtype) if mask is None else mask.to(x.device, x.dtype)
    if m.shape != (p, p):
        raise InputError(f"mask has shape {tuple(m.shape)}; expected ({p}, {p}) like the patch.")
    # A gather, a blend and an out-of-place scatter: one copy of x, differentiable in both x and the patch.
    index = _flat_index(x.shape, boxes, p)
    flat = x.reshape(-1)
    covered = flat[index]
    blended = torch.lerp(covered, patch.to(x.dtype), m.expand_as(covered))  # exact at m = 0 and m = 1
    return flat.index_put((index,), blended).view_as(x)


def _flat_index(shape: torch.Size, boxes: torch.Tensor, p: int) -> torch.Tensor:
    """Flat indices (N x C x p x p) into an N x C x H x W tensor of the p x p region at each box."""
    n, c, h, w = shape
    device = boxes.device
    offs = torch.arange(p, device=device)
    rows, cols = boxes[:, 0, None] + offs, boxes[:, 1, None] + offs  # N x p each
    plane = torch.arange(n * c, device=device).view(n, c) * (h * w)
    return plane[:, :, None, None] + (rows * w)[:, None, :, None] + cols[:, None, None, :]


def crop(x: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """The square regions of ``x`` at ``boxes`` (all of one size p) as N x C x p x p, batched."""
    if x.ndim != 4:
        raise InputError(f"x has shape {tuple(x.shape)}; expected N x C x H x W.")
    check_boxes(boxes, x.shape[0], tuple(x.shape[-2:]))
    if x.shape[0] == 0:
        return x[:, :, :0, :0]
    p = int(boxes[0, 2])
    if not bool(((boxes[:, 2] == p) & (boxes[:, 3] == p)).all()):
        raise InputError("boxes are not all squares of one size; expected one patch size per batch.")
    return x.reshape(-1)[_flat_index(x.shape, boxes.to(x.device), p)]


__all__ = ["SHAPES", "check_boxes", "crop", "fixed_boxes", "paste", "patch_side", "random_boxes", "shape_mask",
           "window_means", "windows"]
