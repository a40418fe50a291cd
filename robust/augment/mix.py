"""One switch between Patch Mixing, CutMix and MixUp per batch, in the shape of timm's ``Mixup``, so that it drops
into a timm training script in one line::

    mix = robust.augment.mix(patch_mixing=0.5, cutmix=0.25, mixup=0.25, num_classes=1000)
    x, target = mix(x, y)            # target: B x K soft targets for timm.loss.SoftTargetCrossEntropy

Each batch gets one of them with its probability (what is left over: the batch as it is, with smoothed one-hot
targets). CutMix pastes one box of a partner image (area drawn from Beta(alpha, alpha), the label weight corrected to
the box actually pasted, as timm does); MixUp blends whole images; Patch Mixing replaces grid cells
(``PatchMixing``). Every draw comes from the switch's own ``torch.Generator``; Beta draws are made by a NumPy
generator seeded from it, so a seed fixes everything.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

from robust.augment.patch_mixing import PatchMixing, soft_targets
from robust.checks import InputError, check_images, check_labels, check_number, check_positive_int, check_seed
from robust.device import to_device

METHODS = ("patch_mixing", "cutmix", "mixup")


class Mix:
    """One switch between Patch Mixing, CutMix and MixUp per batch, in the shape of timm's ``Mixup``.

    Each batch gets one method with its probability; what is left over leaves the batch as it is, with smoothed one-hot
    targets. ``robust.augment.mix`` is this class (timm's lower-case spelling).

    Args:
        patch_mixing: the probability that a batch gets Patch Mixing.
        cutmix: the probability that it gets CutMix (one box of a partner, its area drawn from Beta(alpha, alpha),
            the label weight corrected to the box actually pasted, as timm does).
        mixup: the probability that it gets MixUp (whole images blended).
        num_classes: the class count of the soft targets.
        label_smoothing: epsilon of the soft targets.
        grid: Patch Mixing's cells per side (an int or (rows, cols)).
        ratio: Patch Mixing's fraction of cells replaced: a number or a (low, high) range.
        cutmix_alpha: CutMix's Beta parameter.
        mixup_alpha: MixUp's Beta parameter.
        seed: the seed of the default generator.
        generator: the ``torch.Generator`` of every draw (Beta draws come from a NumPy generator seeded from it).

    Shape:
        ``mix(x, y)``: x is B x C x H x W in [0, 1], y is B (class indices); returns the mixed images
        (B x C x H x W) and soft targets (B x num_classes) for ``timm.loss.SoftTargetCrossEntropy``.

    Examples:
        >>> import torch
        >>> from robust.augment import mix
        >>> mixer = mix(patch_mixing=0.5, cutmix=0.25, mixup=0.25, num_classes=10, seed=0)
        >>> x, target = mixer(torch.rand(8, 3, 32, 32), torch.arange(8))
        >>> tuple(x.shape), tuple(target.shape), mixer.last in ("patch_mixing", "cutmix", "mixup", "none")
        ((8, 3, 32, 32), (8, 10), True)
    """

    def __init__(self, *, patch_mixing: float = 0.0, cutmix: float = 0.0, mixup: float = 0.0, num_classes: int,
                 label_smoothing: float = 0.1, grid: int | tuple[int, int] = 8,
                 ratio: float | tuple[float, float] = (0.0, 0.5), cutmix_alpha: float = 1.0, mixup_alpha: float = 0.8,
                 seed: int = 0, generator: torch.Generator | None = None) -> None:
        probs = {"patch_mixing": patch_mixing, "cutmix": cutmix, "mixup": mixup}
        for name, p in probs.items():
            check_number(p, name, low=0, high=1, expected="a probability in [0, 1]")
        if sum(probs.values()) > 1 + 1e-9:
            raise InputError(f"patch_mixing={patch_mixing}, cutmix={cutmix}, mixup={mixup} add up to "
                             f"{sum(probs.values()):g}; expected at most 1 (what is left: no mixing).")
        check_positive_int(num_classes, "num_classes")
        check_number(label_smoothing, "label_smoothing", low=0, high=1, high_open=True, expected="a number in [0, 1)")
        for name, a in (("cutmix_alpha", cutmix_alpha), ("mixup_alpha", mixup_alpha)):
            check_number(a, name, low=0, low_open=True, expected="a positive number")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise InputError(f"generator={generator!r} is not valid; expected a torch.Generator or None.")
        self.probs = probs
        self.num_classes, self.label_smoothing = num_classes, float(label_smoothing)
        self.cutmix_alpha, self.mixup_alpha = float(cutmix_alpha), float(mixup_alpha)
        self.generator = generator if generator is not None else torch.Generator().manual_seed(check_seed(seed))
        self.patch_mixing = PatchMixing(grid, ratio=ratio, p=1.0, generator=self.generator)
        self.last: str | None = None  # which method the last batch got ("none": left as it was)

    def _beta(self, alpha: float) -> float:
        seed = int(torch.randint(0, 2**62, (), generator=self.generator))
        return float(np.random.default_rng(seed).beta(alpha, alpha))

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = check_images(x)
        y = check_labels(y, self.num_classes, n=x.shape[0])
        u = float(torch.rand((), generator=self.generator))
        edges = itertools.accumulate(self.probs[name] for name in METHODS)  # each method's share ends at its edge
        method = next((name for name, edge in zip(METHODS, edges, strict=True) if u < edge), "none")
        self.last = method
        b, _, h, w = x.shape
        if method == "patch_mixing":
            x, rows = self.patch_mixing(x, y)
            return x, soft_targets(rows, self.num_classes, self.label_smoothing)
        perm = to_device(torch.randperm(b, generator=self.generator), x.device)
        if method == "mixup":
            lam = self._beta(self.mixup_alpha)
            x = lam * x + (1 - lam) * x[perm]
        elif method == "cutmix":
            lam = self._beta(self.cutmix_alpha)
            cy, cx = (torch.rand(2, generator=self.generator) * torch.tensor([h, w])).tolist()
            bh, bw = h * (1 - lam) ** 0.5, w * (1 - lam) ** 0.5
            top, bottom = int(max(cy - bh / 2, 0)), int(min(cy + bh / 2, h))
            left, right = int(max(cx - bw / 2, 0)), int(min(cx + bw / 2, w))
            x = x.clone()
            x[:, :, top:bottom, left:right] = x[perm, :, top:bottom, left:right]  # the partners' boxes only
            lam = 1 - (bottom - top) * (right - left) / (h * w)  # the weight of the box actually pasted
        else:
            lam = 1.0
        rows = torch.stack([y.float(), y[perm].float(), torch.full((b,), lam, device=y.device)], 1)
        return x, soft_targets(rows, self.num_classes, self.label_smoothing)


mix = Mix  # ``robust.augment.mix(patch_mixing=0.5, cutmix=0.25, mixup=0.25, num_classes=K)``, as timm's Mixup


__all__ = ["METHODS", "Mix", "mix"]
