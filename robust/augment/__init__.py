"""Training-time augmentation: ``PatchMixing`` (a kornia mix augmentation), ``soft_targets``, and ``mix`` (one
switch between Patch Mixing, CutMix and MixUp per batch, in the shape of timm's ``Mixup``)."""

from robust.augment.mix import Mix, mix
from robust.augment.patch_mixing import PatchMixing, soft_targets

__all__ = ["Mix", "PatchMixing", "mix", "soft_targets"]
