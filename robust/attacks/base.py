"""The attack interface: ``attack(model, x, y, target=None) -> AttackResult``, plus shared pieces.

Every attack validates its input the same way, samples targets in one vectorised draw from its own seeded
generator, runs with the model in eval mode (each module's training flag restored afterwards) and never
changes parameters, buffers or ``requires_grad``: gradients are taken with ``torch.autograd.grad`` with respect
to inputs or patches only.
"""

from __future__ import annotations

import abc
import dataclasses

import torch

from robust.cam import cam
from robust.checks import check_images, check_labels, check_number, check_positive_int, check_seed
from robust.data.base import ImageSet
from robust.device import PRECISIONS, autocast
from robust.models.backbone import Backbone
from robust.models.state import eval_mode
from robust.placement import fixed_boxes, patch_side, random_boxes, shape_mask, windows

TARGET_MODES = ("random", "least-likely")
PLACEMENTS = ("gradcam", "gradcam-min", "random", "center", "corner")


@dataclasses.dataclass
class AttackResult:
    """Adversarial images and what produced them: the patch boxes (N x 4) and targets (N), when any."""

    x_adv: torch.Tensor
    target: torch.Tensor | None = None
    boxes: torch.Tensor | None = None
    extra: dict = dataclasses.field(default_factory=dict)


def sample_targets(y: torch.Tensor, num_classes: int, mode: str | int, generator: torch.Generator,
                   clean_logits: torch.Tensor | None = None) -> torch.Tensor:
    """Targets for labels ``y``: ``random`` (uniform over the other classes, never y), ``least-likely`` (the
    clean model's least likely class) or a fixed class index (samples of that class are left out of TCS only,
    and counted as skipped)."""
    if num_classes < 2:
        raise ValueError(f"num_classes={num_classes!r} is not valid for a targeted attack; expected >= 2.")
    if mode == "random":
        shift = torch.randint(1, num_classes, y.shape, generator=generator, device=generator.device)
        return (y + shift.to(y.device)) % num_classes
    if mode == "least-likely":
        if clean_logits is None:
            raise ValueError("target='least-likely' needs the clean logits.")
        return clean_logits.argmin(1)
    if isinstance(mode, int) and not isinstance(mode, bool):
        if not 0 <= mode < num_classes:
            raise ValueError(f"target={mode!r} is not valid; expected a class in [0, {num_classes - 1}].")
        return torch.full_like(y, mode)
    raise ValueError(f"target={mode!r} is not valid; expected one of {TARGET_MODES} or a class index.")


def check_training(victims: Backbone | list[Backbone], data: ImageSet, name: str = "victims") -> list[Backbone]:
    """The victims of a trained attack as a list, checked against its training set (in memory, same classes)."""
    victims = [victims] if isinstance(victims, Backbone) else list(victims)
    if not victims or not all(isinstance(m, Backbone) for m in victims):
        raise TypeError(f"{name} must be a Backbone or a non-empty list of Backbones.")
    if not isinstance(data, ImageSet) or len(data) == 0:
        raise TypeError("data must be a non-empty in-memory ImageSet (e.g. load_dataset('digits-m', 'train')).")
    if bad := [m.name for m in victims if m.num_classes != data.num_classes]:
        raise ValueError(f"{name} {bad} do not have the data's {data.num_classes} classes.")
    return victims


class Attack(abc.ABC):
    """Base class. Subclasses set ``name`` and ``targeted`` and implement ``run(model, x, y, target)``.

    Options shared by every attack: ``target`` (how targets are drawn), ``seed``, ``precision`` (``fp32``,
    ``bf16``, ``fp16``: the autocast of the attack's forward passes, see ``robust.device.autocast``) and
    ``channels_last`` (the memory format of the images handed to the model; a layout hint for GPUs, harmless
    on CPUs)."""

    name = "attack"
    targeted = False

    def __init__(self, *, target: str | int = "random", seed: int = 0, precision: str = "fp32",
                 channels_last: bool = False):
        if precision not in PRECISIONS:
            raise ValueError(f"precision={precision!r} is not valid; expected one of {PRECISIONS}.")
        if not isinstance(channels_last, bool):
            raise ValueError(f"channels_last={channels_last!r} is not valid; expected true or false.")
        self.precision, self.channels_last = precision, channels_last
        seed = check_seed(seed)
        if not (target in TARGET_MODES or (isinstance(target, int) and not isinstance(target, bool))):
            raise ValueError(f"target={target!r} is not valid; expected one of {TARGET_MODES} or a class index.")
        self.target_mode = target
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, model: Backbone, x: torch.Tensor, y: torch.Tensor,
                 target: torch.Tensor | None = None) -> AttackResult:
        if not isinstance(model, Backbone):
            raise TypeError(f"model must be a robust Backbone (see load_model), got {type(model).__name__}.")
        check_images(x)
        if x.shape[0] == 0:
            raise ValueError("x is an empty batch; expected at least one image.")
        check_labels(y, model.num_classes, n=x.shape[0])
        if target is not None:
            check_labels(target, model.num_classes, n=x.shape[0], name="target")
        x, y = x.to(model.device), y.to(model.device)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with eval_mode(model), autocast(model.device, self.precision):
            if self.targeted and target is None:
                logits = None
                if self.target_mode == "least-likely":
                    with torch.no_grad():
                        logits = model.logits(x)
                target = sample_targets(y, model.num_classes, self.target_mode, self.generator, logits)
            target = target.to(model.device) if target is not None else None
            return self.run(model, x, y, target)

    @abc.abstractmethod
    def run(self, model: Backbone, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> AttackResult:
        """The attack proper, on validated input, with the model in eval mode and targets drawn."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(seed={self.seed}, target={self.target_mode!r})"


class PatchAttack(Attack):
    """A patch attack: a patch of ``area`` (fraction of the image) and ``shape``, placed at ``placement``
    windows (Grad-CAM arg-max of the predicted class by default, computed with ``stride``)."""

    def __init__(self, *, area: float = 0.08, placement: str = "gradcam", shape: str = "square", stride: int = 1,
                 **options: object):
        super().__init__(**options)
        if placement not in PLACEMENTS:
            raise ValueError(f"placement={placement!r} is not valid; expected one of {PLACEMENTS}.")
        check_number(area, "area", low=0, high=1, low_open=True, high_open=True,
                     expected="a fraction of the image area in (0, 1)")
        shape_mask(shape, 1)  # validates the shape name
        check_positive_int(stride, "stride")
        self.area, self.placement, self.shape, self.stride = float(area), placement, shape, stride

    def side(self, x: torch.Tensor) -> int:
        return patch_side(self.area, tuple(x.shape[-2:]))

    def mask(self, side: int, device: torch.device) -> torch.Tensor:
        return shape_mask(self.shape, side, device)

    def locate(self, model: Backbone, x: torch.Tensor) -> torch.Tensor:
        """Boxes for ``x`` under this attack's placement rule."""
        side, hw, n = self.side(x), tuple(x.shape[-2:]), x.shape[0]
        if self.placement in ("gradcam", "gradcam-min"):
            saliency = cam(model, x)  # the predicted class, per the protocol
            return windows(saliency, side, stride=self.stride, mode="max" if self.placement == "gradcam" else "min")
        if self.placement == "random":
            return random_boxes(n, hw, side, self.generator, device=x.device)
        return fixed_boxes(n, hw, side, "center" if self.placement == "center" else "top-left", device=x.device)
