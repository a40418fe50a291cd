"""Occlusion robustness (protocols section 4): accuracy with cells of the image dropped or shuffled, in [0, 1]
pixel space before normalisation.

- ``patch-drop``: a fraction of the grid's cells dropped (``order`` random, or ranked by Grad-CAM mass: ``salient``
  drops the most salient cells first, ``non-salient`` the least), filled with 0, the model's mean colour, noise or
  a constant; accuracy against the fraction dropped (Naseer et al.'s information loss);
- ``patch-shuffle``: accuracy with each image's cells permuted, for several grids.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import torch

from robust.cam import cam
from robust.checks import InputError, check_choice
from robust.draws import Draws
from robust.evaluations.base import Evaluation, Params, Sweep, check_fractions, check_grid, correct, grid_of
from robust.grid import cell_mask, cell_sums, default_grid, grid_shape, random_cells, shuffle_cells, top_cells
from robust.models.backbone import Backbone
from robust.registry import register_evaluation

FILLS = ("zero", "mean", "noise")
ORDERS = ("random", "salient", "non-salient")


@register_evaluation
class PatchDrop(Evaluation):
    """Accuracy with a fraction of the grid's cells dropped at random.

    Each level is rounded down to whole cells (k * G^2 // 10 for level k / 10, as in Naseer et al.'s information
    loss; the curve's x is the fraction actually dropped). The cells are chosen at random per image, or ranked by the
    Grad-CAM mass of the predicted class on the clean image (``order``: ``salient`` first, the variant
    ``salient-drop``, or ``non-salient`` first, ``non-salient-drop``; one Grad-CAM per batch). Dropped pixels are
    filled in [0, 1] pixel space, before the model's normalisation.

    Args:
        grid: cells per side (default ``robust.grid.default_grid`` of the model's input size); it must divide the
            image.
        levels: the fractions of cells to drop, each in [0, 1] (default 0, 0.1, ..., 0.9).
        order: ``random``, ``salient`` or ``non-salient`` (see ``ORDERS``).
        fill: what a dropped cell holds: ``zero``, ``mean`` (the model's mean colour), ``noise`` (uniform, drawn per
            image) or a value in [0, 1].
        **common: the options of every evaluation (``Evaluation``: ``seeds``).

    Shape:
        As ``Evaluation``: calling it on a model and data gives a ``Curve`` with one point per level.

    Examples:
        >>> from robust import load_dataset, load_model
        >>> from robust.evaluations.occlusion import PatchDrop
        >>> PatchDrop(levels=[0.0, 0.5], order="salient").curve_name
        'salient-drop'
        >>> model, data = load_model("zoo:digits-m/resnet", "cpu"), load_dataset("digits-m")
        >>> curve = PatchDrop(grid=4, levels=[0.0, 0.33], fill="mean", seeds=1)(model, data, samples=8)
        >>> curve.x, curve.params
        ([0.0, 0.3125], {'grid': 4, 'order': 'random', 'fill': 'mean', 'seed': 0})
    """

    name = "patch-drop"
    xlabel, ylabel, chance = "fraction of cells dropped", "accuracy", "uniform"
    variants: ClassVar[dict[str, tuple[dict, str]]] = {
        "salient-drop": ({"order": "salient"}, "Accuracy with the most salient cells (Grad-CAM) dropped first"),
        "non-salient-drop": ({"order": "non-salient"},
                             "Accuracy with the least salient cells (Grad-CAM) dropped first")}

    def __init__(self, *, grid: int | None = None, levels: Sequence[float] | None = None, order: str = "random",
                 fill: str | float = "zero", **common: int):
        super().__init__(**common)
        self.grid = check_grid(grid)
        self.levels = check_fractions([k / 10 for k in range(10)] if levels is None else levels, "levels")
        self.order = check_choice(order, ORDERS, "order")
        if not (fill in FILLS or (isinstance(fill, (int, float)) and not isinstance(fill, (bool, str))
                                  and 0 <= fill <= 1)):
            raise InputError(f"fill={fill!r} is not valid; expected one of {FILLS} or a value in [0, 1].")
        self.fill = fill

    def plan(self, model: Backbone) -> Sweep:
        grid, rows, cols = grid_of(model, self.grid)
        dropped = [math.floor(v * rows * cols + 1e-9) / (rows * cols) for v in self.levels]
        return Sweep(model, self.levels, dropped, {"grid": grid, "order": self.order, "fill": self.fill}, rows, cols)

    def prepare(self, sweep: Sweep, images: torch.Tensor, y: torch.Tensor) -> torch.Tensor | None:
        """One Grad-CAM per batch, shared by every level and seed (none for random order)."""
        if self.order == "random":
            return None
        return cell_sums(cam(sweep.model, images, normalize=False), sweep.rows, sweep.cols)

    def parameters(self, sweep: Sweep, images: torch.Tensor, y: torch.Tensor, knob: float, draws: Draws,
                   context: object) -> Params:
        cells_total = sweep.rows * sweep.cols
        count = math.floor(knob * cells_total + 1e-9)
        if context is None:
            cells = random_cells(draws.uniform("cells", cells_total), sweep.rows, sweep.cols, count)
        else:
            cells = top_cells(context, count, largest=self.order == "salient")  # type: ignore[arg-type]
        if self.fill == "mean":
            fill = torch.tensor(sweep.model.mean, device=images.device, dtype=images.dtype)[None, :, None, None]
        elif self.fill == "noise":
            fill = draws.uniform("fill", *images.shape[1:]).to(images.dtype)
        else:  # zero, or a constant
            fill = torch.full((), 0.0 if self.fill == "zero" else float(self.fill), device=images.device,
                              dtype=images.dtype)
        return {"cells": cells, "fill": fill}

    def seed_free(self, sweep: Sweep, knob: float) -> bool:
        """No cell dropped, or cells chosen by saliency and filled with no noise: the same images under any seed."""
        nothing = math.floor(knob * sweep.rows * sweep.cols + 1e-9) == 0
        return nothing or (self.order != "random" and self.fill != "noise")

    def measure(self, sweep: Sweep, images: torch.Tensor, y: torch.Tensor, params: Params
                ) -> tuple[torch.Tensor, torch.Tensor]:
        dropped = torch.where(cell_mask(params["cells"], tuple(images.shape[-2:])), params["fill"], images)
        return correct(sweep.model, dropped, y)


@register_evaluation
class PatchShuffle(Evaluation):
    """Accuracy with each image's grid cells randomly permuted.

    One point per grid of ``grids``, a permutation drawn per image; grid 1 is the clean image. Each grid must divide
    the model's input.

    Args:
        grids: the grids, in cells per side (default: 1, 2, 4 and ``robust.grid.default_grid`` of the model's input
            size, without repeats).
        **common: the options of every evaluation (``Evaluation``: ``seeds``).

    Shape:
        As ``Evaluation``: calling it on a model and data gives a ``Curve`` with one point per grid.

    Examples:
        >>> from robust import load_dataset, load_model
        >>> from robust.evaluations.occlusion import PatchShuffle
        >>> PatchShuffle(grids=[1, 4]).grids
        [1, 4]
        >>> curve = PatchShuffle(seeds=1)(load_model("zoo:digits-m/resnet", "cpu"), load_dataset("digits-m"), samples=8)
        >>> curve.x
        [1.0, 2.0, 4.0, 8.0]
    """

    name = "patch-shuffle"
    xlabel, ylabel, chance = "cells per side", "accuracy", "uniform"

    def __init__(self, *, grids: Sequence[int] | None = None, **common: int):
        super().__init__(**common)
        if grids is not None and (not isinstance(grids, (list, tuple)) or not grids or not all(
                isinstance(g, int) and not isinstance(g, bool) and g >= 1 for g in grids)):
            raise InputError(f"grids={grids!r} is not valid; expected a list of positive integers.")
        self.grids = None if grids is None else list(grids)

    def plan(self, model: Backbone) -> Sweep:
        hw = tuple(model.input_size[-2:])
        grids = self.grids if self.grids is not None else sorted({1, 2, 4, default_grid(hw)})
        for g in grids:
            grid_shape(g, hw, "grids")
        return Sweep(model, [float(g) for g in grids], [float(g) for g in grids], {"grids": grids})

    def parameters(self, sweep: Sweep, images: torch.Tensor, y: torch.Tensor, knob: float, draws: Draws,
                   context: object) -> Params:
        return {"order": draws.uniform("order", int(knob) ** 2)}

    def seed_free(self, sweep: Sweep, knob: float) -> bool:
        """Grid 1: one cell, nothing to permute."""
        return knob == 1

    def measure(self, sweep: Sweep, images: torch.Tensor, y: torch.Tensor, params: Params
                ) -> tuple[torch.Tensor, torch.Tensor]:
        side = math.isqrt(params["order"].shape[1])
        return correct(sweep.model, shuffle_cells(images, side, side, params["order"]), y)


__all__ = ["FILLS", "ORDERS", "PatchDrop", "PatchShuffle"]
