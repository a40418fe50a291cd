"""Control patches at the same windows as the real attacks: an attack that cannot beat these is not an attack.

With ``targeted=True`` a control draws targets like a targeted attack does, so its TCS (the chance that the
patch happens to produce the target) can be read beside a real attack's."""

from __future__ import annotations

import torch

from robust.attacks.base import AttackResult, PatchAttack
from robust.models.backbone import Backbone
from robust.placement import crop, paste, random_boxes
from robust.registry import register_attack


class _Control(PatchAttack):
    def __init__(self, *, targeted: bool = False, **patch_params):
        super().__init__(**patch_params)
        self.targeted = bool(targeted)


@register_attack
class NoisePatch(_Control):
    """A uniform-noise patch per image (drawn from the attack's generator)."""

    name = "noise-patch"
    description = "Control: a uniform-noise patch at the attack's window"

    def run(self, model: Backbone, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> AttackResult:
        boxes = self.locate(model, x)
        side = self.side(x)
        patch = torch.rand(x.shape[0], x.shape[1], side, side, generator=self.generator).to(x.device, x.dtype)
        return AttackResult(paste(x, patch, boxes, self.mask(side, x.device)), target, boxes)


@register_attack
class NaturalPatch(_Control):
    """A natural patch: a crop of another image of the batch (the next one; itself when alone), taken at a
    random box of the same size."""

    name = "natural-patch"
    description = "Control: a crop of another image at the attack's window"

    def run(self, model: Backbone, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> AttackResult:
        boxes = self.locate(model, x)
        side = self.side(x)
        src = random_boxes(x.shape[0], tuple(x.shape[-2:]), side, self.generator, device=x.device)
        patch = crop(x.roll(1, 0), src)
        return AttackResult(paste(x, patch, boxes, self.mask(side, x.device)), target, boxes,
                            extra={"source_boxes": src})
