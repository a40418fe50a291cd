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
    """The side in pixels of a square patch that covers ``area`` of an H x W image.

    The side is ``round(sqrt(area * H * W))``, at least 1 pixel.

    Args:
        area: the patch's share of the image area, a fraction in (0, 1).
        image_hw: the image's (H, W) in pixels.

    Returns:
        The side, in pixels.

    Raises:
        InputError: when ``area`` is not a number in (0, 1), or the patch would not fit in the image.

    Examples:
        >>> from robust.placement import patch_side
        >>> patch_side(0.12, (32, 32)), patch_side(0.08, (224, 224))
        (11, 63)
    """
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
    """The box of the window with the highest (or lowest) mean saliency in each map.

    Every ``side`` x ``side`` window is scored by its mean saliency (``window_means``: the average pooling of the
    protocol, from a summed-area table); only windows whose top and left are multiples of ``stride`` compete, and a
    tie goes to the first window in row-major order.

    Args:
        saliency: the maps (e.g. Grad-CAM).
        side: the window's side in pixels, 1 <= side <= min(H, W).
        stride: the step between candidate windows, in pixels.
        mode: ``max`` (the most salient window) or ``min`` (the least salient).

    Returns:
        One box per map: (top, left, side, side) in pixels.

    Raises:
        InputError: when ``saliency`` is not N x H x W, or ``side``, ``stride`` or ``mode`` is not valid.

    Shape:
        saliency: N x H x W; returns N x 4 (int64).

    Examples:
        >>> import torch
        >>> from robust.placement import windows
        >>> saliency = torch.zeros(1, 6, 6)
        >>> saliency[0, 3:5, 1:3] = 1.0
        >>> windows(saliency, 2), windows(saliency, 2, mode="min"), windows(saliency, 2, stride=2)
        (tensor([[3, 1, 2, 2]]), tensor([[0, 0, 2, 2]]), tensor([[2, 0, 2, 2]]))
    """
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
    """The mean of every ``side`` x ``side`` window (stride 1) of each map, from a summed-area table.

    O(H W) whatever the side, where average pooling costs O(H W side^2); computed in float64 so that near-ties are
    ranked exactly. ``side`` is not checked here (``windows`` checks it).

    Args:
        saliency: the maps.
        side: the window's side in pixels, 1 <= side <= min(H, W).

    Returns:
        The mean of the window at each (top, left), in float64.

    Shape:
        saliency: N x H x W; returns N x (H - side + 1) x (W - side + 1).

    Examples:
        >>> import torch
        >>> from robust.placement import window_means
        >>> saliency = torch.zeros(1, 6, 6)
        >>> saliency[0, 3:5, 1:3] = 1.0
        >>> means = window_means(saliency, 2)
        >>> tuple(means.shape), means.dtype, means[0, 3].tolist()
        ((1, 5, 5), torch.float64, [0.5, 1.0, 0.5, 0.0, 0.0])
    """
    s = F.pad(saliency.double().cumsum(1).cumsum(2), (1, 0, 1, 0))
    total = s[:, side:, side:] - s[:, :-side, side:] - s[:, side:, :-side] + s[:, :-side, :-side]
    return total / (side * side)


def random_boxes(u: torch.Tensor, image_hw: tuple[int, int], side: int) -> torch.Tensor:
    """Uniformly random square boxes that lie inside the image, one per row of ``u``.

    Each top is ``floor(u[:, 0] * (H - side + 1))`` and each left ``floor(u[:, 1] * (W - side + 1))``, so every
    position inside the image is equally likely.

    Args:
        u: uniform numbers in [0, 1), two per box: for the top and the left (e.g. ``draws.uniform("window", 2)``).
        image_hw: the image's (H, W) in pixels.
        side: the boxes' side in pixels, 1 <= side <= min(H, W).

    Returns:
        The boxes, (top, left, side, side) in pixels, on ``u``'s device.

    Raises:
        InputError: when ``side`` does not fit the image.

    Shape:
        u: N x 2 in [0, 1); returns N x 4 (int64).

    Examples:
        >>> import torch
        >>> from robust.placement import random_boxes
        >>> random_boxes(torch.tensor([[0.0, 0.0], [0.5, 0.999]]), (32, 32), 11)
        tensor([[ 0,  0, 11, 11],
                [11, 21, 11, 11]])
    """
    _check_side(side, image_hw)
    h, w = image_hw
    top = (u[:, 0].double() * (h - side + 1)).long()
    left = (u[:, 1].double() * (w - side + 1)).long()
    return _boxes(top, left, side)


def fixed_boxes(n: int, image_hw: tuple[int, int], side: int, where: str = "center",
                device: torch.device | str | None = None) -> torch.Tensor:
    """``n`` copies of the centre box or of a corner box: the placement ablations.

    Args:
        n: how many boxes.
        image_hw: the image's (H, W) in pixels.
        side: the boxes' side in pixels, 1 <= side <= min(H, W).
        where: ``center`` (rounded towards the top left), ``top-left``, ``top-right``, ``bottom-left`` or
            ``bottom-right``.
        device: the boxes' device (default: the CPU).

    Returns:
        The boxes, (top, left, side, side) in pixels.

    Raises:
        InputError: when ``side`` does not fit the image or ``where`` is not one of the above.

    Shape:
        returns n x 4 (int64).

    Examples:
        >>> from robust.placement import fixed_boxes
        >>> fixed_boxes(2, (32, 32), 11), fixed_boxes(1, (32, 32), 11, "bottom-right")
        (tensor([[10, 10, 11, 11],
                [10, 10, 11, 11]]), tensor([[21, 21, 11, 11]]))
    """
    _check_side(side, image_hw)
    h, w = image_hw
    spots = {"center": ((h - side) // 2, (w - side) // 2), "top-left": (0, 0), "top-right": (0, w - side),
             "bottom-left": (h - side, 0), "bottom-right": (h - side, w - side)}
    if where not in spots:
        raise InputError(f"where={where!r} is not valid; expected one of {tuple(spots)}.")
    top, left = spots[where]
    return _boxes(torch.full((n,), top, device=device), torch.full((n,), left, device=device), side)


def placements(image_hw: tuple[int, int], side: int, stride: int = 1) -> torch.Tensor:
    """Every box of a ``side`` x ``side`` patch on a stride grid, the last row and column included.

    Args:
        image_hw: the image's (H, W) in pixels.
        side: the patch's side in pixels.
        stride: pixels between neighbouring places (1: every place).

    Returns:
        The boxes (top, left, height, width).

    Raises:
        InputError: a side that does not fit the image, or a stride below 1.

    Shape:
        Returns P x 4 (long), P = rows x columns of the grid.

    Examples:
        >>> from robust.placement import placements
        >>> boxes = placements((8, 8), side=3, stride=2)
        >>> boxes.shape[0], boxes[-1].tolist()  # tops and lefts 0, 2, 4, 5
        (16, [5, 5, 3, 3])
    """
    check_positive_int(side, "side")
    check_positive_int(stride, "stride")
    if side > min(image_hw):
        raise InputError(f"side={side} does not fit an image of {tuple(image_hw)} pixels; expected at most "
                         f"{min(image_hw)}.")
    tops, lefts = (sorted({*range(0, n - side + 1, stride), n - side}) for n in image_hw)
    grid = torch.cartesian_prod(torch.tensor(tops), torch.tensor(lefts))
    return torch.cat([grid, torch.full_like(grid, side)], 1)


def _boxes(top: torch.Tensor, left: torch.Tensor, side: int) -> torch.Tensor:
    sides = torch.full_like(top, side)
    return torch.stack([top, left, sides, sides], 1).long()


def shape_mask(shape: str, side: int, device: torch.device | str | None = None) -> torch.Tensor:
    """A patch's shape as a ``side`` x ``side`` {0, 1} mask: the full square, or the inscribed disc.

    A pixel is in the disc when its centre lies within ``side / 2`` of the square's centre.

    Args:
        shape: ``square`` or ``circle`` (see ``SHAPES``).
        side: the mask's side in pixels.
        device: the mask's device (default: the CPU).

    Returns:
        The mask, float32 ones and zeros.

    Raises:
        InputError: when ``shape`` is not one of ``SHAPES``.

    Shape:
        returns side x side.

    Examples:
        >>> from robust.placement import shape_mask
        >>> shape_mask("circle", 5)
        tensor([[0., 1., 1., 1., 0.],
                [1., 1., 1., 1., 1.],
                [1., 1., 1., 1., 1.],
                [1., 1., 1., 1., 1.],
                [0., 1., 1., 1., 0.]])
    """
    check_choice(shape, SHAPES, "shape")
    if shape == "square":
        return torch.ones(side, side, device=device)
    c = torch.arange(side, device=device, dtype=torch.float32) - (side - 1) / 2
    return ((c[:, None] ** 2 + c[None, :] ** 2) <= (side / 2) ** 2).float()


def check_boxes(boxes: torch.Tensor, n: int, image_hw: tuple[int, int], *, values: bool = True) -> torch.Tensor:
    """Require ``n`` integer boxes (top, left, height, width) that lie inside an H x W image.

    Args:
        boxes: the boxes to check.
        n: how many boxes there must be (one per image).
        image_hw: the image's (H, W) in pixels.
        values: check where the boxes lie too (reads their values: a host sync on a GPU); False checks the shape
            and dtype only.

    Returns:
        ``boxes`` itself, unchanged.

    Raises:
        InputError: when ``boxes`` is not an integer tensor of shape (n, 4), or a box has a side below 1 or reaches
            outside the image.

    Shape:
        boxes: n x 4 (integers); returns n x 4.

    Examples:
        >>> import torch
        >>> from robust.placement import check_boxes
        >>> check_boxes(torch.tensor([[0, 0, 4, 4]]), 1, (8, 8))
        tensor([[0, 0, 4, 4]])
        >>> check_boxes(torch.tensor([[6, 0, 4, 4]]), 1, (8, 8))
        Traceback (most recent call last):
        robust.checks.InputError: boxes[0] = [6, 0, 4, 4] lies outside the 8 x 8 image; ...
    """
    if not isinstance(boxes, torch.Tensor) or boxes.shape != (n, 4) or boxes.is_floating_point():
        shape = tuple(boxes.shape) if isinstance(boxes, torch.Tensor) else type(boxes).__name__
        raise InputError(f"boxes has shape {shape}; expected an integer tensor ({n}, 4) of (top, left, h, w).")
    if n and values:
        h, w = image_hw
        top, left, bh, bw = boxes.unbind(1)
        inside = (top >= 0) & (left >= 0) & (bh >= 1) & (bw >= 1) & (top + bh <= h) & (left + bw <= w)
        if not bool(inside.all()):
            i = int((~inside).nonzero()[0])
            raise InputError(f"boxes[{i}] = {boxes[i].tolist()} lies outside the {h} x {w} image; expected "
                             "0 <= top, top + height <= H, 0 <= left, left + width <= W.")
    return boxes


def context_side(side: int, image_hw: tuple[int, int], scale: float = 2.0) -> int:
    """Side of the square context around a ``side`` px window (what gan-patch's generator and the realism
    measures see): ``scale`` times the window (twice by default), within the image.

    Example:
        >>> context_side(11, (32, 32)), context_side(11, (32, 32), scale=3)
        (22, 32)
    """
    return min(round(scale * side), *image_hw)


def context_boxes(boxes: torch.Tensor, image_hw: tuple[int, int], side: int | None = None, scale: float = 2.0
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """The square context box around each window box (N x 4, one side p; ``context_side`` of it at ``scale``,
    shifted to stay inside the image) and the window's box inside that context. ``side``: p, when the caller knows
    it (None: read from the first box, a host sync on a GPU)."""
    h, w = image_hw
    p = side if side is not None else int(boxes[0, 2]) if len(boxes) else 1
    s = context_side(p, image_hw, scale)
    top = (boxes[:, 0] - (s - p) // 2).clamp(0, h - s)
    left = (boxes[:, 1] - (s - p) // 2).clamp(0, w - s)
    inner = torch.stack([boxes[:, 0] - top, boxes[:, 1] - left, boxes[:, 2], boxes[:, 3]], 1)
    return _boxes(top, left, s), inner


def paste(x: torch.Tensor, patch: torch.Tensor, boxes: torch.Tensor, mask: torch.Tensor | None = None, *,
          check: bool = True) -> torch.Tensor:
    """Composite a patch into each image at its box: ``(1 - M) * x + M * patch``, M the mask placed at the box.

    Batched (no per-image loop) and differentiable with respect to ``patch`` and ``x``. Checking the boxes reads
    their values, a host sync on a GPU: a loop that pastes at the same boxes every step checks them once and passes
    ``check=False`` (the shapes are checked always; they are known to the host).

    Args:
        x: the images.
        patch: one patch per image, or one for all.
        boxes: each patch's box (top, left, height, width in pixels; height = width = p), inside the image.
        mask: the patch's shape as a p x p mask in [0, 1] (default: all ones, a square).
        check: check that the boxes lie inside the image and have the patch's size.

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
    check_boxes(boxes, n, (h, w), values=check)
    boxes = boxes.to(x.device)
    if check and n and not bool(((boxes[:, 2] == p) & (boxes[:, 3] == p)).all()):
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


def crop(x: torch.Tensor, boxes: torch.Tensor, side: int | None = None, *, check: bool = True) -> torch.Tensor:
    """The square regions of ``x`` at ``boxes`` (all of one size p), batched: what ``paste`` covers there.

    Reading the side from the boxes and checking them reads their values, a host sync on a GPU: a hot loop passes
    ``side`` and ``check=False`` (as ``paste``).

    Args:
        x: the images.
        boxes: one box per image, (top, left, p, p) in pixels, inside the image; every box the same size.
        side: p, when the caller knows it (None: read from the first box).
        check: check that the boxes lie inside the image and are all p x p.

    Returns:
        Each image's region at its box.

    Raises:
        InputError: when ``x`` is not N x C x H x W, or the boxes are not valid (see ``check_boxes``) or not all
            squares of one size.

    Shape:
        x: N x C x H x W; boxes: N x 4 (integers); returns N x C x p x p.

    Examples:
        >>> import torch
        >>> from robust.placement import crop
        >>> crop(torch.arange(16.0).view(1, 1, 4, 4), torch.tensor([[1, 2, 2, 2]]))
        tensor([[[[ 6.,  7.],
                  [10., 11.]]]])
    """
    if x.ndim != 4:
        raise InputError(f"x has shape {tuple(x.shape)}; expected N x C x H x W.")
    if check:
        check_boxes(boxes, x.shape[0], tuple(x.shape[-2:]))
    if x.shape[0] == 0:
        return x[:, :, :0, :0]
    p = int(boxes[0, 2]) if side is None else side
    if check and not bool(((boxes[:, 2] == p) & (boxes[:, 3] == p)).all()):
        raise InputError("boxes are not all squares of one size; expected one patch size per batch.")
    return x.reshape(-1)[_flat_index(x.shape, boxes.to(x.device), p)]


__all__ = ["SHAPES", "check_boxes", "crop", "fixed_boxes", "paste", "patch_side", "placements", "random_boxes",
           "shape_mask", "window_means", "windows"]
