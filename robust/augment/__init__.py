"""Training-time augmentation: ``PatchMixing`` (a kornia mix augmentation) and ``soft_targets``."""

from robust.augment.patch_mixing import PatchMixing, soft_targets

__all__ = ["PatchMixing", "soft_targets"]
