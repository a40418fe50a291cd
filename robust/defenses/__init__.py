"""Patch defences: models that wrap a model and defend it against patches (``PatchCleanser``)."""

from robust.defenses.patchcleanser import PatchCleanser, mask_set

__all__ = ["PatchCleanser", "mask_set"]
