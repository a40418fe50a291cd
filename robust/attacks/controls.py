"""Control patches at the same windows as the real attacks: an attack that cannot beat these is not an attack.

A control draws targets like a targeted attack does (``targeted=True``, the default, as in its presets), so its
TCS (the chance that the patch happens to produce the target) can be read beside a real attack's; its ASR is the
untargeted success that occlusion alone reaches. ``targeted=False`` makes ASR its headline."""

from __future__ import annotations

import torch

from robust.attacks.base import AttackResult, PatchAttack, bounded
from robust.draws import Draws
from robust.models.backbone import Backbone
from robust.placement import crop, paste, random_boxes
from robust.registry import register_attack


class _Control(PatchAttack):
    control = True  # boards put its ASR beside the real attacks' (what occlusion alone does)

    def __init__(self, *, targeted: bool = True, **patch_params: object):
        super().__init__(**patch_params)
        self.targeted = bool(targeted)


@register_attack
class NoisePatch(_Control):
    """A uniform-noise patch per image (drawn per image, see ``robust.draws``): a control, at the attack's window.

    Under a ``bound`` < 1 the noise is uniform over what the bound allows around the window it replaces (not
    clipped to the bound's edges). An attack that cannot beat this control is not an attack.

    Args:
        targeted: draw targets like a targeted attack (the default, as in its presets), so that its TCS (the chance
            that the patch happens to produce the target) reads beside a real attack's; False makes ASR (what
            occlusion alone reaches) its headline.
        **patch_params: the options of every patch attack (``PatchAttack``: ``area``, ``placement``, ``shape``,
            ``stride``, ``bound``; and ``Attack``'s: ``target``, ``seed``, ``precision``,
            ``channels_last``, ``adaptive``).

    Shape:
        As ``Attack``: x N x 3 x H x W in [0, 1]; the result holds ``x_adv`` (N x 3 x H x W), the targets (N; None
        when untargeted) and the boxes (N x 4).

    Examples:
        >>> import torch
        >>> from robust.attacks.controls import NoisePatch
        >>> from robust.models import load_model
        >>> model, x, y = load_model("zoo:digits-m/resnet", "cpu"), torch.rand(2, 3, 32, 32), torch.tensor([3, 5])
        >>> result = NoisePatch(area=0.12, placement="center")(model, x, y)
        >>> result.boxes.tolist(), bool((result.target != y).all())
        ([[10, 10, 11, 11], [10, 10, 11, 11]], True)
        >>> result = NoisePatch(area=0.12, placement="center", bound=0.1, targeted=False)(model, x, y)
        >>> float((result.x_adv - x).abs().max()) <= 0.1, result.target
        (True, None)
    """

    name = "noise-patch"
    description = "Control: a uniform-noise patch at the attack's window"

    def run(self, model: Backbone, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
            draws: Draws) -> AttackResult:
        boxes = self.locate(model, x, draws)
        side = self.side(x)
        u = draws.uniform("noise", x.shape[1], side, side).to(x.dtype)
        limits = self.limits(x, boxes)  # bounded: uniform over what the bound allows, not clipped to its edges
        patch = u if limits is None else limits[0] + u * (limits[1] - limits[0])
        return AttackResult(paste(x, patch, boxes, self.mask(side, x.device)), target, boxes)


@register_attack
class NaturalPatch(_Control):
    """A natural patch: a crop of another image of the evaluated split (drawn per image from the whole split, so an
    image's patch does not depend on how many images are evaluated; itself when the split holds one image), taken at
    a random box of the same size.

    A control, pasted at the attack's window: an attack that cannot beat it is not an attack. The split is the
    ``pool`` the attack is called with (by default the batch itself). ``extra`` holds each image's donor
    (``donors``: indices in the pool) and where its crop was taken (``source_boxes``).

    Args:
        targeted: draw targets like a targeted attack (the default, as in its presets), so that its TCS (the chance
            that the patch happens to produce the target) reads beside a real attack's; False makes ASR (what
            occlusion alone reaches) its headline.
        **patch_params: the options of every patch attack (``PatchAttack``: ``area``, ``placement``, ``shape``,
            ``stride``, ``bound``; and ``Attack``'s: ``target``, ``seed``, ``precision``,
            ``channels_last``, ``adaptive``).

    Shape:
        As ``Attack``; ``extra["donors"]``: N; ``extra["source_boxes"]``: N x 4.

    Examples:
        >>> import torch
        >>> from robust.attacks.controls import NaturalPatch
        >>> from robust.models import load_model
        >>> x, y = torch.rand(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
        >>> result = NaturalPatch(area=0.12, placement="center")(load_model("zoo:digits-m/resnet", "cpu"), x, y)
        >>> bool((result.extra["donors"] != torch.arange(4)).all()), tuple(result.extra["source_boxes"].shape)
        (True, (4, 4))
    """

    name = "natural-patch"
    description = "Control: a crop of another image at the attack's window"
    uses_pool = True  # the donor is any image of the evaluated split

    def run(self, model: Backbone, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
            draws: Draws) -> AttackResult:
        boxes = self.locate(model, x, draws)
        side = self.side(x)
        donor = draws.other("donor")
        src = random_boxes(draws.uniform("source-window", 2), tuple(x.shape[-2:]), side)
        patch = bounded(crop(draws.pool.images(donor, x.device).to(x.dtype), src), self.limits(x, boxes))
        return AttackResult(paste(x, patch, boxes, self.mask(side, x.device)), target, boxes,
                            extra={"source_boxes": src, "donors": donor})
