"""A measured curve, its normalised area, and a bootstrap interval of that area over images."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

BOOTSTRAP = 1000  # resamples of the images for the area's interval


@dataclasses.dataclass
class Curve:
    """A measured curve: the mean and spread over seeds of a value at each point of a swept knob.

    Attributes:
        name: the evaluation (or variant) that measured it.
        x: the curve's x at each point.
        mean: the value at each point, the mean over seeds of the mean over images.
        std: its standard deviation over seeds at each point (0 with one seed).
        n: the images measured at each point.
        seeds: how many seeds each point was measured over.
        xlabel: what x is, in words.
        ylabel: what the value is, in words.
        params: the options it was measured with (and the seed).
        higher_is_better: whether a larger area means a more robust model.
        area_interval: a 95 % bootstrap interval of the area over images (the seeds' draws kept), or None.

    Examples:
        >>> from robust.evaluations.curve import Curve
        >>> curve = Curve("patch-drop", [0.0, 0.5, 1.0], [0.9, 0.5, 0.1], [0.0, 0.02, 0.01], 100, 3,
        ...               "share dropped", "accuracy")
        >>> round(curve.area, 3)
        0.5
    """

    name: str
    x: list[float]
    mean: list[float]
    std: list[float]
    n: int
    seeds: int
    xlabel: str
    ylabel: str
    params: dict = dataclasses.field(default_factory=dict)
    higher_is_better: bool = True  # a larger area means a more robust model
    area_interval: list[float] | None = None

    @property
    def area(self) -> float:
        """Area under the mean curve divided by the x range (the mean height; the single value for one point)."""
        return float(area_under(self.x, torch.tensor(self.mean, dtype=torch.float64)))

    def __str__(self) -> str:
        """The curve in words and numbers: ``print(curve)``, percentages with the area's interval.

        >>> print(Curve("patch-drop", [0.0, 0.5], [0.9, 0.5], [0.0, 0.01], 100, 3, "share dropped", "accuracy",
        ...             area_interval=[0.65, 0.75]))  # doctest: +NORMALIZE_WHITESPACE
        Curve patch-drop over n=100 images, 3 seeds: accuracy at share dropped 0 -> 90.0 % (std 0.0), 0.5 -> 50.0 %
        (std 1.0); normalised area 70.0 % [65.0, 75.0] (higher is better).
        """
        points = ", ".join(f"{x:g} -> {100 * m:.1f} % (std {100 * s:.1f})"
                           for x, m, s in zip(self.x, self.mean, self.std, strict=True))
        ci = f" [{100 * self.area_interval[0]:.1f}, {100 * self.area_interval[1]:.1f}]" if self.area_interval else ""
        return (f"Curve {self.name} over n={self.n} images, {self.seeds} seeds: {self.ylabel} at {self.xlabel} "
                f"{points}; normalised area {100 * self.area:.1f} %{ci} "
                f"({'higher' if self.higher_is_better else 'lower'} is better).")

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "area": self.area}


def area_under(x: Sequence[float], y: torch.Tensor) -> torch.Tensor:
    """The trapezoid area under ``y`` over ``x``, divided by the x range: the curve's mean height.

    For one point the area is ``y`` itself. Batched over ``y``'s leading axes.

    Args:
        x: the points, increasing.
        y: the values at each point (float64, as the area is computed in float64).

    Returns:
        The normalised area of each curve.

    Shape:
        x: K; y: ... x K; returns ... (the leading axes of y).

    Examples:
        >>> import torch
        >>> from robust.evaluations.curve import area_under
        >>> float(area_under([0.0, 0.5, 1.0], torch.tensor([1.0, 0.5, 0.0], dtype=torch.float64)))
        0.5
        >>> area_under([0.0, 0.5, 1.0], torch.tensor([[1.0, 0.5, 0.0], [1.0, 1.0, 1.0]], dtype=torch.float64))
        tensor([0.5000, 1.0000], dtype=torch.float64)
    """
    if len(x) == 1:
        return y[..., 0]
    xs = torch.tensor(x, dtype=torch.float64)
    return ((xs[1:] - xs[:-1]) * (y[..., 1:] + y[..., :-1]) / 2).sum(-1) / (xs[-1] - xs[0])


def bootstrap_area(x: Sequence[float], values: torch.Tensor, valid: torch.Tensor, seed: int) -> list[float]:
    """A 95 % percentile interval of the curve's normalised area when the images are resampled with replacement.

    ``BOOTSTRAP`` resamples of the images (each resample the same for every seed and knob, from a generator seeded
    with ``seed``); each gives a curve (per seed and knob, the mean over its valid images; then the mean over seeds)
    and its area (``area_under``); the interval is their 2.5 % and 97.5 % quantiles. The seeds' own draws are kept.

    Args:
        x: the curve's x, one per knob.
        values: each image's value per seed and knob.
        valid: whether each value counts.
        seed: the seed of the resampling.

    Returns:
        [low, high], the interval's ends.

    Shape:
        values: seeds x knobs x images (float64); valid: seeds x knobs x images (bool).

    Examples:
        >>> import torch
        >>> from robust.evaluations.curve import bootstrap_area
        >>> values = torch.tensor([[[1.0, 1.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0]]], dtype=torch.float64)
        >>> bootstrap_area([0.0, 1.0], values, torch.ones(1, 2, 4, dtype=torch.bool), seed=0)
        [0.125, 0.875]
    """
    s, k, n = values.shape
    draws = torch.randint(0, n, (BOOTSTRAP, n), generator=torch.Generator().manual_seed(seed))
    ones = torch.ones(BOOTSTRAP, n, dtype=torch.float64)
    weights = torch.zeros_like(ones).scatter_add_(1, draws, ones)  # how often each image is drawn, per resample
    hits = weights @ (values * valid).reshape(s * k, n).T  # B x (S*K)
    total = weights @ valid.reshape(s * k, n).T.double()
    means = (hits / total.clamp_min(1)).view(BOOTSTRAP, s, k).mean(1)
    low, high = torch.quantile(area_under(x, means), torch.tensor([0.025, 0.975], dtype=torch.float64)).tolist()
    return [low, high]


__all__ = ["BOOTSTRAP", "Curve", "area_under", "bootstrap_area"]
