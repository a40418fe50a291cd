"""Patch selectivity (protocols section 4): the patch-mixing attack, a fraction r of the grid's cells replaced by
the same cells of a donor image of another class (drawn from the whole evaluated set).

- ``patch-mixing``: accuracy against the original label: the selectivity curve;
- ``selectivity``: on those mixed images, the fraction of the model's positive saliency for the original class that
  lies in the donor's cells (Grad-CAM, or a contrastive RISE map); lower is more selective.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch

from robust.cam import cam, rise
from robust.checks import check_choice, check_positive_int
from robust.draws import Draws
from robust.evaluations.base import Evaluation, Params, Sweep, check_fractions, check_grid, grid_of
from robust.grid import cell_mask, cell_sums, random_cells
from robust.models.backbone import Backbone
from robust.registry import register_evaluation

SALIENCY = ("gradcam", "rise")


@register_evaluation
class PatchMixingCurve(Evaluation):
    """Accuracy with a fraction of cells taken from an image of another class (the selectivity curve).

    The patch-mixing attack of protocols section 4: for each ratio r, ``round(r * cells)`` random cells of each image
    (Python's ``round``: a half goes to the even count) are replaced by the same cells of a donor of another class,
    drawn per image from the whole evaluated split; images with no such donor are left out of the counts. The curve's
    x is the fraction actually mixed; its value is the accuracy against the original label.

    Args:
        grid: cells per side (default ``robust.grid.default_grid`` of the model's input size); it must divide the
            image.
        ratios: the fractions r of cells to mix, each in [0, 1].
        **common: the options of every evaluation (``Evaluation``: ``seeds``).

    Shape:
        As ``Evaluation``: calling it on a model and data gives a ``Curve`` with one point per ratio.

    Examples:
        >>> from robust import load_dataset, load_model
        >>> from robust.evaluations.mixing import PatchMixingCurve
        >>> PatchMixingCurve(ratios=[0.0, 0.5]).ratios
        [0.0, 0.5]
        >>> curve = PatchMixingCurve(grid=4, ratios=[0.0, 0.3], seeds=1)(load_model("zoo:digits-m/resnet", "cpu"),
        ...                                                             load_dataset("digits-m"), samples=16)
        >>> curve.x, curve.n, curve.params
        ([0.0, 0.3125], 16, {'grid': 4, 'seed': 0})
    """

    name = "patch-mixing"
    xlabel, ylabel, chance, uses_pool = "fraction of cells from another class", "accuracy", "uniform", True

    def __init__(self, *, grid: int | None = None, ratios: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5),
                 **common: int):
        super().__init__(**common)
        self.grid, self.ratios = check_grid(grid), check_fractions(ratios, "ratios")

    def record(self, grid: int) -> dict:
        """The options written on the curve."""
        return {"grid": grid}

    def plan(self, model: Backbone) -> Sweep:
        grid, rows, cols = grid_of(model, self.grid)
        mixed = [round(r * rows * cols) / (rows * cols) for r in self.ratios]
        return Sweep(model, self.ratios, mixed, self.record(grid), rows, cols)

    def parameters(self, sweep: Sweep, images: torch.Tensor, y: torch.Tensor, knob: float, draws: Draws,
                   context: object) -> Params:
        """The donor of each image (its index in the pool, its image, whether one exists) and the cells it gives."""
        donor, valid = draws.other_class("donor", y)
        cells = random_cells(draws.uniform("cells", sweep.rows * sweep.cols), sweep.rows, sweep.cols,
                             round(knob * sweep.rows * sweep.cols))
        return {"donor": donor, "donor_images": draws.pool.images(donor, images.device).to(images.dtype),
                "cells": cells, "valid": valid}

    def seed_free(self, sweep: Sweep, knob: float) -> bool:
        """No cell mixed: the clean images under any seed (whether a donor exists does not depend on the draw)."""
        return round(knob * sweep.rows * sweep.cols) == 0

    def mixed(self, images: torch.Tensor, params: Params) -> torch.Tensor:
        """The images with the donor's cells in them."""
        return torch.where(cell_mask(params["cells"], tuple(images.shape[-2:])), params["donor_images"], images)

    def measure(self, sweep: Sweep, images: torch.Tensor, y: torch.Tensor, params: Params
                ) -> tuple[torch.Tensor, torch.Tensor]:
        return sweep.model.logits(self.mixed(images, params)).argmax(1) == y, params["valid"]


@register_evaluation
class Selectivity(PatchMixingCurve):
    """Share of the original class's Grad-CAM mass in the donor's cells of patch-mixed images (lower is more
    selective).

    On the patch-mixing images (``PatchMixingCurve``'s cells and donors), the fraction of the positive saliency for
    the original class that falls in the donor's cells. ``saliency``: ``gradcam`` (the raw Grad-CAM of the original
    class), or ``rise`` (RISE of the original class minus RISE of the donor's class, positive part, with ``masks``
    random masks: the variant ``selectivity-rise``). Images whose map is all zero, or with no donor, are left out of
    the counts. The share describes the map more than the model: the patch-mixing curve is the selectivity measure
    (see the ``note`` printed under its boards).

    Args:
        grid: cells per side (default ``robust.grid.default_grid`` of the model's input size); it must divide the
            image.
        ratios: the fractions r of cells to mix, each in [0, 1].
        saliency: ``gradcam`` or ``rise`` (see ``SALIENCY``).
        masks: RISE's random masks per image (used only with ``saliency="rise"``).
        **common: the options of every evaluation (``Evaluation``: ``seeds``).

    Shape:
        As ``Evaluation``: calling it on a model and data gives a ``Curve`` with one point per ratio, each in [0, 1].

    Examples:
        >>> from robust import load_dataset, load_model
        >>> from robust.evaluations.mixing import Selectivity
        >>> Selectivity(saliency="rise").curve_name
        'selectivity-rise'
        >>> curve = Selectivity(ratios=[0.25, 0.5], seeds=1)(load_model("zoo:digits-m/resnet", "cpu"),
        ...                                                  load_dataset("digits-m"), samples=8)
        >>> curve.x, curve.params
        ([0.25, 0.5], {'grid': 8, 'saliency': 'gradcam', 'seed': 0})
    """

    name = "selectivity"
    ylabel, higher_is_better, chance = "out-of-context saliency share", False, "diagonal"
    note = ("This share says what the saliency map shows, not how selective the model is: read the patch-mixing curve "
            "as the selectivity measure (at 224 px the share did not separate a model from its Patch-Mixing twin where "
            "the patch-mixing curve did: docs/reports/2026-11-26-selectivity-224.md).")
    variants: ClassVar[dict[str, tuple[dict, str]]] = {"selectivity-rise": (
        {"saliency": "rise"}, "Share of the contrastive RISE saliency in the donor's cells of patch-mixed images "
        "(lower is more selective)")}

    def __init__(self, *, grid: int | None = None, ratios: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5),
                 saliency: str = "gradcam", masks: int = 64, **common: int):
        super().__init__(grid=grid, ratios=ratios, **common)
        self.saliency = check_choice(saliency, SALIENCY, "saliency")
        self.masks = check_positive_int(masks, "masks")

    def record(self, grid: int) -> dict:
        return {"grid": grid, "saliency": self.saliency, **({"masks": self.masks} if self.saliency == "rise" else {})}

    def parameters(self, sweep: Sweep, images: torch.Tensor, y: torch.Tensor, knob: float, draws: Draws,
                   context: object) -> Params:
        """The donors and cells of patch mixing; for RISE, each image's class and its donor's, and the masks' seed."""
        params = super().parameters(sweep, images, y, knob, draws, context)
        if self.saliency != "rise":
            return params
        classes = draws.pool.by_class(y.device)[0][params["donor"]]
        return {**params, "classes": torch.stack([y, classes], 1), "seed": draws.seed}

    def seed_free(self, sweep: Sweep, knob: float) -> bool:
        """No cell mixed and a Grad-CAM map (RISE's masks are drawn per seed, and which maps are all zero with them)."""
        return self.saliency == "gradcam" and super().seed_free(sweep, knob)

    def measure(self, sweep: Sweep, images: torch.Tensor, y: torch.Tensor, params: Params
                ) -> tuple[torch.Tensor, torch.Tensor]:
        mixed = self.mixed(images, params)
        if self.saliency == "gradcam":
            with torch.enable_grad():
                maps = cam(sweep.model, mixed, y, normalize=False)
        else:
            both = rise(sweep.model, mixed, params["classes"], params["seed"], masks=self.masks)
            maps = (both[:, 0] - both[:, 1]).clamp_min(0)
        mass = cell_sums(maps, sweep.rows, sweep.cols)
        share = (mass * params["cells"]).flatten(1).sum(1) / mass.flatten(1).sum(1).clamp_min(1e-12)
        return share, params["valid"] & (mass.flatten(1).sum(1) > 0)


__all__ = ["SALIENCY", "PatchMixingCurve", "Selectivity"]
