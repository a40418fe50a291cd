"""Patch Mixing (Lee et al. 2023, protocols section 3) as a kornia mix augmentation.

The image is split into a grid of equal cells; a fraction r of the cells (a whole number of them, chosen at random
per image) is replaced by the cells **at the same positions** of a partner image (a permutation of the batch).
``x_mix = (1 - M) * x + M * x[partner]`` with M block-constant on the grid and ``mean(M) == r`` exactly.

Labels: one row ``(y, y_partner, lam)`` per image. By default (``lam="original"``, timm's convention) **lam is
the weight of the original image**, ``lam = 1 - r``; ``lam="partner"`` gives kornia's ``RandomMixUpV2`` convention,
the weight of the partner, ``lam = r``. ``soft_targets`` turns either into timm-style soft targets,
``w * onehot(y) + (1 - w) * onehot(y_partner)`` (w: the original's weight), then label smoothing, for
``timm.loss.SoftTargetCrossEntropy``; ``PatchMixing(..., soft=True, num_classes=K)`` returns those directly.

Inside ``kornia.augmentation.AugmentationSequential`` (which passes no class labels to mix augmentations) use
``data_keys=["input"]``: the container mixes the images, and ``aug.labels(y)`` gives the rows (or, with
``soft=True``, the soft targets) of that draw. The images keep their memory format (channels_last stays so).

Parameters are drawn by ``forward_parameters`` from the augmentation's own ``torch.Generator`` (kornia's pattern:
generation apart from application), so ``aug(x, y, params=aug._params)`` replays a draw exactly.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from kornia.augmentation import MixAugmentationBaseV2

from robust.checks import InputError, check_choice, check_number, check_positive_int, check_seed
from robust.device import to_device
from robust.grid import grid_shape, mix_cells_of, random_cells

LAM = ("original", "partner")


def soft_targets(mixed: torch.Tensor, num_classes: int, smoothing: float = 0.1, lam: str = "original"
                 ) -> torch.Tensor:
    """Timm-style soft targets from ``(y, y_partner, lam)`` rows, smoothed by ``smoothing``.

    Each row becomes ``w * onehot(y) + (1 - w) * onehot(y_partner)``, w the original image's weight, then
    ``(1 - smoothing) * target + smoothing / num_classes``: rows that sum to 1, for
    ``timm.loss.SoftTargetCrossEntropy``.

    Args:
        mixed: one row ``(y, y_partner, lam)`` per image, as ``PatchMixing`` gives them (the labels as floats).
        num_classes: the class count K.
        smoothing: the label smoothing epsilon, in [0, 1).
        lam: what the rows' lam weighs: ``"original"`` (the original image: timm's convention, the default) or
            ``"partner"`` (the partner: kornia's ``RandomMixUpV2``).

    Returns:
        The soft targets.

    Raises:
        InputError: when ``mixed`` is not B x 3, holds a label outside [0, K - 1], or an option is not valid.

    Shape:
        mixed: B x 3; returns B x K (float32, each row summing to 1).

    Examples:
        >>> import torch
        >>> from robust.augment.patch_mixing import soft_targets
        >>> mixed = torch.tensor([[0.0, 2.0, 0.75], [1.0, 1.0, 1.0]])
        >>> soft_targets(mixed, 3, smoothing=0.0)
        tensor([[0.7500, 0.0000, 0.2500],
                [0.0000, 1.0000, 0.0000]])
        >>> soft_targets(mixed, 3, smoothing=0.0, lam="partner")[0]
        tensor([0.2500, 0.0000, 0.7500])
        >>> soft_targets(mixed, 3)[1]
        tensor([0.0333, 0.9333, 0.0333])
    """
    check_choice(lam, LAM, "lam")
    if not isinstance(mixed, torch.Tensor) or mixed.ndim != 2 or mixed.shape[1] != 3:
        shape = tuple(mixed.shape) if isinstance(mixed, torch.Tensor) else type(mixed).__name__
        raise InputError(f"mixed has shape {shape}; expected B x 3 rows of (y, y_partner, lam).")
    check_positive_int(num_classes, "num_classes")
    check_number(smoothing, "smoothing", low=0, high=1, high_open=True)
    y, partner, weight = mixed[:, 0].long(), mixed[:, 1].long(), mixed[:, 2:].float()
    if bool(((y < 0) | (y >= num_classes) | (partner < 0) | (partner >= num_classes)).any()):
        raise InputError(f"mixed holds labels outside [0, {num_classes - 1}]; expected num_classes={num_classes} "
                         "to cover them.")
    if lam == "partner":
        weight = 1 - weight
    target = weight * F.one_hot(y, num_classes) + (1 - weight) * F.one_hot(partner, num_classes)
    return target * (1 - smoothing) + smoothing / num_classes


class PatchMixing(MixAugmentationBaseV2):
    """Patch Mixing (Lee et al. 2023) as a kornia mix augmentation: grid cells of each image replaced by a partner's.

    A fraction r of each image's grid cells (a whole number of them, chosen per image) is replaced by the cells at
    the same positions of a partner image from the same batch. A batch of one has no partner: its image comes back
    unchanged with lam = 1. An image the permutation pairs with itself comes back unchanged too; its row says
    ``y_partner == y``.

    Args:
        grid: cells per side (an int, or (rows, cols); default 8, the protocol's at 32 px, 14 at 224 px); the grid
            must divide the image exactly (no padding or cropping).
        cell: the cell side in pixels, instead of ``grid``.
        ratio: the fraction r of cells replaced: a number, or a (low, high) range drawn uniformly per image; rounded
            to whole cells.
        p: the probability that a batch is mixed (one draw per batch, as kornia's mix augmentations).
        soft: return timm-style soft targets (needs ``num_classes``) instead of ``(y, y_partner, lam)`` rows.
        num_classes: the class count, for soft targets.
        label_smoothing: epsilon of the soft targets.
        lam: what a row's lam weighs: ``"original"`` (timm's convention: lam = 1 - r) or ``"partner"`` (kornia's
            mix-ups: lam = r).
        generator: the ``torch.Generator`` of every draw (default: a CPU generator seeded with ``seed``).
        seed: the seed of the default generator.
        data_keys: kornia's data keys; ``["input"]`` inside ``AugmentationSequential`` (which passes no labels to
            mix augmentations), then ``aug.labels(y)`` gives the rows of that draw.

    Shape:
        ``aug(x, y)``: x is B x C x H x W in [0, 1] (float, any memory format, kept), y is B (class indices);
        returns the mixed images (B x C x H x W) and the label rows ``(y, y_partner, lam)`` (B x 3), or with
        ``soft=True`` soft targets (B x num_classes).

    Examples:
        >>> import torch
        >>> from robust.augment import PatchMixing
        >>> aug = PatchMixing(grid=4, ratio=0.5, p=1.0, seed=0)
        >>> x, y = torch.rand(8, 3, 32, 32), torch.arange(8)
        >>> mixed, rows = aug(x, y)
        >>> tuple(mixed.shape), rows[0]  # image 0 took half its cells from image 7, and keeps weight 0.5
        ((8, 3, 32, 32), tensor([0.0000, 7.0000, 0.5000]))
    """

    def __init__(self, grid: int | tuple[int, int] | None = None, *, cell: int | None = None,
                 ratio: float | tuple[float, float] = (0.0, 0.5), p: float = 0.5, soft: bool = False,
                 num_classes: int | None = None, label_smoothing: float = 0.1, lam: str = "original",
                 generator: torch.Generator | None = None, seed: int = 0,
                 data_keys: list[str] | None = None) -> None:
        super().__init__(p=1.0, p_batch=1.0, data_keys=data_keys or ["input", "class"])
        if grid is not None and cell is not None:
            raise InputError(f"grid={grid!r}, cell={cell!r}: expected one of them (cells per side, or the cell side "
                             "in pixels).")
        if grid is None and cell is None:
            grid = 8  # the protocol's default at 32 px (14 x 14 at 224)
        sizes = (grid, grid) if isinstance(grid, int) else grid if grid is not None else (cell, cell)
        if (not isinstance(sizes, tuple) or len(sizes) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in sizes)):
            raise InputError(f"{'grid' if grid is not None else 'cell'}={grid if grid is not None else cell!r} is "
                             "not valid; expected a positive integer or a pair of them.")
        def number(v: object) -> bool:
            return isinstance(v, (int, float)) and not isinstance(v, bool)

        bounds = (ratio, ratio) if number(ratio) else tuple(ratio) if isinstance(ratio, (tuple, list)) else ()
        if len(bounds) != 2 or not all(number(v) for v in bounds) or not 0 <= bounds[0] <= bounds[1] <= 1:
            raise InputError(f"ratio={ratio!r} is not valid; expected a fraction in [0, 1] or a range (low, high) "
                             "with 0 <= low <= high <= 1.")
        check_number(p, "p", low=0, high=1, expected="a probability in [0, 1]")
        if not isinstance(soft, bool):
            raise InputError(f"soft={soft!r} is not valid; expected True or False.")
        if soft and (not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2):
            raise InputError(f"soft=True needs num_classes (the class count, >= 2); got num_classes={num_classes!r}.")
        check_number(label_smoothing, "label_smoothing", low=0, high=1, high_open=True,
                     expected="a number in [0, 1)")
        check_choice(lam, LAM, "lam")
        seed = check_seed(seed)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise InputError(f"generator={generator!r} is not valid; expected a torch.Generator or None.")
        self.by_grid, self.sizes = grid is not None, sizes
        self.ratio, self.p_mix = (float(bounds[0]), float(bounds[1])), float(p)
        self.soft, self.num_classes, self.label_smoothing, self.lam = soft, num_classes, float(label_smoothing), lam
        self.generator = generator if generator is not None else torch.Generator().manual_seed(seed)

    def grid_shape(self, image_hw: tuple[int, int]) -> tuple[int, int]:
        """(rows, cols) of cells for an H x W image; the grid must divide it."""
        if self.by_grid:
            return grid_shape(self.sizes, image_hw)
        h, w = image_hw
        if h % self.sizes[0] or w % self.sizes[1]:
            raise InputError(f"cell={self.sizes} does not divide the {h} x {w} image into equal cells; expected a "
                             "cell size that divides both sides.")
        return h // self.sizes[0], w // self.sizes[1]

    def forward_parameters(self, batch_shape: tuple[int, ...]) -> dict[str, torch.Tensor]:
        """Draw one batch's parameters: the batch gate, the partner permutation, each image's cell count and
        cells. All from ``self.generator``, as small tensors on its device."""
        b = batch_shape[0]
        rows, cols = self.grid_shape(tuple(batch_shape[-2:]))
        n = rows * cols
        g, dev = self.generator, self.generator.device
        gate = torch.rand((), generator=g, device=dev) < self.p_mix
        perm = torch.randperm(b, generator=g, device=dev)
        low, high = self.ratio
        r = low + (high - low) * torch.rand(b, generator=g, device=dev)
        cells = random_cells(torch.rand(b, n, generator=g, device=dev), rows, cols, (r * n).round().long())
        if b == 1:  # no partner: documented as unchanged
            cells = torch.zeros_like(cells)
        return {"batch_prob": gate.float().expand(b).clone(), "mix_pairs": perm, "cells": cells,
                "forward_input_shape": torch.tensor(batch_shape, dtype=torch.long)}

    def apply_transform(self, input: torch.Tensor, params: dict[str, torch.Tensor], flags: dict[str, Any]
                        ) -> torch.Tensor:
        if input.dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
            raise InputError(f"images have dtype {input.dtype}; expected float images in [0, 1].")
        pairs, cells = to_device(params["mix_pairs"], input.device), to_device(params["cells"], input.device)
        out = mix_cells_of(input, pairs, cells)
        if input.is_contiguous(memory_format=torch.channels_last) and not input.is_contiguous():
            out = out.contiguous(memory_format=torch.channels_last)  # the caller's memory format, kept
        return out

    def transform_input(self, input: torch.Tensor, params: dict[str, torch.Tensor], flags: dict[str, Any]
                        ) -> torch.Tensor:
        # The gate is one draw per batch: mix the whole batch or return it, with no per-image blend pass.
        x = self.transform_tensor(input)
        return self.apply_transform(x, params, flags) if bool(params["batch_prob"][0] > 0.5) else x

    def _rows(self, labels: torch.Tensor, params: dict[str, torch.Tensor], mixed: bool) -> torch.Tensor:
        if labels.ndim != 1 or labels.shape[0] != params["cells"].shape[0]:
            raise InputError(f"labels has shape {tuple(labels.shape)}; expected ({params['cells'].shape[0]},) class "
                             "indices, one per image.")
        if mixed:
            lam = 1 - to_device(params["cells"], labels.device).flatten(1).float().mean(1)  # the original's weight
            partner = labels[to_device(params["mix_pairs"], labels.device)]
        else:
            lam, partner = torch.ones(labels.shape[0], device=labels.device), labels
        rows = torch.stack([labels.float(), partner.float(), lam], 1)
        if self.soft:
            return soft_targets(rows, self.num_classes, self.label_smoothing)
        return rows if self.lam == "original" else torch.stack([rows[:, 0], rows[:, 1], 1 - rows[:, 2]], 1)

    def labels(self, y: torch.Tensor, params: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """The label rows (or soft targets) of the last draw (or of ``params``) for labels ``y``: for use inside
        ``kornia.augmentation.AugmentationSequential``, which passes no class labels to mix augmentations."""
        params = self._params if params is None else params
        if not params:
            raise ValueError("no parameters drawn yet; call the augmentation on a batch first.")
        return self._rows(y, params, mixed=bool(params["batch_prob"][0] > 0.5))

    def apply_transform_class(self, input: torch.Tensor, params: dict[str, torch.Tensor], flags: dict[str, Any]
                              ) -> torch.Tensor:
        return self._rows(input, params, mixed=True)

    def apply_non_transform_class(self, input: torch.Tensor, params: dict[str, torch.Tensor],
                                  flags: dict[str, Any] | None = None) -> torch.Tensor:
        return self._rows(input, params, mixed=False)

    def forward(self, *input: torch.Tensor, params: dict[str, torch.Tensor] | None = None,
                data_keys: list[str] | None = None) -> torch.Tensor | list[torch.Tensor]:
        if input and isinstance(input[0], torch.Tensor):
            x = input[0]
            if not x.is_floating_point():
                raise InputError(f"x has dtype {x.dtype}; expected float images in [0, 1] (divide uint8 by 255).")
            if x.ndim != 4:
                raise InputError(f"x has shape {tuple(x.shape)}; expected B x C x H x W.")
            if x.shape[0] == 0:
                raise InputError("x holds 0 images; expected a batch of at least one (B x C x H x W).")
        return super().forward(*input, params=params, data_keys=data_keys)

    def __repr__(self) -> str:
        size = f"grid={self.sizes}" if self.by_grid else f"cell={self.sizes}"
        return (f"PatchMixing({size}, ratio={self.ratio}, p={self.p_mix}, soft={self.soft}, "
                f"label_smoothing={self.label_smoothing}, lam={self.lam!r})")
