"""Counts and rates with their intervals: clean and robust accuracy, ASR and TCS as ``protocols.md`` defines them.

Results are kept as integer counts (``Counts``), so batches, shards and machines merge with ``+``; rates and
Wilson 95 % intervals are derived from the counts. Over the clean-correct set C of the N evaluated samples:
ASR = |{x in C : f(x_adv) != y}| / |C| and TCS = |{x in C : f(x_adv) == y_t}| / |C| (so TCS <= ASR); both are
also reported over all N (``asr_all``, ``tcs_all``). A sample whose target equals its true label (a fixed target
class) stays in N, in C and in ASR; only TCS leaves it out of its numerator and denominator, and counts it in
``skipped`` (``skipped_correct`` of them in C).
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import torch

from robust.checks import InputError, InputTypeError, check_labels, check_matches
from robust.data.base import ImageSet
from robust.models.backbone import Backbone, as_backbone
from robust.models.state import eval_mode
from robust.targets import TARGET_SETS

if TYPE_CHECKING:
    import numpy as np


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion ``successes / n`` (95 % by default).

    At ``successes == 0`` the lower bound is exactly 0, at ``successes == n`` the upper bound exactly 1; with
    ``n == 0`` the interval is (0, 1).

    Args:
        successes: the count of successes, 0 <= successes <= n.
        n: the count of trials, >= 0.
        z: the normal quantile of the confidence level (default 1.96, two-sided 95 %).

    Returns:
        The (lower, upper) bounds, in [0, 1].

    Raises:
        InputError: counts that are not 0 <= successes <= n.

    Examples:
        >>> from robust.metrics import wilson_interval
        >>> [round(v, 3) for v in wilson_interval(8, 10)]
        [0.49, 0.943]
        >>> wilson_interval(0, 0), wilson_interval(5, 5)[1]
        ((0.0, 1.0), 1.0)
    """
    if n < 0 or not 0 <= successes <= n:
        raise InputError(f"successes={successes!r}, n={n!r} are not valid; expected 0 <= successes <= n.")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # At k = 0 or k = n the bound is exactly 0 or 1; float rounding would otherwise leave it a hair inside.
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return lo, hi


#: each rate in words, once: what tables and help texts print beside the abbreviation
MEANINGS = {
    "clean_accuracy": "share of the n images the model classifies correctly without the attack",
    "robust_accuracy": "share of the n images still classified correctly under the attack",
    "asr": "attack success rate: share of the clean-correct images the attack makes misclassified",
    "tcs": "target-class success: share of the clean-correct images pushed to the attacker's target class",
    "asr_all": "ASR over all n images, not only the clean-correct ones",
    "tcs_all": "TCS over all n images, not only the clean-correct ones",
}


def describe_targets(targeted: bool, target: object = "random") -> str:
    """How an attack chose what to aim at, in words (``target``: an attack's ``target`` parameter).

    >>> describe_targets(True)
    "targeted: each image's target drawn uniformly from the other classes (per image, from the seed and its index)"
    """
    if not targeted:
        return "untargeted: any wrong class counts as success"
    if target == "least-likely":
        return "targeted: each image's target is the class the model ranks lowest on the clean image"
    if isinstance(target, int) and not isinstance(target, bool):
        return f"targeted: every image's target is class {target} (images of that class are left out of TCS)"
    if isinstance(target, str) and target in TARGET_SETS:
        return (f"targeted: each image's target drawn uniformly from {TARGET_SETS[target][1]}, classes "
                f"{list(TARGET_SETS[target][0])}, other than its own (per image, from the seed and its index)")
    return ("targeted: each image's target drawn uniformly from the other classes (per image, from the seed and its "
            "index)")


@dataclasses.dataclass(frozen=True)
class Counts:
    """The outcome counts of one attack over N images; rates and their Wilson 95 % intervals derive from them.

    Counts merge with ``+`` (batches, shards, machines). C is the set of clean-correct images, y an image's label,
    y_t its target and f the model; ASR = success / clean_correct, TCS = target_hit / the clean-correct images
    whose target is another class (see the module docstring).

    Attributes:
        n: the images evaluated (N).
        clean_correct: the images classified correctly without the attack (|C|).
        adv_correct: the images with f(x_adv) == y, over all N (robust accuracy).
        success: the images in C with f(x_adv) != y.
        target_hit: the images in C with f(x_adv) == y_t (targeted attacks only).
        success_all: the images with f(x_adv) != y, over all N.
        target_hit_all: the images with f(x_adv) == y_t, over all N (targeted attacks only).
        skipped: targeted images whose target was their own label (left out of TCS only).
        skipped_correct: of those, the ones in C.
        targeted: whether the attack aimed at targets.

    Examples:
        >>> from robust.metrics import Counts
        >>> total = Counts(n=10, clean_correct=8, success=6, target_hit=4, targeted=True) + Counts(
        ...     n=10, clean_correct=10, success=3, target_hit=2, targeted=True)
        >>> total.n, total.asr, total.tcs
        (20, 0.5, 0.3333333333333333)
        >>> [round(v, 3) for v in total.interval("tcs")]
        [0.163, 0.563]
    """

    n: int = 0
    clean_correct: int = 0
    adv_correct: int = 0
    success: int = 0
    target_hit: int = 0
    success_all: int = 0
    target_hit_all: int = 0
    skipped: int = 0
    skipped_correct: int = 0
    targeted: bool = False

    def __add__(self, other: Counts) -> Counts:
        if not isinstance(other, Counts):
            return NotImplemented
        if other.targeted != self.targeted and self.n and other.n:
            raise ValueError("cannot merge targeted and untargeted Counts.")
        fields = [f.name for f in dataclasses.fields(self) if f.name != "targeted"]
        return Counts(**{f: getattr(self, f) + getattr(other, f) for f in fields},
                      targeted=self.targeted or other.targeted)

    def fraction(self, rate: str) -> tuple[int, int]:
        """Numerator and denominator counts of ``rate`` (one of ``RATES``)."""
        if rate not in _FRACTIONS:
            raise InputError(f"rate={rate!r} is not valid; expected one of {RATES}.")
        num, den = _FRACTIONS[rate]
        return getattr(self, num), getattr(self, den)

    def rate(self, rate: str) -> float | None:
        """``rate`` as a fraction; None with no denominator, and for TCS of an untargeted attack."""
        k, n = self.fraction(rate)
        return None if not n or (rate.startswith("tcs") and not self.targeted) else k / n

    def interval(self, rate: str) -> tuple[float, float] | None:
        """Wilson 95 % interval of ``rate`` (``clean_accuracy``, ``asr``, ``tcs``, ...)."""
        k, n = self.fraction(rate)
        return None if self.rate(rate) is None else wilson_interval(k, n)

    @property
    def tcs_n(self) -> int:
        """TCS's denominator over all N: the samples whose target is another class."""
        return self.n - self.skipped

    @property
    def tcs_clean_correct(self) -> int:
        """TCS's denominator over C: the clean-correct samples whose target is another class."""
        return self.clean_correct - self.skipped_correct

    @property
    def headline(self) -> str:
        """The rate a board ranks by: TCS for a targeted attack, ASR otherwise (lower is more robust)."""
        return "tcs" if self.targeted else "asr"

    clean_accuracy = property(lambda self: self.rate("clean_accuracy"))
    robust_accuracy = property(lambda self: self.rate("robust_accuracy"))
    asr = property(lambda self: self.rate("asr"))
    tcs = property(lambda self: self.rate("tcs"))
    asr_all = property(lambda self: self.rate("asr_all"))
    tcs_all = property(lambda self: self.rate("tcs_all"))

    def __str__(self) -> str:
        """The rates with their intervals and counts, in words once: ``print(counts)``.

        >>> print(Counts(n=10, clean_correct=8, adv_correct=3, success=5, target_hit=4, success_all=7,
        ...              target_hit_all=4, targeted=True))  # doctest: +NORMALIZE_WHITESPACE
        Counts over n=10 images, targeted: clean accuracy 80.0 % [49.0, 94.3] (8 / 10); ASR 62.5 % [30.6, 86.3]
        (5 / 8 clean-correct); TCS 50.0 % [21.5, 78.5] (4 / 8 clean-correct); robust accuracy 30.0 % [10.8, 60.3]
        (3 / 10). TCS: target-class success: share of the clean-correct images pushed to the attacker's target class.
        """
        parts = []
        for rate, label in (("clean_accuracy", "clean accuracy"), ("asr", "ASR"), ("tcs", "TCS"),
                            ("robust_accuracy", "robust accuracy")):
            value, ci = self.rate(rate), self.interval(rate)
            if value is None:
                continue
            k, n = self.fraction(rate)
            of = " clean-correct" if rate in ("asr", "tcs") else ""
            parts.append(f"{label} {100 * value:.1f} % [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}] ({k} / {n}{of})")
        headline = self.headline
        return (f"Counts over n={self.n} images, {'targeted' if self.targeted else 'untargeted'}: "
                f"{'; '.join(parts) or 'no images'}. {headline.upper()}: {MEANINGS[headline]}.")

    def to_dict(self) -> dict:
        """Counts, rates and intervals as plain JSON-ready values."""
        out: dict = dataclasses.asdict(self)
        for rate in RATES:
            out[rate] = self.rate(rate)
            out[f"{rate}_interval"] = self.interval(rate)
        return out


_FRACTIONS = {"clean_accuracy": ("clean_correct", "n"), "robust_accuracy": ("adv_correct", "n"),
              "asr": ("success", "clean_correct"), "tcs": ("target_hit", "tcs_clean_correct"),
              "asr_all": ("success_all", "n"), "tcs_all": ("target_hit_all", "tcs_n")}
RATES = tuple(_FRACTIONS)
assert set(RATES) == set(MEANINGS)


def _labels(name: str, v: torch.Tensor) -> torch.Tensor:
    if not isinstance(v, torch.Tensor):
        raise InputTypeError(f"{name} must be a torch.Tensor (logits N x K or labels N), got {type(v).__name__}.")
    if v.ndim == 2:
        return v.argmax(1)
    if v.ndim == 1 and not v.is_floating_point():
        return v
    raise InputError(f"{name} has shape {tuple(v.shape)} and dtype {v.dtype}; expected logits N x K or labels N.")


def count(clean: torch.Tensor, adv: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None = None, *,
          num_classes: int | None = None) -> Counts:
    """Count the outcomes of an attack on a batch: clean and adversarial predictions against the labels and targets.

    Logits are reduced to their top-1; predicted labels may be given instead (then with ``num_classes``). One host
    transfer for the batch; ``Counts`` of batches merge with ``+``.

    Args:
        clean: the model's logits (or predicted labels) on the clean images.
        adv: its logits (or predicted labels) on the adversarial images.
        y: the true labels.
        target: for a targeted attack, each image's target class (None: untargeted); an image whose target is its
            own label stays in N, C and ASR but is left out of TCS (``skipped``).
        num_classes: the number of classes K, required when ``clean`` and ``adv`` are labels (else read from the
            logits).

    Returns:
        The ``Counts`` (``targeted`` when ``target`` is given).

    Raises:
        InputError: shapes that disagree, labels outside [0, K), or labels without ``num_classes``.
        TypeError: ``clean`` or ``adv`` is not a tensor.

    Shape:
        clean, adv: N x K logits or N labels (integers); y, target: N (integers in [0, K)).

    Examples:
        >>> import torch
        >>> from robust.metrics import count
        >>> y = torch.tensor([0, 1, 2, 2])
        >>> clean, adv = torch.tensor([0, 1, 2, 1]), torch.tensor([1, 1, 0, 0])
        >>> counts = count(clean, adv, y, num_classes=3)
        >>> counts.n, counts.clean_correct, counts.success, counts.asr
        (4, 3, 2, 0.6666666666666666)
        >>> targeted = count(clean, adv, y, torch.tensor([1, 2, 2, 0]), num_classes=3)
        >>> targeted.target_hit, targeted.skipped, targeted.tcs
        (1, 1, 0.5)
    """
    ind, _, _ = _prepare(clean, adv, y, target, num_classes)
    return Counts(*ind.sum(1).tolist(), targeted=target is not None)  # one host transfer for the batch


def per_class(clean: torch.Tensor, adv: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None = None, *,
              num_classes: int | None = None) -> list[Counts]:
    """``Counts`` of each true class (index = class), from one batched ``bincount`` per field.

    The same counts as ``count``, split by the true label ``y``; a class without images gets empty ``Counts``.

    Args:
        clean: the model's logits (or predicted labels) on the clean images.
        adv: its logits (or predicted labels) on the adversarial images.
        y: the true labels.
        target: for a targeted attack, each image's target class (None: untargeted).
        num_classes: the number of classes K, required when ``clean`` and ``adv`` are labels (else read from the
            logits).

    Returns:
        K ``Counts``, the k-th over the images of class k; their sum is ``count``'s.

    Raises:
        InputError: shapes that disagree, labels outside [0, K), or labels without ``num_classes``.
        TypeError: ``clean`` or ``adv`` is not a tensor.

    Shape:
        clean, adv: N x K logits or N labels (integers); y, target: N (integers in [0, K)).

    Examples:
        >>> import torch
        >>> from robust.metrics import per_class
        >>> y = torch.tensor([0, 1, 2, 2])
        >>> clean, adv = torch.tensor([0, 1, 2, 1]), torch.tensor([1, 1, 0, 0])
        >>> [(c.n, c.clean_correct, c.success) for c in per_class(clean, adv, y, num_classes=3)]
        [(1, 1, 1), (1, 1, 0), (2, 1, 1)]
    """
    ind, y, k = _prepare(clean, adv, y, target, num_classes)
    table = torch.stack([torch.bincount(y, weights=row, minlength=k) for row in ind.double()]).long().T.tolist()
    return [Counts(*row, targeted=target is not None) for row in table]


def confusion(y: torch.Tensor, adv: torch.Tensor, num_classes: int) -> np.ndarray:
    """The K x K confusion matrix of the adversarial predictions (scikit-learn's ``confusion_matrix``).

    Args:
        y: the true labels.
        adv: the model's logits (or predicted labels) on the adversarial images.
        num_classes: the number of classes K.

    Returns:
        The counts as a numpy array: rows are the true classes, columns the predictions on the adversarial images.

    Raises:
        InputError: labels outside [0, K), or a count of labels that is not one per prediction.
        TypeError: ``adv`` is not a tensor.

    Shape:
        y: N (integers in [0, K)); adv: N x K logits or N labels; returns K x K.

    Examples:
        >>> import torch
        >>> from robust.metrics import confusion
        >>> confusion(torch.tensor([0, 1, 2, 2]), torch.tensor([1, 1, 0, 0]), 3).tolist()
        [[0, 1, 0], [0, 1, 0], [2, 0, 0]]
    """
    from sklearn.metrics import confusion_matrix

    pred = _labels("adv", adv)
    check_labels(y, num_classes, n=pred.shape[0])
    return confusion_matrix(y.cpu().numpy(), pred.cpu().numpy(), labels=list(range(num_classes)))


def _prepare(clean: torch.Tensor, adv: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
             num_classes: int | None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Validate the inputs of ``count`` / ``per_class``; return the 9 x N indicators, the labels and the class
    count."""
    clean_pred, adv_pred = _labels("clean", clean), _labels("adv", adv)
    n = clean_pred.shape[0]
    if adv_pred.shape[0] != n:
        raise InputError(f"adv has {adv_pred.shape[0]} samples; expected {n} like clean.")
    k = clean.shape[1] if clean.ndim == 2 else num_classes
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise InputError(f"num_classes={num_classes!r} is not valid; it is required when clean and adv are labels.")
    check_labels(y, k, n=n)
    y = y.to(clean_pred.device)
    keep = torch.ones(n, dtype=torch.bool, device=clean_pred.device)  # the target is another class
    hit = torch.zeros(n, dtype=torch.bool, device=clean_pred.device)
    if target is not None:
        check_labels(target, k, n=n, name="target")
        target = target.to(clean_pred.device)
        keep, hit = target != y, adv_pred == target
    correct, fooled = clean_pred == y, adv_pred != y
    indicators = [torch.ones_like(keep), correct, adv_pred == y, fooled & correct, hit & correct & keep, fooled,
                  hit & keep, ~keep, ~keep & correct]  # in the order of the Counts fields
    return torch.stack(indicators).long(), y, k


@torch.no_grad()
def clean_accuracy(model: Backbone | torch.nn.Module, data: ImageSet, batch_size: int = 500,
                   limit: int | None = None) -> dict:
    """Top-1 accuracy of ``model`` on an in-memory ``ImageSet``, with its Wilson 95 % interval.

    Batched on the model's device, in eval mode (each module's training flag restored afterwards), without
    gradients. A plain ``nn.Module`` is wrapped as a ``Backbone`` for the data's image size, without normalisation.

    Args:
        model: a ``Backbone`` or a plain ``nn.Module`` (it gets [0, 1] images).
        data: the images and labels (e.g. ``load_dataset('digits-m')``).
        batch_size: the images per forward pass.
        limit: how many images from the start of ``data`` (None: all of them).

    Returns:
        A dict: ``n`` (images evaluated), ``correct``, ``accuracy`` (``correct / n``; NaN when n is 0) and
        ``interval`` (the Wilson 95 % interval of the accuracy).

    Raises:
        TypeError: ``data`` that is not an ``ImageSet``, or a model that is not a module.
        InputError: a model and data that do not fit (``check_matches``: data labelled by another model's
            decisions, another number of classes or another image size), or labels outside its classes.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> from robust.data import ImageSet
        >>> from robust.metrics import clean_accuracy
        >>> data = ImageSet(torch.zeros(6, 3, 8, 8, dtype=torch.uint8), torch.tensor([0, 1, 1, 0, 1, 1]), ["a", "b"],
        ...                 "toy")
        >>> net = nn.Sequential(nn.Conv2d(3, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        >>> with torch.no_grad():  # the network always says class 1
        ...     _ = net[0].weight.zero_(), net[0].bias.copy_(torch.tensor([0.0, 1.0]))
        >>> result = clean_accuracy(net, data, batch_size=4)
        >>> result["n"], result["correct"], result["accuracy"], [round(v, 3) for v in result["interval"]]
        (6, 4, 0.6666666666666666, [0.3, 0.903])
    """
    if not isinstance(data, ImageSet):
        raise InputTypeError(f"data must be an in-memory ImageSet (e.g. load_dataset('digits-m')), "
                             f"got {type(data).__name__}.")
    model = as_backbone(model, data=data)  # a plain nn.Module takes the data's image size
    check_matches(model, data)
    correct = torch.zeros((), dtype=torch.long, device=model.device)
    n = 0
    with eval_mode(model):
        for x, y in data.batches(batch_size, model.device, limit=limit):
            check_labels(y, model.num_classes, n=x.shape[0])
            correct += (model(x).argmax(1) == y).sum()
            n += x.shape[0]
    k = int(correct)
    return {"n": n, "correct": k, "accuracy": k / n if n else float("nan"), "interval": wilson_interval(k, n)}


__all__ = ["RATES", "Counts", "clean_accuracy", "confusion", "count", "per_class", "wilson_interval"]
