"""Patch defences: models that wrap a model and defend it against patches (``PatchCleanser``), and a search that
checks a certificate (``violations``)."""

from robust.defenses.certificate import placements, violations
from robust.defenses.patchcleanser import PatchCleanser, mask_set

__all__ = ["PatchCleanser", "mask_set", "placements", "violations"]
