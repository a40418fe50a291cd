"""The attack interface: ``attack(model, x, y, target=None, index=None, pool=None) -> AttackResult``, plus shared
pieces.

Every attack validates its input the same way, draws each image's randomness (its target, noise, window, donor,
random start) from ``robust.draws`` by (seed, the image's index in the evaluated set), so that a figure does not
depend on the batch size; runs with the model in eval mode (each module's training flag restored afterwards) and never
changes parameters, buffers or ``requires_grad``: gradients are taken with ``torch.autograd.grad`` with respect
to inputs or patches only.
"""

from __future__ import annotations

import abc
import dataclasses

import torch
import torch.nn.functional as F

from robust.cam import cam
from robust.checks import (
    InputError,
    InputTypeError,
    check_choice,
    check_images,
    check_labels,
    check_number,
    check_positive_int,
    check_seed,
)
from robust.data.base import ImageSet
from robust.device import PRECISIONS, autocast
from robust.draws import Draws, Pool
from robust.models.backbone import Backbone, as_backbone
from robust.models.state import eval_mode
from robust.placement import crop, fixed_boxes, paste, patch_side, placements, random_boxes, shape_mask, windows
from robust.targets import TARGET_SETS

TARGET_MODES = ("random", "least-likely")
PLACEMENTS = ("gradcam", "gradcam-min", "search", "random", "center", "corner")


@dataclasses.dataclass
class AttackResult:
    """What an attack returns: the adversarial images and what produced them.

    Attributes:
        x_adv: the adversarial images.
        target: each image's target class (None for an untargeted attack).
        boxes: where each patch went, for a patch attack (None otherwise).
        extra: anything else the attack keeps (e.g. ``patch``: the patches themselves).

    Shape:
        x_adv: N x 3 x H x W in [0, 1]; target: N; boxes: N x 4 (top, left, height, width in pixels).

    Examples:
        >>> import torch
        >>> from robust.attacks import make_attack
        >>> from robust.models import load_model
        >>> attack = make_attack("noise-patch-12pct", placement="center")
        >>> result = attack(load_model("zoo:digits-m/resnet", "cpu"), torch.rand(2, 3, 32, 32), torch.tensor([3, 5]))
        >>> tuple(result.x_adv.shape), result.boxes.tolist()
        ((2, 3, 32, 32), [[10, 10, 11, 11], [10, 10, 11, 11]])
    """

    x_adv: torch.Tensor
    target: torch.Tensor | None = None
    boxes: torch.Tensor | None = None
    extra: dict = dataclasses.field(default_factory=dict)


#: the per-image early stop of the iterative attacks (PGD, LaVAN, gan-patch's refinement) drops finished images from
#: the batch on an accelerator every this many steps: one host sync each time, the steps between sync-free, at the
#: price of up to COMPACT_EVERY - 1 steps computed for images already done (``bench/pgd_compaction.py`` compares
#: schedules; on 2 CPU cores, the zoo's three models, this one with COMPACT_EARLY cost 0.92-1.11x the time of
#: shrinking at every step, never shrinking 1.25-3.24x).
COMPACT_EVERY = 4
#: ... and after each of the first this many steps too: an undefended model loses most images at its first steps (a
#: random-weight one before the first), where compacting only every 4 steps cost 1.6-2.2x on an H200 at 224 px
#: (docs/reports/2026-12-04-h200-2.md).
COMPACT_EARLY = 2


def compact_after(step: int, device: torch.device) -> bool:
    """Whether an iterative attack drops its finished images from the batch after step ``step`` (0-based) on
    ``device``: after every step on the CPU, where reading a value back costs nothing (its kernels have already run)
    and a step computed for a finished image costs its full share (LaVAN-20 on EfficientNet-Lite1 at 224 px: 1.13x
    the time with the accelerator's schedule); elsewhere after each of the first ``COMPACT_EARLY`` steps, then every
    ``COMPACT_EVERY``, each time one host sync.

    Example:
        >>> import torch
        >>> [s for s in range(12) if compact_after(s, torch.device("cuda"))]
        [0, 1, 3, 7, 11]
        >>> all(compact_after(s, torch.device("cpu")) for s in range(12))
        True
    """
    return device.type == "cpu" or step < COMPACT_EARLY or (step + 1) % COMPACT_EVERY == 0


def sample_targets(y: torch.Tensor, num_classes: int, mode: str | int, random: torch.Generator | Draws,
                   clean_logits: torch.Tensor | None = None) -> torch.Tensor:
    """Draw the targets of a targeted attack for labels ``y``.

    Args:
        y: the labels.
        num_classes: the class count K (at least 2).
        mode: ``random`` (uniform over the other classes, never y), ``least-likely`` (the clean model's least likely
            class: the arg-min of ``clean_logits``), a fixed class index (samples of that class are left out of TCS
            only, and counted as skipped) or a named protocol of ``robust.targets.TARGET_SETS`` for ImageNet-1k
            models (``toaster``, ``imagenet-patch``, ``n8``: uniform over the set's classes other than y).
        random: where a ``random`` or set draw comes from: ``Draws`` (per image, by seed and the image's index: what
            attacks use) or a ``torch.Generator`` (training); unused by the other modes.
        clean_logits: the clean model's logits, needed by ``least-likely``.

    Returns:
        One target class per image, on ``y``'s device (``least-likely``: on the logits' device).

    Raises:
        InputError: when ``num_classes`` < 2, ``mode`` is not valid, a fixed class is outside [0, K - 1], or
            ``least-likely`` has no logits.

    Shape:
        y: N (class indices); clean_logits: N x K; returns N.

    Examples:
        >>> import torch
        >>> from robust.attacks.base import sample_targets
        >>> y = torch.tensor([0, 1, 2, 3])
        >>> targets = sample_targets(y, 10, "random", torch.Generator().manual_seed(0))
        >>> bool((targets != y).all())
        True
        >>> sample_targets(y, 10, 7, torch.Generator())
        tensor([7, 7, 7, 7])
        >>> logits = torch.tensor([[2.0, 0.5, 1.0], [0.1, 3.0, -1.0]])
        >>> sample_targets(y[:2], 3, "least-likely", torch.Generator(), clean_logits=logits)
        tensor([1, 2])
    """
    if num_classes < 2:
        raise InputError(f"num_classes={num_classes!r} is not valid for a targeted attack; expected >= 2.")
    if mode == "random":
        if isinstance(random, Draws):
            shift = 1 + random.integers("target", num_classes - 1)
        else:
            shift = torch.randint(1, num_classes, y.shape, generator=random, device=random.device)
        return (y + shift.to(y.device)) % num_classes
    if mode == "least-likely":
        if clean_logits is None:
            raise InputError("target='least-likely' needs the clean logits.")
        return clean_logits.argmin(1)
    check_protocol(mode, num_classes)
    if isinstance(mode, int):
        return torch.full_like(y, mode)
    return _from_set(y, num_classes, mode, random)  # the one kind left: a named set


def check_protocol(mode: str | int, num_classes: int) -> None:
    """Require a target protocol (a class index or a named set of ``robust.targets``) that a model of
    ``num_classes`` classes has: an InputError naming it otherwise. Modes (``random``, ``least-likely``) pass."""
    if isinstance(mode, int) and not isinstance(mode, bool):
        if not 0 <= mode < num_classes:
            raise InputError(f"target={mode!r} is not valid; expected a class in [0, {num_classes - 1}].")
        return
    if _check_target(mode) in TARGET_SETS and max(TARGET_SETS[mode][0]) >= num_classes:
        raise InputError(f"target={mode!r} names ImageNet-1k classes (up to {max(TARGET_SETS[mode][0])}); the model "
                         f"has {num_classes} classes, expected 1000.")


def _check_target(target: object) -> object:
    """``target`` if it is a way to draw targets (a mode, a named set of ``robust.targets`` or a class index), else
    an ``InputError`` that lists them."""
    named = isinstance(target, str) and (target in TARGET_MODES or target in TARGET_SETS)
    if not (named or (isinstance(target, int) and not isinstance(target, bool))):
        raise InputError(f"target={target!r} is not valid; expected one of {TARGET_MODES}, {tuple(TARGET_SETS)} or a "
                         "class index.")
    return target


def _from_set(y: torch.Tensor, num_classes: int, name: str, random: torch.Generator | Draws) -> torch.Tensor:
    """Each image's target drawn uniformly from the set ``name``'s classes other than its label (its label when it
    is the set's only class: that image is left out of TCS, as under a fixed target)."""
    classes = TARGET_SETS[name][0]
    pool = torch.tensor(classes, device=y.device)
    own = pool[None, :] == y[:, None]  # N x k: where an image's label sits in the set
    member = own.any(1)
    choices = (len(classes) - member.long()).clamp_min(1)
    if isinstance(random, Draws):
        pick = random.integers("target", choices).to(y.device)
    else:
        pick = (torch.rand(y.shape, generator=random, device=random.device).to(y.device) * choices).long()
    pick = pick + (member & (pick >= own.long().argmax(1))).long()  # step over the image's own class
    return pool[pick.clamp_max(len(classes) - 1)]


def check_training(victims: Backbone | list[Backbone], data: ImageSet, name: str = "victims") -> list[Backbone]:
    """The victims of a trained attack as a list, checked against its training set (in memory, same classes)."""
    victims = [victims] if isinstance(victims, Backbone) else list(victims)
    if not victims or not all(isinstance(m, Backbone) for m in victims):
        raise InputTypeError(f"{name} must be a Backbone or a non-empty list of Backbones.")
    if not isinstance(data, ImageSet) or len(data) == 0:
        raise InputTypeError("data must be a non-empty in-memory ImageSet (e.g. load_dataset('digits-m', 'train')).")
    if bad := [m.name for m in victims if m.num_classes != data.num_classes]:
        raise InputError(f"{name} {bad} do not have the data's {data.num_classes} classes.")
    return victims


def bounded(patch: torch.Tensor, limits: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
    """``patch`` (N x C x p x p) projected into ``limits`` (``PatchAttack.limits``), or into [0, 1] without limits.

    Example::

        patch = bounded(patch, attack.limits(x, boxes))  # at most attack.bound away from the window it replaces
    """
    if limits is None:
        return patch.clamp(0, 1)
    return torch.minimum(torch.maximum(patch, limits[0]), limits[1])


def optimizer_step(loss: torch.Tensor, params: list[torch.Tensor], optimizer: torch.optim.Optimizer) -> None:
    """One ``optimizer`` step on ``params`` down ``loss``, its gradients taken with ``torch.autograd.grad``: only
    ``params`` get a ``.grad`` (a victim's parameters are never touched)."""
    optimizer.zero_grad(set_to_none=True)
    for p, grad in zip(params, torch.autograd.grad(loss, params), strict=True):
        p.grad = grad
    optimizer.step()


HINGE = 1.0  # logits: the ``hinge`` loss stops pulling on an image whose attack succeeds by this much


def attack_loss(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None, kind: str) -> torch.Tensor:
    """Per-sample loss an attack minimises: towards ``target`` (targeted) or away from ``y``; ``ce``, the ``cw``
    margin, or ``hinge`` (the margin, clamped where the attack succeeds by ``HINGE`` logits)."""
    if kind == "ce":
        return F.cross_entropy(logits, target, reduction="none") if target is not None else \
            -F.cross_entropy(logits, y, reduction="none")
    goal = target if target is not None else y
    own = logits.gather(1, goal[:, None])[:, 0]
    other = logits.scatter(1, goal[:, None], float("-inf")).amax(1)
    margin = other - own if target is not None else own - other
    return margin.clamp(min=-HINGE) if kind == "hinge" else margin


class Attack(abc.ABC):
    """The base of every attack: options checked when it is built, then called on batches.

    A subclass sets ``name`` and ``targeted`` and implements ``run(model, x, y, target, draws)``; the base checks
    the input, moves it to the model's device, switches the model to eval mode (and back), draws the targets and
    hands ``run`` each image's random numbers (``robust.draws.Draws``). Register it with
    ``@robust.registry.register_attack`` to reach presets, the CLI and boards.

    Args:
        target: how a targeted attack's targets are drawn: ``random`` (uniform over the other classes),
            ``least-likely`` (the clean model's least likely class), a class index, or a named protocol of the
            literature for ImageNet-1k models (``toaster``, ``imagenet-patch``, ``n8``: ``robust.targets``).
        seed: the seed of every per-image draw, and of ``self.generator``, which training uses.
        precision: ``fp32``, ``bf16`` or ``fp16``: the autocast of the attack's forward passes.
        channels_last: hand the model channels-last images (a memory-layout hint for GPUs; harmless on CPUs).
        adaptive: against a defended model (``robust.defenses``), craft through the defence (True: the white-box,
            adaptive attack, with whatever gradient the defence gives) or on its undefended base and only score the
            result on the defence (False: the non-adaptive transfer attack a defence's own paper usually reports).
            The same attack for an undefended model.

    Shape:
        ``attack(model, x, y)``: x is N x 3 x H x W in [0, 1], y is N (class indices); the ``AttackResult`` holds
        ``x_adv`` (N x 3 x H x W in [0, 1]), the targets (N) and, for a patch, the boxes (N x 4).

    Examples:
        >>> import torch
        >>> from robust.attacks import Attack, AttackResult
        >>> from robust.models import load_model
        >>> class Noise(Attack):
        ...     name, targeted = "noise", False
        ...     def run(self, model, x, y, target, draws):
        ...         return AttackResult((x + 0.1 * (draws.uniform("noise", *x.shape[1:]) - 0.5)).clamp(0, 1))
        >>> result = Noise(seed=1)(load_model("zoo:digits-m/resnet", "cpu"), torch.rand(4, 3, 32, 32),
        ...                        torch.tensor([0, 1, 2, 3]))
        >>> tuple(result.x_adv.shape)
        (4, 3, 32, 32)
    """

    name = "attack"
    targeted = False

    def __init__(self, *, target: str | int = "random", seed: int = 0, precision: str = "fp32",
                 channels_last: bool = False, adaptive: bool = True):
        check_choice(precision, PRECISIONS, "precision")
        for name, value in (("channels_last", channels_last), ("adaptive", adaptive)):
            if not isinstance(value, bool):
                raise InputError(f"{name}={value!r} is not valid; expected true or false.")
        self.precision, self.channels_last, self.adaptive = precision, channels_last, adaptive
        self.seed = check_seed(seed)
        self.target_mode = _check_target(target)
        self.generator = torch.Generator().manual_seed(self.seed)

    def __call__(self, model: Backbone | torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                 target: torch.Tensor | None = None, index: torch.Tensor | None = None,
                 pool: Pool | None = None) -> AttackResult:
        """Attack the batch ``x`` (labels ``y``; ``target`` drawn when None). ``index`` are the images' indices in
        ``pool``, the evaluated set that donors come from (``evaluate`` passes both); by default the batch is the
        set, indexed 0..N-1. An image's random draws depend on (seed, its index) only."""
        check_images(x)
        if x.shape[0] == 0:
            raise InputError("x is an empty batch; expected at least one image.")
        model = as_backbone(model, tuple(x.shape[1:]))  # a plain nn.Module takes the batch's image size
        check_labels(y, model.num_classes, n=x.shape[0])
        if target is not None:
            check_labels(target, model.num_classes, n=x.shape[0], name="target")
        x, y = x.to(model.device), y.to(model.device)
        draws = self._draws(x, y, index, pool)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        model = model if self.adaptive else model.undefended  # non-adaptive: crafted on the base, scored by the caller
        with eval_mode(model), autocast(model.device, self.precision):
            if self.targeted and target is None:
                with torch.no_grad():
                    logits = model.logits(x) if self.target_mode == "least-likely" else None
                target = sample_targets(y, model.num_classes, self.target_mode, draws, logits)
            target = target.to(model.device) if target is not None else None
            return self.run(model, x, y, target, draws)

    def _draws(self, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor | None, pool: Pool | None) -> Draws:
        if index is None and pool is None:
            return Draws.of_batch(self.seed, x, y)
        if index is None or pool is None:
            raise InputError("index and pool go together: index holds the images' indices in pool (see "
                             "robust.draws.Pool); give both or neither.")
        if not isinstance(pool, Pool):
            raise InputTypeError(f"pool must be a robust.draws.Pool, got {type(pool).__name__}.")
        if (not isinstance(index, torch.Tensor) or index.shape != (x.shape[0],) or index.is_floating_point()
                or (x.shape[0] and not 0 <= int(index.min()) <= int(index.max()) < len(pool))):
            raise InputError(f"index must be an integer tensor of shape ({x.shape[0]},) with values in "
                             f"[0, {len(pool) - 1}] (the images' indices in pool).")
        return Draws(self.seed, index.to(x.device), pool)

    @abc.abstractmethod
    def run(self, model: Backbone, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
            draws: Draws) -> AttackResult:
        """The attack proper, on validated input, with the model in eval mode and targets drawn; ``draws`` gives
        each image's random numbers."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(seed={self.seed}, target={self.target_mode!r})"


def searched_boxes(model: Backbone, x: torch.Tensor, side: int, stride: int = 1, chunk: int = 1024) -> torch.Tensor:
    """Per image, the ``side`` x ``side`` window on the stride grid whose grey occlusion lowers the predicted class's
    logit most: where an attacker who may place the patch anywhere puts it, found by trying every place.

    The search reads the undefended network (``Backbone.undefended``), as Grad-CAM placement does: one forward per
    image and place, ``chunk`` at a time.

    Args:
        model: the model attacked.
        x: the images.
        side: the patch's side in pixels.
        stride: pixels between neighbouring places (1: every place).
        chunk: occluded images per forward.

    Returns:
        The boxes (top, left, height, width).

    Shape:
        x: N x 3 x H x W in [0, 1]; returns N x 4 (long).

    Examples:
        >>> import torch
        >>> from robust.attacks.base import searched_boxes
        >>> from robust.models import load_model
        >>> searched_boxes(load_model("zoo:digits-m/resnet", "cpu"), torch.rand(2, 3, 32, 32), 5, stride=9).shape
        torch.Size([2, 4])
    """
    net = model.undefended
    boxes = placements(tuple(x.shape[-2:]), side, stride).to(x.device)
    grey = torch.full((x.shape[1], side, side), 0.5, device=x.device, dtype=x.dtype)
    n, p = x.shape[0], boxes.shape[0]
    with torch.no_grad(), eval_mode(net):
        predicted = net.logits(x).argmax(1)
        scores = torch.cat([net.logits(paste(x[rows // p], grey, boxes[rows % p], check=False)).gather(
            1, predicted[rows // p, None])[:, 0] for rows in torch.arange(n * p, device=x.device).split(chunk)])
    return boxes[scores.reshape(n, p).argmin(1)]


class PatchAttack(Attack):
    """The base of patch attacks: a patch of ``area`` and ``shape`` pasted at a window chosen by ``placement``.

    Args:
        area: the patch's share of the image area, in (0, 1).
        placement: where the patch goes: ``gradcam`` (the Grad-CAM arg-max window of the predicted class),
            ``gradcam-min``, ``search`` (the attacker's choice of any place: the window on the stride grid whose grey
            occlusion lowers the predicted class's logit most, one forward per place; the threat model of a patch
            placed anywhere), ``random``, ``center`` or ``corner``.
        shape: ``square`` or ``circle`` (the patch's mask).
        stride: the stride of the Grad-CAM window search and of ``search``'s grid, in pixels.
        bound: an L-inf bound in (0, 1] on the change to the window the patch covers (the patch stays within
            [0, 1]); 1 (the default) is the free patch.
        **options: the options of every attack (``Attack``).

    Shape:
        As ``Attack``; ``locate`` gives the boxes (N x 4: top, left, height, width in pixels).

    Examples:
        >>> from robust.attacks import make_attack
        >>> attack = make_attack("lavan", area=0.12, placement="center", steps=1)
        >>> attack.side_for((3, 32, 32))
        11
    """

    def __init__(self, *, area: float = 0.08, placement: str = "gradcam", shape: str = "square", stride: int = 1,
                 bound: float = 1.0, **options: object):
        super().__init__(**options)
        self.bound = check_number(bound, "bound", low=0, high=1, low_open=True,
                                  expected="an L-inf bound in (0, 1] on the change to the window (1: a free patch)")
        check_choice(placement, PLACEMENTS, "placement")
        check_number(area, "area", low=0, high=1, low_open=True, high_open=True,
                     expected="a fraction of the image area in (0, 1)")
        shape_mask(shape, 1)  # validates the shape name
        check_positive_int(stride, "stride")
        self.area, self.placement, self.shape, self.stride = float(area), placement, shape, stride

    def side(self, x: torch.Tensor) -> int:
        return self.side_for(tuple(x.shape))

    def side_for(self, image_size: tuple[int, ...]) -> int:
        """The patch's side on images of ``image_size`` (..., H, W): computed from the size alone, so that a size
        read from a file never allocates an image."""
        return patch_side(self.area, tuple(image_size[-2:]))

    def mask(self, side: int, device: torch.device) -> torch.Tensor:
        return shape_mask(self.shape, side, device)

    def limits(self, x: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Per image, the lowest and highest value each patch pixel may take (N x C x p x p each): the window at
        ``boxes`` minus and plus ``bound``, within [0, 1]; None for a free patch (``bound`` = 1)."""
        if self.bound >= 1:
            return None
        window = crop(x, boxes)
        return (window - self.bound).clamp_min(0), (window + self.bound).clamp_max(1)

    def locate(self, model: Backbone, x: torch.Tensor, draws: Draws | torch.Generator) -> torch.Tensor:
        """Boxes for ``x`` under this attack's placement rule (``random``: drawn per image from ``draws``, or from
        a generator in training)."""
        side, hw, n = self.side(x), tuple(x.shape[-2:]), x.shape[0]
        if self.placement in ("gradcam", "gradcam-min"):
            saliency = cam(model, x)  # the predicted class, per the protocol
            return windows(saliency, side, stride=self.stride, mode="max" if self.placement == "gradcam" else "min")
        if self.placement == "search":
            return searched_boxes(model, x, side, self.stride)
        if self.placement == "random":
            u = draws.uniform("window", 2) if isinstance(draws, Draws) else torch.rand(n, 2, generator=draws)
            return random_boxes(u.to(x.device), hw, side)
        return fixed_boxes(n, hw, side, "center" if self.placement == "center" else "top-left", device=x.device)
