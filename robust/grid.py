"""Cell grids over images, shared by Patch Mixing and the occlusion evaluations: a G x G grid of equal cells, a
boolean choice of cells per image (N x rows x cols), drawn at random or ranked by a score, and the pixel mask it
stands for. Everything batched; random choices take their uniform numbers as a tensor (one row per image), drawn by
the caller from a ``torch.Generator`` (training) or ``robust.draws`` (evaluation, per image)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from robust.checks import InputError


def grid_shape(grid: int | tuple[int, int], image_hw: tuple[int, int], name: str = "grid") -> tuple[int, int]:
    """(rows, cols) of a grid given as cells per side (int) or (rows, cols); it must divide the H x W image."""
    rows, cols = (grid, grid) if isinstance(grid, int) and not isinstance(grid, bool) else tuple(grid)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in (rows, cols)):
        raise InputError(f"{name}={grid!r} is not valid; expected a positive integer or a pair of them.")
    h, w = image_hw
    if h % rows or w % cols:
        raise InputError(f"{name}={grid!r} does not divide the {h} x {w} image into equal cells; expected a grid "
                         "that divides both sides.")
    return rows, cols


def default_grid(image_hw: tuple[int, int], coarse: bool = False) -> int:
    """Cells per side: 14 (7 coarse) at 224 px, 8 (4 coarse) at 32 px: about 16-px cells from 112 px up (4-px ones
    below), and half as many coarse, each the nearest count that divides both sides into equal cells (15 and 8 at
    240 px, 13 and 5 at 260 px).

    >>> default_grid((224, 224)), default_grid((32, 32), coarse=True)
    (14, 4)
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
    """N x rows x cols booleans with ``count`` (per image, or one for all) cells chosen uniformly at random: the
    ``count`` cells of lowest ``u`` (N x rows*cols uniform numbers)."""
    n = u.shape[0]
    rank = u.argsort(dim=1, stable=True).argsort(1)
    if isinstance(count, torch.Tensor):  # a Python number stays one: no copy to the device (a host sync on CUDA)
        count = count.to(rank.device).reshape(-1, 1)
    return (rank < count).view(n, rows, cols)


def top_cells(scores: torch.Tensor, count: int, largest: bool = True) -> torch.Tensor:
    """N x rows x cols booleans: the ``count`` cells of highest (or lowest) score in each N x rows x cols map."""
    n, rows, cols = scores.shape
    order = scores.flatten(1).argsort(dim=1, descending=largest, stable=True)
    chosen = torch.zeros(n, rows * cols, dtype=torch.bool, device=scores.device)
    chosen.scatter_(1, order[:, :count], True)
    return chosen.view(n, rows, cols)


def cell_sums(maps: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """N x rows x cols sums of N x H x W maps over each cell."""
    h, w = maps.shape[-2:]
    return F.avg_pool2d(maps[:, None].float(), (h // rows, w // cols))[:, 0] * ((h // rows) * (w // cols))


def cell_mask(cells: torch.Tensor, image_hw: tuple[int, int]) -> torch.Tensor:
    """N x 1 x H x W boolean pixel mask of N x rows x cols chosen cells."""
    h, w = image_hw
    rows, cols = cells.shape[-2:]
    return cells.repeat_interleave(h // rows, 1).repeat_interleave(w // cols, 2)[:, None]


def shuffle_cells(x: torch.Tensor, rows: int, cols: int, u: torch.Tensor) -> torch.Tensor:
    """Each image's cells in a random order of its own, the order of its row of ``u`` (N x rows*cols uniform
    numbers); one gather for the batch."""
    n, c, h, w = x.shape
    ch, cw = h // rows, w // cols
    cells = x.view(n, c, rows, ch, cols, cw).permute(0, 2, 4, 1, 3, 5).reshape(n, rows * cols, c, ch, cw)
    perm = u.argsort(dim=1, stable=True).to(x.device)
    cells = cells.gather(1, perm[:, :, None, None, None].expand_as(cells))
    return cells.view(n, rows, cols, c, ch, cw).permute(0, 3, 1, 4, 2, 5).reshape(n, c, h, w)


def mix_cells_of(x: torch.Tensor, partner: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """A copy of ``x`` whose chosen cells (N x rows x cols) hold the same cells of ``x[partner]``: one gather over
    the batch, each cell from its source image (the index is expanded, not materialised), so the copy reads and
    writes the batch once, as ``x.clone()`` does, and nothing waits on the device (no ``nonzero``)."""
    n, c, h, w = x.shape
    rows, cols = cells.shape[-2:]
    view = (n, c, rows, h // rows, cols, w // cols)
    source = torch.where(cells, partner.view(n, 1, 1), torch.arange(n, device=x.device).view(n, 1, 1))
    index = source.view(n, 1, rows, 1, cols, 1).expand(view)
    return torch.gather(x.contiguous().view(view), 0, index).view(n, c, h, w)


__all__ = ["cell_mask", "cell_sums", "default_grid", "grid_shape", "mix_cells_of", "random_cells", "shuffle_cells",
           "top_cells"]
