"""Control patches at the same windows as the real attacks: an attack that cannot beat these is not an attack."""

from __future__ import annotations

import torch

from robust.attacks.base import AttackResult, PatchAttack
from robust.models.backbone import Backbone
from robust.placement import crop, paste, random_boxes


class NoisePatch(PatchAttack):
    """A uniform-noise patch per image (drawn from the attack's generator)."""

    name = "noise-patch"

    def run(self, model: Backbone, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> AttackResult:
        boxes = self.locate(model, x)
        side = self.side(x)
        patch = torch.rand(x.shape[0], x.shape[1], side, side, generator=self.generator).to(x.device, x.dtype)
        return AttackResult(paste(x, patch, boxes, self.mask(side, x.device)), target, boxes)


class NaturalPatch(PatchAttack):
    """A natural patch: a crop of another image of the batch (the next one; itself when alone), taken at a
    random box of the same size."""

    name = "natural-patch"

    def run(self, model: Backbone, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> AttackResult:
        boxes = self.locate(model, x)
        side = self.side(x)
        src = random_boxes(x.shape[0], tuple(x.shape[-2:]), side, self.generator, device=x.device)
        patch = crop(x.roll(1, 0), src)
        return AttackResult(paste(x, patch, boxes, self.mask(side, x.device)), target, boxes,
                            extra={"source_boxes": src})
