"""Occlusion robustness and patch selectivity (protocols section 4), in [0, 1] pixel space before normalisation.

Each evaluation sweeps one knob over a dataset and returns a ``Curve(x, mean, std, n)`` (mean and standard
deviation over seeds, ``n`` images per point) with its normalised area:

- ``patch_drop``: drop a fraction of the grid's cells (``order`` random, or ranked by Grad-CAM mass: ``salient``
  drops the most salient cells first, ``non-salient`` the least), filled with 0, the model's mean colour, noise or
  a constant; accuracy against the fraction dropped (Naseer et al.'s information loss);
- ``patch_shuffle``: accuracy with the cells of each image permuted, for several grids;
- ``patch_mixing``: the patch-mixing attack, a fraction r of the cells replaced by the same cells of a donor image
  of another class (drawn from the whole evaluated set); accuracy against the original label: the selectivity
  curve;
- ``selectivity``: on those patch-mixed images, the fraction of the model's positive saliency for the original
  class that lies in the donor's cells (Grad-CAM, or a RISE-style contrastive map); lower is more selective.

Grids scale with the input: ``default_grid`` gives 8 x 8 (fine) and 4 x 4 (coarse) at 32 px, 14 x 14 and 7 x 7 at
224 px, as in the paper. Every random choice (cells, fill noise, permutation, donor) is drawn per image from
``robust.draws`` by (seed, level, the image's index in the evaluated set), so a curve does not depend on the batch
size; batches are processed whole (no per-image loop).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable, Sequence

import torch
from torch.utils.data import Dataset

from robust.cam import cam
from robust.checks import (
    SEED_LIMIT,
    InputError,
    check_keys,
    check_like,
    check_matches,
    check_positive_int,
    check_samples,
    check_seed,
)
from robust.data.base import iterate
from robust.draws import Draws, Pool
from robust.grid import cell_mask, cell_sums, grid_shape, random_cells, shuffle_cells, top_cells
from robust.models.backbone import Backbone, as_backbone
from robust.models.state import eval_mode
from robust.registry import get, register_evaluation

FILLS = ("zero", "mean", "noise")
ORDERS = ("random", "salient", "non-salient")
SALIENCY = ("gradcam", "rise")


@dataclasses.dataclass
class Curve:
    """A measured curve: ``mean`` and ``std`` of ``y`` over seeds at each ``x``, ``n`` images per point;
    ``area_interval``: a 95 % bootstrap interval of the area over images (the seeds' draws kept)."""

    name: str
    x: list[float]
    mean: list[float]
    std: list[float]
    n: int
    seeds: int
    xlabel: str
    ylabel: str
    params: dict = dataclasses.field(default_factory=dict)
    higher_is_better: bool = True  # a larger area means a more robust model (set from the registry)
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
    """Trapezoid area under ``y`` (... x K) over ``x`` (K), divided by the x range; ``y`` itself for one point."""
    if len(x) == 1:
        return y[..., 0]
    xs = torch.tensor(x, dtype=torch.float64)
    return ((xs[1:] - xs[:-1]) * (y[..., 1:] + y[..., :-1]) / 2).sum(-1) / (xs[-1] - xs[0])


BOOTSTRAP = 1000  # resamples of the images for the area's interval


def _bootstrap_area(x: Sequence[float], values: torch.Tensor, valid: torch.Tensor, seed: int) -> list[float]:
    """95 % percentile interval of the area when the images are resampled with replacement (``BOOTSTRAP`` times,
    from a generator seeded with ``seed``): ``values`` and ``valid`` are seeds x knobs x images."""
    s, k, n = values.shape
    g = torch.Generator().manual_seed(seed)
    draws = torch.randint(0, n, (BOOTSTRAP, n), generator=g)
    weights = torch.zeros(BOOTSTRAP, n, dtype=torch.float64).scatter_add_(1, draws, torch.ones(BOOTSTRAP, n,
                                                                                             dtype=torch.float64))
    hits = weights @ (values * valid).reshape(s * k, n).T  # B x (S*K)
    total = weights @ valid.reshape(s * k, n).T.double()
    means = (hits / total.clamp_min(1)).view(BOOTSTRAP, s, k).mean(1)
    low, high = torch.quantile(area_under(x, means), torch.tensor([0.025, 0.975], dtype=torch.float64)).tolist()
    return [low, high]


def default_grid(image_hw: tuple[int, int], coarse: bool = False) -> int:
    """Cells per side: 14 (7 coarse) at 224 px, 8 (4 coarse) at 32 px: about 16-px cells from 112 px up (4-px ones
    below), and half as many coarse, each the nearest count that divides both sides into equal cells (15 and 8 at
    240 px, 13 and 5 at 260 px)."""
    h = min(image_hw)
    target = h / 16 if h >= 112 else max(1.0, h / 4)
    fine = _nearest_divisor(image_hw, target)
    return _nearest_divisor(image_hw, fine / 2) if coarse else fine


def _nearest_divisor(image_hw: tuple[int, int], target: float) -> int:
    """The number of cells per side nearest ``target`` that divides both sides (the larger one on a tie)."""
    common = [k for k in range(1, min(image_hw) + 1) if image_hw[0] % k == 0 and image_hw[1] % k == 0]
    return min(common, key=lambda k: (abs(k - target), -k))


def _check(model: Backbone | torch.nn.Module, data: Dataset, seeds: int, samples: int | None, batch_size: int,
           seed: int = 0) -> Backbone:
    """The arguments every evaluation takes, checked; the model as a Backbone (a plain nn.Module takes the data's
    image size)."""
    model = as_backbone(model, data=data)
    check_positive_int(seeds, "seeds")
    check_positive_int(batch_size, "batch_size")
    check_samples(samples, data)
    check_seed(seed)
    if seed + seeds > SEED_LIMIT:  # the seeds used are seed, seed + 1, ..., seed + seeds - 1
        raise InputError(f"seed={seed!r} is not valid with seeds={seeds}; expected seed + seeds <= 2**64.")
    return model


def _grid(model: Backbone, grid: int | None) -> tuple[int, int, int]:
    """The grid (default: the fine grid for the model's input size) and its (rows, cols)."""
    hw = tuple(model.input_size[-2:])
    grid = grid if grid is not None else default_grid(hw)
    return (grid, *grid_shape(grid, hw))


def _fractions(values: Sequence[float], name: str, low: float = 0.0, high: float = 1.0) -> list[float]:
    values = list(values)
    if not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and low <= v <= high
                             for v in values):
        raise InputError(f"{name}={values!r} is not valid; expected fractions in [{low}, {high}].")
    return [float(v) for v in values]


def _fill(fill: str | float, model: Backbone, x: torch.Tensor, draws: Draws) -> torch.Tensor:
    if fill == "zero":
        return torch.zeros((), device=x.device, dtype=x.dtype)
    if fill == "mean":
        return torch.tensor(model.mean, device=x.device, dtype=x.dtype)[None, :, None, None]
    if fill == "noise":
        return draws.uniform("fill", *x.shape[1:]).to(x.dtype)
    return torch.full((), float(fill), device=x.device, dtype=x.dtype)


def _check_fill(fill: str | float) -> None:
    if isinstance(fill, str):
        if fill not in FILLS:
            raise InputError(f"fill={fill!r} is not valid; expected one of {FILLS} or a value in [0, 1].")
    elif not isinstance(fill, (int, float)) or isinstance(fill, bool) or not 0 <= fill <= 1:
        raise InputError(f"fill={fill!r} is not valid; expected one of {FILLS} or a value in [0, 1].")


def _sweep(name: str, model: Backbone, data: Dataset, knobs: list[float], seeds: int, samples: int | None,
           batch_size: int, measure: Callable, params: dict, seed: int, prepare: Callable | None = None,
           x: list[float] | None = None) -> Curve:
    """Run ``measure(x, y, knob, draws, context) -> (values, valid)`` (one value per image, and whether it counts)
    on every batch, knob and seed, where ``draws`` are the batch's per-image draws for that seed and knob and
    ``context = prepare(x, y)`` once per batch. The curve at ``x`` (default: the knobs): mean and std over seeds of
    the mean over valid images, and a bootstrap interval of its area over images; labelled as the evaluation
    ``name`` is registered (the caller has checked the arguments with ``_check``)."""
    check_matches(model, data)
    pool, start = Pool(data), 0  # donors from the whole split: an image's draws never depend on ``samples``
    values, valid = [], []  # per batch: seeds x knobs x batch, kept on the model's device until the end
    with eval_mode(model), torch.no_grad():
        for images, y in iterate(data, batch_size, model.device, limit=samples):
            index = torch.arange(start, start + images.shape[0], device=model.device)
            start += images.shape[0]
            context = prepare(images, y) if prepare is not None else None
            # A point's draws are keyed by its knob's value: adding a point to a curve leaves the others as they were.
            batch = [[measure(images, y, knob, Draws(seed + s, index, pool).child(f"knob={knob!r}"), context)
                      for knob in knobs] for s in range(seeds)]
            values.append(torch.stack([torch.stack([v.double() for v, _ in row]) for row in batch]))
            valid.append(torch.stack([torch.stack([m.bool() for _, m in row]) for row in batch]))
    if start == 0:
        raise InputError("data is empty; expected at least one image.")
    values, valid = torch.cat(values, 2).cpu(), torch.cat(valid, 2).cpu()
    means = (values * valid).sum(2) / valid.sum(2).clamp_min(1)  # seeds x knobs
    std = means.std(0, unbiased=True) if seeds > 1 else torch.zeros(len(knobs), dtype=torch.float64)
    x = list(knobs) if x is None else x
    method = get(name, "evaluation")
    return Curve(name, x, means.mean(0).tolist(), std.tolist(), start, seeds, method.xlabel, method.ylabel,
                 {**params, "seed": seed}, method.higher_is_better, _bootstrap_area(x, values, valid, seed))


def _correct(model: Backbone, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return model.logits(x).argmax(1) == y, torch.ones_like(y, dtype=torch.bool)


@register_evaluation(
    "patch-drop", description="Accuracy with a fraction of the grid's cells dropped at random",
    xlabel="fraction of cells dropped", ylabel="accuracy", higher_is_better=True, chance="uniform",
    variants={"salient-drop": ({"order": "salient"}, "Accuracy with the most salient cells (Grad-CAM) dropped first"),
              "non-salient-drop": ({"order": "non-salient"},
                                   "Accuracy with the least salient cells (Grad-CAM) dropped first")})
def patch_drop(model: Backbone, data: Dataset, *, grid: int | None = None, levels: Sequence[float] | None = None,
               order: str = "random", fill: str | float = "zero", seeds: int = 3, samples: int | None = None,
               batch_size: int = 250, seed: int = 0) -> Curve:
    """Accuracy with a fraction of the ``grid`` x ``grid`` cells dropped: ``levels`` (default 0, 0.1, ..., 0.9;
    each rounded down to whole cells, k * G^2 // 10 as in Naseer et al.), cells chosen at random or by Grad-CAM
    mass of the predicted class on the clean image (``salient`` first or ``non-salient`` first)."""
    model = _check(model, data, seeds, samples, batch_size, seed)
    if order not in ORDERS:
        raise InputError(f"order={order!r} is not valid; expected one of {ORDERS}.")
    _check_fill(fill)
    levels = _fractions(levels if levels is not None else [k / 10 for k in range(10)], "levels", 0, 1)
    grid, rows, cols = _grid(model, grid)
    cells_total = rows * cols

    def prepare(x, y):  # one Grad-CAM per batch, shared by every level and seed
        return None if order == "random" else cell_sums(cam(model, x, normalize=False), rows, cols)

    def measure(x, y, level, draws, mass):
        count = math.floor(level * cells_total + 1e-9)
        if mass is None:
            cells = random_cells(draws.uniform("cells", cells_total), rows, cols, count)
        else:
            cells = top_cells(mass, count, largest=order == "salient")
        dropped = torch.where(cell_mask(cells, tuple(x.shape[-2:])), _fill(fill, model, x, draws), x)
        return _correct(model, dropped, y)

    name = "patch-drop" if order == "random" else f"{order}-drop"
    dropped = [math.floor(v * cells_total + 1e-9) / cells_total for v in levels]  # what is actually dropped
    return _sweep(name, model, data, levels, seeds, samples, batch_size, measure,
                  {"grid": grid, "order": order, "fill": fill}, seed, prepare, x=dropped)


@register_evaluation("patch-shuffle", description="Accuracy with each image's grid cells randomly permuted",
                     xlabel="cells per side", ylabel="accuracy", higher_is_better=True, chance="uniform")
def patch_shuffle(model: Backbone, data: Dataset, *, grids: Sequence[int] | None = None, seeds: int = 3,
                  samples: int | None = None, batch_size: int = 250, seed: int = 0) -> Curve:
    """Accuracy with each image's cells randomly permuted, for each grid (default 1, 2, 4 and the fine grid;
    grid 1 is the clean image)."""
    model = _check(model, data, seeds, samples, batch_size, seed)
    hw = tuple(model.input_size[-2:])
    grids = list(grids) if grids is not None else sorted({1, 2, 4, default_grid(hw)})
    for g in grids:
        grid_shape(g, hw, "grids")

    def measure(x, y, g_side, draws, _):
        side = int(g_side)
        return _correct(model, shuffle_cells(x, side, side, draws.uniform("order", side * side)), y)

    return _sweep("patch-shuffle", model, data, [float(g) for g in grids], seeds, samples, batch_size, measure,
                  {"grids": grids}, seed)


def mix_cells(x: torch.Tensor, y: torch.Tensor, ratio: float, rows: int, cols: int, draws: Draws
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The patch-mixing attack on a batch: round(ratio * cells) random cells of each image replaced by the same
    cells of a donor of another class, drawn per image from ``draws.pool`` (the evaluated set). Returns mixed
    images, the donor cells (N x rows x cols), donor indices in the pool and which images had a donor (images
    without one are left out of the counts)."""
    donor, valid = draws.other_class("donor", y)
    cells = random_cells(draws.uniform("cells", rows * cols), rows, cols, round(ratio * rows * cols))
    mixed = torch.where(cell_mask(cells, tuple(x.shape[-2:])), draws.pool.images(donor, x.device).to(x.dtype), x)
    return mixed, cells, donor, valid


@register_evaluation("patch-mixing", description="Accuracy with a fraction of cells taken from an image of "
                     "another class (the selectivity curve)", xlabel="fraction of cells from another class",
                     ylabel="accuracy", higher_is_better=True, chance="uniform", pool=True)
def patch_mixing(model: Backbone, data: Dataset, *, grid: int | None = None,
                 ratios: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5), seeds: int = 3,
                 samples: int | None = None, batch_size: int = 250, seed: int = 0) -> Curve:
    """The selectivity curve: accuracy (original labels) against the fraction r of cells taken from a donor."""
    model = _check(model, data, seeds, samples, batch_size, seed)
    ratios = _fractions(ratios, "ratios")
    grid, rows, cols = _grid(model, grid)

    def measure(x, y, r, draws, _):
        mixed, _, _, valid = mix_cells(x, y, r, rows, cols, draws)
        return model.logits(mixed).argmax(1) == y, valid

    return _sweep("patch-mixing", model, data, ratios, seeds, samples, batch_size, measure, {"grid": grid}, seed,
                  x=_mixed_fractions(ratios, rows * cols))


def _mixed_fractions(ratios: list[float], cells: int) -> list[float]:
    """The fractions actually mixed: ``mix_cells`` replaces round(r * cells) cells (areas are computed on them)."""
    return [round(r * cells) / cells for r in ratios]


def rise(model: Backbone, x: torch.Tensor, classes: torch.Tensor, seed: int, masks: int = 64,
         cells: int = 7, p: float = 0.5, chunk: int = 2 << 20) -> torch.Tensor:
    """RISE saliency (Petsiuk et al. 2018) of each image for each of its classes: N x K x H x W for N x K
    ``classes``: sum over ``masks`` random masks (``cells`` x ``cells`` Bernoulli(``p``) grids, bilinearly upsampled
    and randomly shifted) of the class probability on the masked image times the mask, over ``masks * p``. The
    masks are a function of ``seed`` alone: the same for every image and batch. The masked images are made and
    scored ``chunk`` pixels at a time (2,048 images at 32 px, 41 at 224 px), so memory does not grow with
    ``masks``."""
    n, _, h, w = x.shape
    ch, cw = math.ceil(h / cells), math.ceil(w / cells)
    mask_draws = Draws(seed, torch.arange(masks, device=x.device), Pool((x[:0], classes[:0, 0])))
    grid = (mask_draws.uniform("rise-grid", 1, cells, cells) < p).float()
    up = torch.nn.functional.interpolate(grid, size=((cells + 1) * ch, (cells + 1) * cw), mode="bilinear",
                                         align_corners=False)
    dy, dx = mask_draws.integers("rise-shift-y", ch), mask_draws.integers("rise-shift-x", cw)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, :]
    m = up[torch.arange(masks)[:, None, None], 0, rows, cols].to(x.device, x.dtype)  # masks x H x W
    probs, step = [], max(1, chunk // (h * w))
    with torch.no_grad(), eval_mode(model):
        for start in range(0, n * masks, step):  # image i // masks under mask i % masks, in that order
            i = torch.arange(start, min(start + step, n * masks), device=x.device)
            probs.append(model.logits(x[i // masks] * m[i % masks, None]).float().softmax(1))
    prob = torch.cat(probs).view(n, masks, -1).gather(2, classes[:, None, :].expand(n, masks, -1))  # N x M x K
    return torch.einsum("nmk,mhw->nkhw", prob, m.float()) / (masks * p)


@register_evaluation(
    "selectivity", description="Share of the original class's Grad-CAM mass in the donor's cells of patch-mixed "
    "images (lower is more selective)", xlabel="fraction of cells from another class",
    ylabel="out-of-context saliency share", higher_is_better=False, chance="diagonal", pool=True,
    note="This share says what the saliency map shows, not how selective the model is: read the patch-mixing curve "
    "as the selectivity measure (at 224 px the share did not separate a model from its Patch-Mixing twin where the "
    "patch-mixing curve did: docs/reports/2026-11-26-selectivity-224.md).",
    variants={"selectivity-rise": ({"saliency": "rise"}, "Share of the contrastive RISE saliency in the donor's "
                                   "cells of patch-mixed images (lower is more selective)")})
def selectivity(model: Backbone, data: Dataset, *, grid: int | None = None,
                ratios: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5), saliency: str = "gradcam", masks: int = 64,
                seeds: int = 3, samples: int | None = None, batch_size: int = 250, seed: int = 0) -> Curve:
    """Out-of-context saliency mass: on patch-mixed images, the fraction of the positive saliency for the original
    class that falls in the donor's cells (lower = more selective). ``saliency``: ``gradcam`` (Grad-CAM of the
    original class), or ``rise`` (RISE of the original class minus RISE of the donor's class, positive part, with
    ``masks`` random masks)."""
    model = _check(model, data, seeds, samples, batch_size, seed)
    if saliency not in SALIENCY:
        raise InputError(f"saliency={saliency!r} is not valid; expected one of {SALIENCY}.")
    check_positive_int(masks, "masks")
    ratios = _fractions(ratios, "ratios")
    grid, rows, cols = _grid(model, grid)

    def measure(x, y, r, draws, _):
        mixed, cells, donor, valid = mix_cells(x, y, r, rows, cols, draws)
        if saliency == "gradcam":
            with torch.enable_grad():
                maps = cam(model, mixed, y, normalize=False)
        else:
            both = rise(model, mixed, torch.stack([y, draws.pool.by_class(y.device)[0][donor]], 1), draws.seed,
                        masks=masks)
            maps = (both[:, 0] - both[:, 1]).clamp_min(0)
        mass = cell_sums(maps, rows, cols)
        share = (mass * cells).flatten(1).sum(1) / mass.flatten(1).sum(1).clamp_min(1e-12)
        return share, valid & (mass.flatten(1).sum(1) > 0)

    return _sweep("selectivity" if saliency == "gradcam" else f"selectivity-{saliency}", model, data, ratios, seeds,
                  samples, batch_size, measure,
                  {"grid": grid, "saliency": saliency, **({"masks": masks} if saliency == "rise" else {})}, seed,
                  x=_mixed_fractions(ratios, rows * cols))


def _optional(check: Callable[[object], object]) -> Callable[[object], object]:
    return lambda v: None if v is None else check(v)


def _positive_ints(values: object, name: str) -> None:
    if not isinstance(values, (list, tuple)) or not values or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
        raise InputError(f"{name}={values!r} is not valid; expected a list of positive integers.")


def _sequence_of_fractions(values: object, name: str) -> None:
    if not isinstance(values, (list, tuple)):
        raise InputError(f"{name}={values!r} is not valid; expected a list of fractions in [0, 1].")
    _fractions(values, name)


def _choice(choices: tuple[str, ...], name: str) -> Callable[[object], None]:
    def check(value: object) -> None:
        if value not in choices:
            raise InputError(f"{name}={value!r} is not valid; expected one of {choices}.")
    return check


def _positive(name: str) -> Callable[[object], object]:
    return lambda value: check_positive_int(value, name)


#: value checks that need no model or data, by parameter name (the others are checked by their default's type)
_VALUE_CHECKS: dict[str, Callable[[object], object]] = {
    "grid": _optional(_positive("grid")), "grids": _optional(lambda v: _positive_ints(v, "grids")),
    "levels": _optional(lambda v: _sequence_of_fractions(v, "levels")),
    "ratios": lambda v: _sequence_of_fractions(v, "ratios"), "order": _choice(ORDERS, "order"),
    "fill": _check_fill, "saliency": _choice(SALIENCY, "saliency"), "masks": _positive("masks"),
    "seeds": _positive("seeds"),
}


def check_params(name: str, params: dict, where: str | None = None) -> None:
    """Refuse, before any work, a key that evaluation ``name`` does not take (or that the run sets) and a value
    of the wrong type or outside its range, as far as that can be told without the model and data."""
    where = where or f"evaluation {name!r}"
    valid = get(name, "evaluation").params()
    if not isinstance(params, dict):
        raise InputError(f"{where}: params={params!r} is not valid; expected a table.")
    check_keys(params, valid, where)
    for key, value in params.items():
        try:
            if key in _VALUE_CHECKS:
                _VALUE_CHECKS[key](value)
            else:
                check_like(value, valid[key].default, key)
        except ValueError as e:
            raise InputError(f"{where}: {e}") from None


def run_evaluation(name: str, model: Backbone, data: Dataset, **params: object) -> Curve:
    """The evaluation registered as ``name`` (see ``robust.registry``) with ``params``; the curve says which
    direction is better."""
    method = get(name, "evaluation")
    if fixed := sorted(set(method.fixed) & set(params)):
        raise InputError(f"evaluation {name!r} does not take the parameters {sorted(params)}: {fixed[0]!r} is fixed "
                         f"by the evaluation ({fixed[0]}={method.fixed[fixed[0]]!r}).")
    try:  # the parameters against the signature: a TypeError raised inside the evaluation is a bug, not bad input
        inspect.signature(method.build).bind(model, data, **method.fixed, **params)
    except TypeError as e:
        raise InputError(f"evaluation {name!r} does not take the parameters {sorted(params)}: {e}") from None
    curve = method.build(model, data, **method.fixed, **params)
    return dataclasses.replace(curve, higher_is_better=method.higher_is_better)


__all__ = ["FILLS", "ORDERS", "SALIENCY", "Curve", "check_params", "default_grid", "mix_cells",
           "patch_drop", "patch_mixing", "patch_shuffle", "rise", "run_evaluation", "selectivity"]
