"""Universal adversarial patch (Brown et al. 2017): one patch per target class, shared by every image, trained
with expectation over transformation (random location, scale, rotation; kornia warps) on one or more victims.

At attack time the patch of each sample's target class is pasted at the sample's window, at its nominal size.
``save`` writes the patches as safetensors and the configuration as JSON beside them; ``load`` checks both.
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from rich.progress import track

from robust.attacks.base import AttackResult, bounded, optimizer_step, sample_targets
from robust.attacks.trained import TrainedPatchAttack
from robust.checks import InputError, check_number, check_positive_int
from robust.data.base import ImageSet
from robust.device import to_device
from robust.draws import Draws
from robust.models.backbone import Backbone
from robust.models.state import eval_mode, preserved_grads
from robust.placement import paste, random_boxes
from robust.registry import register_attack


@register_attack
class UniversalPatch(TrainedPatchAttack):
    """Targeted universal patches (Brown et al. 2017): one patch per target class, shared by every image.

    ``fit`` before use (or ``load`` trained ones): it trains the patches with Adam against the victims' mean
    cross-entropy, under expectation over transformation (each draw pasted at a random location, then scaled and
    rotated about its centre with kornia). At attack time the patch of each sample's target class is pasted at the
    sample's window, at its nominal size (within ``bound`` of the window it replaces).

    Args:
        scale: (low, high), 0 < low <= high: the range of the training's random scale factor.
        rotation: the training's random rotation, uniform in [-rotation, rotation] degrees (0 to 180).
        **patch_params: the options of every patch attack (``PatchAttack``: ``area``, ``placement``, ``shape``,
            ``stride``, ``bound``; and ``Attack``'s: ``target``, ``seed``, ``precision``,
            ``channels_last``, ``adaptive``).
            ``area`` and ``shape`` define the trained patches: ``load`` refuses an override that changes them.

    Shape:
        As ``Attack``; the trained ``patches`` are K x 3 x p x p (K classes), or K' x 3 x p x p for the K'
        classes of the target protocol it was trained for (``protocol_classes``).

    Examples:
        >>> import torch
        >>> from robust.attacks.artifacts import resolve_checkpoint
        >>> from robust.attacks.universal import UniversalPatch
        >>> from robust.models import load_model
        >>> patches = UniversalPatch.load(resolve_checkpoint("zoo:digits-m/resnet/universal-patch-12pct"),
        ...                               placement="center")
        >>> tuple(patches.patches.shape), patches.scale, patches.rotation
        ((10, 3, 11, 11), (0.3, 1.5), 22.5)
        >>> result = patches(load_model("zoo:digits-m/resnet", "cpu"), torch.rand(2, 3, 32, 32), torch.tensor([3, 5]),
        ...                  target=torch.tensor([0, 1]))
        >>> result.target, result.boxes.tolist()
        (tensor([0, 1]), [[10, 10, 11, 11], [10, 10, 11, 11]])
    """

    name = "universal-patch"
    description = "Universal patch per target class (EOT-trained, shared by every image)"
    targeted = True
    training_params = frozenset({"scale", "rotation"})

    def __init__(self, *, scale: tuple[float, float] = (0.3, 1.5), rotation: float = 22.5, **patch_params: object):
        super().__init__(**patch_params)
        pair = isinstance(scale, (tuple, list)) and len(scale) == 2
        lo, hi = scale if pair else (None, None)
        if not pair or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                               for v in scale) or not 0 < lo <= hi:
            raise InputError(f"scale={scale!r} is not valid; expected (low, high) with 0 < low <= high.")
        check_number(rotation, "rotation", low=0, high=180, expected="degrees in [0, 180]")
        self.scale, self.rotation = (float(lo), float(hi)), float(rotation)
        self.patches: torch.Tensor | None = None  # K x C x p x p, or K' x C x p x p for a protocol's K' classes

    def state(self) -> dict[str, torch.Tensor] | None:
        return None if self.patches is None else {"patches": self.patches}

    def set_state(self, state: dict[str, torch.Tensor], where: str) -> None:
        side = self.side_for(self.image_size)
        classes = self.protocol_classes()
        want = (self.num_classes if classes is None else len(classes), self.image_size[0], side, side)
        patches = state.get("patches")
        if set(state) != {"patches"} or tuple(patches.shape) != want or not patches.is_floating_point():
            found = {k: tuple(v.shape) for k, v in state.items()}
            raise InputError(f"universal-patch {where} holds {found}; expected one float 'patches' tensor of shape "
                             f"{want} (a file written by UniversalPatch.save()).")
        self.patches = patches

    def _eot(self, x: torch.Tensor, patch: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Paste ``patch`` at random boxes, then scale and rotate it about its centre (one draw per image)."""
        import kornia.geometry.transform as KT

        n, _, h, w = x.shape
        side = patch.shape[-1]
        g = self.generator
        boxes = random_boxes(to_device(torch.rand(n, 2, generator=g), x.device), (h, w), side)
        canvas = paste(torch.zeros_like(x), patch * mask, boxes, check=False)  # premultiplied by the mask
        region = paste(torch.zeros_like(x[:, :1]), mask.expand(n, 1, side, side), boxes, check=False)
        lo, hi = self.scale
        scale = to_device(lo + (hi - lo) * torch.rand(n, generator=g), x.device)
        angle = to_device((torch.rand(n, generator=g) * 2 - 1) * self.rotation, x.device)
        centre = boxes[:, [1, 0]].float() + (side - 1) / 2
        matrix = KT.get_rotation_matrix2d(centre, angle, scale[:, None].expand(n, 2))
        canvas = KT.warp_affine(canvas, matrix, (h, w))
        region = KT.warp_affine(region, matrix, (h, w)).clamp(0, 1)
        return x * (1 - region) + canvas  # both warped by the same linear map: alpha compositing stays exact

    def fit(self, models: Backbone | list[Backbone], data: ImageSet, *, steps: int = 500, batch_size: int = 64,
            lr: float = 0.05, train_samples: int | None = None, progress: bool = False) -> UniversalPatch:
        """Train one patch per class of ``data`` against ``models`` (their mean loss) for ``steps`` Adam steps
        (on the first ``train_samples`` images when given). With a target protocol (``target`` a named set such as
        ``n8``, or one class index) only that protocol's classes get a patch, and training draws its targets from
        them: 8 patches for N8 rather than 1,000 for an ImageNet model."""
        check_positive_int(steps, "steps")
        check_positive_int(batch_size, "batch_size")
        check_number(lr, "lr", low=0, low_open=True, expected="a positive, finite number")
        models, data = self._begin_fit(models, data, train_samples, {
            "steps": steps, "batch_size": batch_size, "lr": lr,
            **({"train_samples": train_samples} if train_samples is not None else {})})
        k = data.num_classes
        device = models[0].device
        side = self.side_for(data.image_size)
        mask = self.mask(side, device)
        classes = self.protocol_classes()
        rows = k if classes is None else len(classes)
        patches = to_device(torch.rand(rows, 3, side, side, generator=self.generator), device).requires_grad_(True)
        opt = torch.optim.Adam([patches], lr=lr)
        with contextlib.ExitStack() as stack, torch.enable_grad():
            for m in models:
                stack.enter_context(eval_mode(m))
                stack.enter_context(preserved_grads(m))
            for _ in track(range(steps), description=f"fit {self.name}", disable=not progress):
                idx = torch.randint(len(data), (batch_size,), generator=self.generator)
                x, y = data.batch(idx, device)
                t = sample_targets(y, k, self.trained_target(), self.generator)
                x_adv = self._eot(x, patches[self.class_rows(t)], mask)
                loss = sum(F.cross_entropy(m.logits(x_adv), t) for m in models) / len(models)
                optimizer_step(loss, [patches], opt)
                with torch.no_grad():
                    patches.clamp_(0, 1)
        self.patches = patches.detach()
        return self

    def run(self, model: Backbone, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
            draws: Draws) -> AttackResult:
        if self.patches is None:
            raise InputError("universal-patch has no trained patches; call fit() or UniversalPatch.load() first.")
        if self.num_classes != model.num_classes:
            raise InputError(f"the patches were trained for {self.num_classes} classes; the model has "
                             f"{model.num_classes}.")
        side = self.side(x)
        if side != self.patches.shape[-1]:
            raise InputError(f"the patches are {self.patches.shape[-1]} px; area={self.area} on {tuple(x.shape[-2:])} "
                             f"images needs {side} px.")
        rows = self.class_rows(target, check=True)
        boxes = self.locate(model, x, draws)
        patch = bounded(self.patches.to(x.device)[rows], self.limits(x, boxes))
        return AttackResult(paste(x, patch, boxes, self.mask(side, x.device)), target, boxes)
