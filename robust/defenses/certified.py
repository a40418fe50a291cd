"""Certified robust accuracy as an evaluation: the curve of PatchCleanser's certified accuracy around a model against
the patch's area, so that boards, the CLI and ``robust.testing`` show it like any other curve."""

from __future__ import annotations

from typing import ClassVar

import torch

from robust.checks import InputError, check_number, check_positive_int
from robust.defenses.patchcleanser import PatchCleanser
from robust.evaluations.base import Evaluation, Params, Sweep, check_fractions
from robust.models.backbone import Backbone
from robust.registry import register_evaluation


@register_evaluation
class CertifiedAccuracy(Evaluation):
    """Certified robust accuracy of PatchCleanser around the model, against the patch's area: the share of images
    whose true label no square patch of that area, at any place, can change.

    Per area, PatchCleanser with ``k`` masks per axis is built around the model's undefended network
    (``Backbone.undefended``: a defended model is certified as its defence would be at each area) and every image is
    certified for its true label (K^2 two-mask predictions per image). Deterministic: one seed is enough.

    Args:
        areas: the patch areas, fractions of the image in (0, 1).
        k: masks per axis of each area's mask set.
        fill: the value the masks write.
        seeds: seeds (the measure draws nothing; more only repeat it).

    Raises:
        InputError: an area outside (0, 1), or an area and k whose masks do not fit the model's images.

    Examples:
        >>> from robust.data import load_dataset
        >>> from robust.defenses.certified import CertifiedAccuracy
        >>> from robust.models import load_model
        >>> curve = CertifiedAccuracy(areas=[0.01, 0.02], k=3)(load_model("zoo:digits-m/resnet", "cpu"),
        ...                                                    load_dataset("digits-m", "test"), samples=8)
        >>> curve.x, curve.n, curve.ylabel
        ([0.01, 0.02], 8, 'certified accuracy')
    """

    name: ClassVar[str] = "certified"
    description: ClassVar[str] = ("PatchCleanser's certified robust accuracy around the model, against the patch's "
                                  "area (any place)")
    xlabel: ClassVar[str] = "patch area"
    ylabel: ClassVar[str] = "certified accuracy"
    chance: ClassVar[str | None] = "uniform"  # a constant model is certified for its class: 1 / classes of the images
    note: ClassVar[str | None] = ("certified accuracy: the share of images whose true label no patch of that area, at "
                                  "any place, can change under PatchCleanser with k x k masks (a lower bound on the "
                                  "defended model's robust accuracy against every patch attack of that size)")

    def __init__(self, *, areas: object = (0.01, 0.02, 0.05), k: int = 3, fill: float = 0.5, seeds: int = 1):
        super().__init__(seeds=seeds)
        self.areas = check_fractions(areas, "areas")
        if not all(0 < a < 1 for a in self.areas):
            raise InputError(f"areas={list(self.areas)!r} is not valid; expected patch areas in (0, 1).")
        self.k = check_positive_int(k, "k")
        self.fill = check_number(fill, "fill", low=0, high=1)
        self._defences: list[PatchCleanser] = []

    def plan(self, model: Backbone) -> Sweep:
        self._defences = [PatchCleanser(model.undefended, area=a, k=self.k, fill=self.fill) for a in self.areas]
        return Sweep(model, list(range(len(self.areas))), list(self.areas),
                     {"areas": list(self.areas), "k": self.k, "fill": self.fill,
                      "patch_sides": [d.patch for d in self._defences]})

    def parameters(self, sweep: Sweep, images: torch.Tensor, y: torch.Tensor, knob: float, draws: object,
                   context: object) -> Params:
        return {"defence": self._defences[int(knob)]}

    def measure(self, sweep: Sweep, images: torch.Tensor, y: torch.Tensor, params: Params
                ) -> tuple[torch.Tensor, torch.Tensor]:
        return params["defence"].certify(images, y), torch.ones_like(y, dtype=torch.bool)


__all__ = ["CertifiedAccuracy"]
