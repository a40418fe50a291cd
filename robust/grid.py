"""Cell grids over images, shared by Patch Mixing and the occlusion evaluations: a G x G grid of equal cells, a
boolean choice of cells per image (N x rows x cols), drawn at random or ranked by a score, and the pixel mask it
stands for. Everything batched; random choices take their uniform numbers as a tensor (one row per image), drawn by
the caller from a ``torch.Generator`` (training) or ``robust.draws`` (evaluation, per image)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from robust.checks import InputError


def grid_shape(grid: int | tuple[int, int], image_hw: tuple[int, int], name: str = "grid") -> tuple[int, int]:
    """The (rows, cols) of a cell grid, checked to divide an H x W image into equal cells.

    Args:
        grid: cells per side (an int: a square grid) or (rows, cols).
        image_hw: the image's (H, W) in pixels.
        name: the option's name in the error message.

    Returns:
        (rows, cols), with H a multiple of rows and W a multiple of cols.

    Raises:
        InputError: when ``grid`` is not a positive integer or a pair of them (a bool is refused), or does not
            divide both sides of the image.

    Examples:
        >>> from robust.grid import grid_shape
        >>> grid_shape(8, (32, 32)), grid_shape((2, 4), (32, 64))
        ((8, 8), (2, 4))
        >>> grid_shape(5, (32, 32))
        Traceback (most recent call last):
        robust.checks.InputError: grid=5 does not divide the 32 x 32 image into equal cells; ...
    """
    rows, cols = (grid, grid) if isinstance(grid, int) and not isinstance(grid, bool) else tuple(grid)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in (rows, cols)):
        raise InputError(f"{name}={grid!r} is not valid; expected a positive integer or a pair of them.")
    h, w = image_hw
    if h % rows or w % cols:
        raise InputError(f"{name}={grid!r} does not divide the {h} x {w} image into equal cells; expected a grid "
                         "that divides both sides.")
    return rows, cols


def default_grid(image_hw: tuple[int, int], coarse: bool = False) -> int:
    """The default cells per side of a grid on an H x W image: the fine grid, or the coarse one (half as many).

    14 (7 coarse) at 224 px, 8 (4 coarse) at 32 px: about 16-px cells when the shorter side is 112 px or more (4-px
    ones below), and half as many coarse, each the nearest count that divides both sides into equal cells (the larger
    on a tie): 15 and 8 at 240 px, 13 and 5 at 260 px.

    Args:
        image_hw: the image's (H, W) in pixels.
        coarse: give the coarse grid (half the fine grid's cells per side, rounded to a divisor).

    Returns:
        The cells per side, a divisor of both H and W.

    Examples:
        >>> from robust.grid import default_grid
        >>> default_grid((224, 224)), default_grid((32, 32), coarse=True)
        (14, 4)
        >>> default_grid((240, 240)), default_grid((260, 260), coarse=True)
        (15, 5)
    """
    h = min(image_hw)
    target = h / 16 if h >= 112 else max(1.0, h / 4)
    fine = _nearest_divisor(image_hw, target)
    return _nearest_divisor(image_hw, fine / 2) if coarse else fine


def _nearest_divisor(image_hw: tuple[int, int], target: float) -> int:
    """The number of cells per side nearest ``target`` that divides both sides (the larger one on a tie)."""
    common = [k for k in range(1, min(image_hw) + 1) if image_hw[0] % k == 0 and image_hw[1] % k == 0]
    return min(common, key=lambda k: (abs(k - target), -k))


def random_cells(u: torch.Tensor, rows: int, cols: int, count: torch.Tensor | int) -> torch.Tensor:
    """Choose ``count`` cells of each image uniformly at random: the ``count`` cells of lowest ``u``.

    The uniform numbers come from the caller (a ``torch.Generator`` in training, ``robust.draws`` per image in
    evaluation), so the choice is a function of ``u`` alone; ties are broken by cell order (a stable sort).

    Args:
        u: uniform numbers, one per cell of each image (row-major cell order).
        rows: the grid's rows.
        cols: the grid's columns.
        count: how many cells to choose: one int for every image, or a tensor with one per image.

    Returns:
        The chosen cells, as booleans.

    Shape:
        u: N x (rows * cols); count: an int or N; returns N x rows x cols (bool).

    Examples:
        >>> import torch
        >>> from robust.grid import random_cells
        >>> u = torch.tensor([[0.9, 0.1, 0.5, 0.3], [0.2, 0.8, 0.6, 0.4]])
        >>> random_cells(u, 2, 2, 2)
        tensor([[[False,  True],
                 [False,  True]],
        <BLANKLINE>
                [[ True, False],
                 [False,  True]]])
        >>> random_cells(u, 2, 2, torch.tensor([1, 3])).sum((1, 2))
        tensor([1, 3])
    """
    n = u.shape[0]
    rank = u.argsort(dim=1, stable=True).argsort(1)
    if isinstance(count, torch.Tensor):  # a Python number stays one: no copy to the device (a host sync on CUDA)
        count = count.to(rank.device).reshape(-1, 1)
    return (rank < count).view(n, rows, cols)


def top_cells(scores: torch.Tensor, count: int, largest: bool = True) -> torch.Tensor:
    """Choose the ``count`` cells of highest (or lowest) score in each image's map.

    Ties are broken by cell order (row-major, a stable sort).

    Args:
        scores: one score per cell of each image (e.g. ``cell_sums`` of a saliency map).
        count: how many cells to choose, the same for every image.
        largest: choose the highest scores (True) or the lowest (False).

    Returns:
        The chosen cells, as booleans.

    Shape:
        scores: N x rows x cols; returns N x rows x cols (bool).

    Examples:
        >>> import torch
        >>> from robust.grid import top_cells
        >>> scores = torch.tensor([[[1.0, 4.0], [3.0, 2.0]]])
        >>> top_cells(scores, 2)
        tensor([[[False,  True],
                 [ True, False]]])
        >>> top_cells(scores, 1, largest=False)
        tensor([[[ True, False],
                 [False, False]]])
    """
    n, rows, cols = scores.shape
    order = scores.flatten(1).argsort(dim=1, descending=largest, stable=True)
    chosen = torch.zeros(n, rows * cols, dtype=torch.bool, device=scores.device)
    chosen.scatter_(1, order[:, :count], True)
    return chosen.view(n, rows, cols)


def cell_sums(maps: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """Sum each map over each cell of a rows x cols grid.

    Args:
        maps: the maps (e.g. raw Grad-CAM); the grid should divide H and W (see ``grid_shape``).
        rows: the grid's rows.
        cols: the grid's columns.

    Returns:
        The sum of each map over each cell, in float32.

    Shape:
        maps: N x H x W; returns N x rows x cols.

    Examples:
        >>> import torch
        >>> from robust.grid import cell_sums
        >>> cell_sums(torch.arange(16.0).view(1, 4, 4), 2, 2)
        tensor([[[10., 18.],
                 [42., 50.]]])
    """
    h, w = maps.shape[-2:]
    return F.avg_pool2d(maps[:, None].float(), (h // rows, w // cols))[:, 0] * ((h // rows) * (w // cols))


def cell_mask(cells: torch.Tensor, image_hw: tuple[int, int]) -> torch.Tensor:
    """The pixel mask of the chosen cells: each cell's choice repeated over its pixels.

    Args:
        cells: the chosen cells of each image (a grid that divides the image, see ``grid_shape``).
        image_hw: the image's (H, W) in pixels.

    Returns:
        The mask, True on the chosen cells' pixels (with a channel axis, to broadcast over images).

    Shape:
        cells: N x rows x cols (bool); returns N x 1 x H x W (bool).

    Examples:
        >>> import torch
        >>> from robust.grid import cell_mask
        >>> mask = cell_mask(torch.tensor([[[True, False], [False, True]]]), (4, 4))
        >>> tuple(mask.shape)
        (1, 1, 4, 4)
        >>> mask[0, 0].int()
        tensor([[1, 1, 0, 0],
                [1, 1, 0, 0],
                [0, 0, 1, 1],
                [0, 0, 1, 1]], dtype=torch.int32)
    """
    h, w = image_hw
    rows, cols = cells.shape[-2:]
    return cells.repeat_interleave(h // rows, 1).repeat_interleave(w // cols, 2)[:, None]


def shuffle_cells(x: torch.Tensor, rows: int, cols: int, u: torch.Tensor) -> torch.Tensor:
    """Permute each image's cells, in an order of its own given by its row of ``u``; one gather for the batch.

    Cell i of the result (row-major) is the cell of ``x`` with the i-th lowest ``u`` of that image.

    Args:
        x: the images; the grid must divide H and W (see ``grid_shape``).
        rows: the grid's rows.
        cols: the grid's columns.
        u: uniform numbers, one per cell of each image (e.g. ``draws.uniform("order", rows * cols)``).

    Returns:
        The images with their cells permuted.

    Shape:
        x: N x C x H x W; u: N x (rows * cols); returns N x C x H x W.

    Examples:
        >>> import torch
        >>> from robust.grid import shuffle_cells
        >>> x = torch.arange(4.0).view(1, 1, 2, 2)
        >>> shuffle_cells(x, 2, 2, torch.tensor([[0.9, 0.1, 0.5, 0.3]]))
        tensor([[[[1., 3.],
                  [2., 0.]]]])
    """
    n, c, h, w = x.shape
    ch, cw = h // rows, w // cols
    cells = x.view(n, c, rows, ch, cols, cw).permute(0, 2, 4, 1, 3, 5).reshape(n, rows * cols, c, ch, cw)
    perm = u.argsort(dim=1, stable=True).to(x.device)
    cells = cells.gather(1, perm[:, :, None, None, None].expand_as(cells))
    return cells.view(n, rows, cols, c, ch, cw).permute(0, 3, 1, 4, 2, 5).reshape(n, c, h, w)


def mix_cells_of(x: torch.Tensor, partner: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """A copy of ``x`` whose chosen cells hold the same cells of each image's partner ``x[partner]``.

    The batch is copied once, as ``x.clone()`` does, in runs of a cell's width: each run of ``W / cols`` pixels
    (contiguous in memory) is selected from its source image by one ``index_select`` over the runs. With an
    element-wise gather over an expanded index, Patch Mixing of 64 x 3 x 224 x 224 cost 1.76x a clone on 2 CPU
    cores; with the runs, 1.25-1.39x (``bench/augment.py``). The index is one int32 per run (int64 past 2^31 runs),
    and nothing waits on the device (no ``nonzero``).

    Args:
        x: the images; the grid must divide H and W.
        partner: each image's partner, an index into the batch.
        cells: each image's cells to take from its partner.

    Returns:
        The mixed images.

    Shape:
        x: N x C x H x W; partner: N (indices in [0, N)); cells: N x rows x cols (bool); returns N x C x H x W.

    Examples:
        >>> import torch
        >>> from robust.grid import mix_cells_of
        >>> x = torch.stack([torch.zeros(1, 4, 4), torch.ones(1, 4, 4)])
        >>> cells = torch.tensor([[[True, False], [False, False]], [[False, False], [False, True]]])
        >>> mix_cells_of(x, torch.tensor([1, 0]), cells)[:, 0]
        tensor([[[1., 1., 0., 0.],
                 [1., 1., 0., 0.],
                 [0., 0., 0., 0.],
                 [0., 0., 0., 0.]],
        <BLANKLINE>
                [[1., 1., 1., 1.],
                 [1., 1., 1., 1.],
                 [1., 1., 0., 0.],
                 [1., 1., 0., 0.]]])
    """
    n, c, h, w = x.shape
    rows, cols = cells.shape[-2:]
    runs = c * rows * (h // rows) * cols  # runs of one image
    own = torch.arange(n, device=x.device).view(n, 1, 1)
    dtype = torch.int32 if n * runs < 2**31 else torch.int64
    shift = ((torch.where(cells, partner.view(n, 1, 1), own) - own) * runs).to(dtype)  # to the source image
    index = torch.arange(n * runs, dtype=dtype, device=x.device).view(n, c, rows, h // rows, cols)
    index += shift.view(n, 1, rows, 1, cols)
    return x.contiguous().view(-1, w // cols).index_select(0, index.view(-1)).view(n, c, h, w)


__all__ = ["cell_mask", "cell_sums", "default_grid", "grid_shape", "mix_cells_of", "random_cells", "shuffle_cells",
           "top_cells"]
