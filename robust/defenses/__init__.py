"""Patch defences: models that wrap a model and defend it against patches (``Defended``, their base;
``PatchCleanser``, certified; ``LocalGradientSmoothing``, empirical), the certified accuracy of one as an
evaluation (``CertifiedAccuracy``, registered as ``certified``), and a search that checks a certificate
(``violations``)."""

from robust.defenses.base import Defended
from robust.defenses.certificate import violations
from robust.defenses.certified import CertifiedAccuracy
from robust.defenses.lgs import LocalGradientSmoothing, gradient_mask
from robust.defenses.patchcleanser import PatchCleanser, mask_set

__all__ = ["CertifiedAccuracy", "Defended", "LocalGradientSmoothing", "PatchCleanser", "gradient_mask", "mask_set",
           "violations"]
