"""The base every evaluation derives from: its options checked when it is built, the sweep owned by the base.

An evaluation is a class registered with ``@register_evaluation``, as an attack is with ``@register_attack``: the
registry reads its class attributes (``name``, ``description`` or the docstring's first line, ``xlabel``,
``ylabel``, ``higher_is_better``, ``chance``, ``uses_pool``, ``note``, ``variants``) and the keywords of its
``__init__`` (the options a preset may set). ``__init__`` checks every option that needs no model and keeps each
as an attribute of the same name; calling the evaluation on a model and data runs the sweep::

    curve = PatchDrop(levels=[0.0, 0.5], seeds=1)(model, data, samples=100)

A subclass writes the hooks, split as kornia's augmentations split drawing parameters from applying them:
``plan(model)`` (what is swept, once the model is known), ``prepare`` (once per batch, optional), ``parameters``
(each image's draws for one knob and seed) and ``measure`` (apply them, one value per image and whether it counts).
Every random choice is drawn per image from ``robust.draws`` by (seed, knob, the image's index in the evaluated
set), so a curve does not depend on the batch size; batches are processed whole (no per-image loop).
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar

import torch
from torch.utils.data import Dataset

from robust.checks import SEED_LIMIT, InputError, check_matches, check_positive_int, check_samples, check_seed
from robust.data.base import iterate
from robust.draws import Draws, Pool
from robust.evaluations.curve import Curve, bootstrap_area
from robust.grid import default_grid, grid_shape
from robust.models.backbone import Backbone, as_backbone
from robust.models.state import eval_mode

#: an evaluation's parameters for one knob and seed: tensors with one row per image, and per-call values (a seed)
Params = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Sweep:
    """What one call of an evaluation sweeps, fixed by its ``plan`` once the model is known.

    Attributes:
        model: the model evaluated.
        knobs: the values swept, one point each (what ``parameters`` receives as ``knob``).
        x: the curve's x at each knob (often the knobs themselves).
        record: the options recorded on the curve (``Curve.params``).
        rows: the cell grid's rows, where the evaluation has a grid.
        cols: the cell grid's columns.

    Examples:
        >>> from robust.evaluations.base import Sweep
        >>> from robust.models import load_model
        >>> sweep = Sweep(load_model("zoo:digits-m/resnet", "cpu"), [0.0, 0.5], [0.0, 0.5], {"grid": 8}, 8, 8)
        >>> sweep.rows * sweep.cols
        64
    """

    model: Backbone
    knobs: list[float]
    x: list[float]
    record: dict
    rows: int = 1
    cols: int = 1


class Evaluation(abc.ABC):
    """The base of every evaluation: a curve of one value per image as a knob sweeps, averaged over seeds.

    A subclass sets ``name``, ``xlabel`` and ``ylabel`` (and ``higher_is_better``, ``chance``, ``variants``...),
    checks its options in ``__init__`` and keeps each as an attribute of the same name, and writes the hooks:
    ``plan(model)`` (the ``Sweep``), optionally ``prepare`` (once per batch), ``parameters`` (each image's random
    choices for one knob and seed, from ``draws``) and ``measure`` (one value per image and whether it counts).
    The base owns the loop: batches, seeds, per-image draws keyed by (seed, knob, the image's index), eval mode,
    and the bootstrap interval of the area. Register it with ``@robust.registry.register_evaluation`` to reach
    presets, the CLI, boards and ``robust.testing``.

    Args:
        seeds: how many seeds each point is measured over (mean and std over them).

    Shape:
        The hooks see a batch: images N x 3 x H x W in [0, 1] on the model's device, y N; ``parameters`` returns
        tensors with N rows; ``measure`` returns two N tensors (the values, and whether each counts).

    Examples:
        >>> from robust import load_dataset, load_model
        >>> from robust.evaluations.base import Evaluation, Sweep, correct
        >>> class Noise(Evaluation):
        ...     name, xlabel, ylabel = "noise", "noise amplitude", "accuracy"
        ...     def __init__(self, *, amplitudes=(0.0, 0.5), **common):
        ...         super().__init__(**common)
        ...         self.amplitudes = list(amplitudes)
        ...     def plan(self, model):
        ...         return Sweep(model, self.amplitudes, self.amplitudes, {"amplitudes": self.amplitudes})
        ...     def parameters(self, sweep, images, y, knob, draws, context):
        ...         return {"noise": knob * (draws.uniform("noise", *images.shape[1:]) - 0.5)}
        ...     def measure(self, sweep, images, y, params):
        ...         return correct(sweep.model, (images + params["noise"]).clamp(0, 1), y)
        >>> curve = Noise(seeds=1)(load_model("zoo:digits-m/resnet", "cpu"), load_dataset("digits-m"), samples=16)
        >>> curve.x, curve.n
        ([0.0, 0.5], 16)
    """

    name: ClassVar[str] = "evaluation"
    description: ClassVar[str] = ""
    xlabel: ClassVar[str] = ""
    ylabel: ClassVar[str] = ""
    higher_is_better: ClassVar[bool] = True  # a larger area means a more robust model
    chance: ClassVar[str | None] = None  # "diagonal" (y = x), "uniform" (1 / classes) or None: drawn on boards
    uses_pool: ClassVar[bool] = False  # draws donors from the evaluated split (a board's key hashes the whole split)
    note: ClassVar[str | None] = None  # how to read the curve, under its table on every board (no figures)
    variants: ClassVar[dict[str, tuple[dict, str]]] = {}  # name -> (options fixed, description)

    def __init__(self, *, seeds: int = 3):
        self.seeds = check_positive_int(seeds, "seeds")

    @property
    def curve_name(self) -> str:
        """The registered name this instance runs as: the variant whose fixed options it has, else ``name``."""
        for variant, (fixed, _) in self.variants.items():
            if all(getattr(self, k) == v for k, v in fixed.items()):
                return variant
        return self.name

    @abc.abstractmethod
    def plan(self, model: Backbone) -> Sweep:
        """The knobs, the curve's x and the recorded options for ``model`` (checking what needs the model)."""

    def prepare(self, sweep: Sweep, images: torch.Tensor, y: torch.Tensor) -> object:
        """Once per batch, shared by every knob and seed (e.g. one Grad-CAM); None by default."""
        return None

    @abc.abstractmethod
    def parameters(self, sweep: Sweep, images: torch.Tensor, y: torch.Tensor, knob: float, draws: Draws,
                   context: object) -> Params:
        """Each image's random choices for ``knob`` under one seed's ``draws`` (tensors with N rows)."""

    @abc.abstractmethod
    def measure(self, sweep: Sweep, images: torch.Tensor, y: torch.Tensor, params: Params
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Apply ``params`` to the N images: one value per image and whether it counts (both N)."""

    def seed_free(self, sweep: Sweep, knob: float) -> bool:
        """Whether no draw changes the point at ``knob`` (nothing dropped or mixed, a fixed order): it is then
        measured under the first seed only and shared by the others, the same values at a fraction of the passes.
        False (every seed measured) by default."""
        return False

    def __call__(self, model: Backbone | torch.nn.Module, data: Dataset, *, samples: int | None = None,
                 batch_size: int = 250, seed: int = 0) -> Curve:
        """The curve over the first ``samples`` images of ``data`` (all by default), seeds ``seed`` to ``seed +
        seeds - 1``: mean and std over seeds of the mean over valid images at each knob, and a bootstrap interval
        of its area over images. A plain ``nn.Module`` takes the data's image size."""
        model = as_backbone(model, data=data)
        check_positive_int(batch_size, "batch_size")
        check_samples(samples, data)
        check_seed(seed)
        if seed + self.seeds > SEED_LIMIT:  # the seeds used are seed, seed + 1, ..., seed + seeds - 1
            raise InputError(f"seed={seed!r} is not valid with seeds={self.seeds}; expected seed + seeds <= 2**64.")
        check_matches(model, data)
        sweep = self.plan(model)
        seed_free = [self.seed_free(sweep, knob) for knob in sweep.knobs]  # measured under the first seed only
        pool, start = Pool(data), 0  # donors from the whole split: an image's draws never depend on ``samples``
        values, valid = [], []  # per batch: seeds x knobs x batch, kept on the model's device until the end
        with eval_mode(model), torch.no_grad():
            for images, y in iterate(data, batch_size, model.device, limit=samples):
                index = torch.arange(start, start + images.shape[0], device=model.device)
                start += images.shape[0]
                context = self.prepare(sweep, images, y)
                batch: list[list[tuple[torch.Tensor, torch.Tensor]]] = []  # seeds x knobs
                for s in range(self.seeds):
                    # A point's draws are keyed by its knob's value: adding a point leaves the others as they were.
                    batch.append([batch[0][i] if s and seed_free[i] else self.measure(sweep, images, y, self.parameters(
                        sweep, images, y, knob, Draws(seed + s, index, pool).child(f"knob={knob!r}"), context))
                        for i, knob in enumerate(sweep.knobs)])
                values.append(torch.stack([torch.stack([v.double() for v, _ in row]) for row in batch]))
                valid.append(torch.stack([torch.stack([m.bool() for _, m in row]) for row in batch]))
        if start == 0:
            raise InputError("data is empty; expected at least one image.")
        values, valid = torch.cat(values, 2).cpu(), torch.cat(valid, 2).cpu()
        means = (values * valid).sum(2) / valid.sum(2).clamp_min(1)  # seeds x knobs
        std = means.std(0, unbiased=True) if self.seeds > 1 else torch.zeros(len(sweep.knobs), dtype=torch.float64)
        return Curve(self.curve_name, sweep.x, means.mean(0).tolist(), std.tolist(), start, self.seeds, self.xlabel,
                     self.ylabel, {**sweep.record, "seed": seed}, self.higher_is_better,
                     bootstrap_area(sweep.x, values, valid, seed))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


def correct(model: Backbone, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Whether ``model`` classifies each image as its label, and that every image counts: a ``measure`` for accuracy.

    Args:
        model: the model.
        x: the images, on the model's device.
        y: the labels.

    Returns:
        (hit, counts): whether each image's arg-max class is its label, and all True (every image counts), as
        ``Evaluation.measure`` returns them.

    Shape:
        x: N x 3 x H x W in [0, 1]; y: N (class indices); returns two N (bool).

    Examples:
        >>> from robust.data import load_dataset
        >>> from robust.evaluations.base import correct
        >>> from robust.models import load_model
        >>> x, y = load_dataset("digits-m").batch(slice(0, 4))
        >>> correct(load_model("zoo:digits-m/resnet", "cpu"), x, y)
        (tensor([ True,  True, False,  True]), tensor([True, True, True, True]))
    """
    return model.logits(x).argmax(1) == y, torch.ones_like(y, dtype=torch.bool)


def check_grid(grid: object) -> int | None:
    """Check a grid option: cells per side, or None for the model's fine grid (``robust.grid.default_grid``).

    Whether the grid divides the image is checked later, once the model is known (``grid_of``).

    Args:
        grid: the option's value.

    Returns:
        ``grid`` itself: a positive int, or None.

    Raises:
        InputError: when ``grid`` is neither None nor a positive integer.

    Examples:
        >>> from robust.evaluations.base import check_grid
        >>> check_grid(None), check_grid(4)
        (None, 4)
        >>> check_grid(0)
        Traceback (most recent call last):
        robust.checks.InputError: grid=0 is not valid; expected a positive integer.
    """
    return None if grid is None else check_positive_int(grid, "grid")


def grid_of(model: Backbone, grid: int | None) -> tuple[int, int, int]:
    """The grid for ``model`` (default: the fine grid of its input size) and its (rows, cols).

    Args:
        model: the model; its ``input_size`` gives the image's H x W.
        grid: cells per side (``check_grid``'s value), or None for ``robust.grid.default_grid`` of the input size.

    Returns:
        (grid, rows, cols): the cells per side and the grid's shape.

    Raises:
        InputError: when ``grid`` does not divide the model's input into equal cells.

    Examples:
        >>> from robust.evaluations.base import grid_of
        >>> from robust.models import load_model
        >>> model = load_model("zoo:digits-m/resnet", "cpu")
        >>> grid_of(model, None), grid_of(model, 4)
        ((8, 8, 8), (4, 4, 4))
    """
    hw = tuple(model.input_size[-2:])
    grid = grid if grid is not None else default_grid(hw)
    return (grid, *grid_shape(grid, hw))


def check_fractions(values: object, name: str) -> list[float]:
    """Check a non-empty list (or tuple) of fractions in [0, 1] and give it as a list of floats.

    Args:
        values: the option's value.
        name: the option's name, for the error message.

    Returns:
        The fractions, as floats.

    Raises:
        InputError: when ``values`` is not a non-empty list or tuple of numbers in [0, 1] (a bool is refused).

    Examples:
        >>> from robust.evaluations.base import check_fractions
        >>> check_fractions((0, 0.5, 1), "levels")
        [0.0, 0.5, 1.0]
        >>> check_fractions([0.5, 2], "levels")
        Traceback (most recent call last):
        robust.checks.InputError: levels=[0.5, 2] is not valid; expected a list of fractions in [0, 1].
    """
    if not isinstance(values, (list, tuple)) or not values or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1 for v in values):
        raise InputError(f"{name}={values!r} is not valid; expected a list of fractions in [0, 1].")
    return [float(v) for v in values]


__all__ = ["Evaluation", "Params", "Sweep", "check_fractions", "check_grid", "correct", "grid_of"]
