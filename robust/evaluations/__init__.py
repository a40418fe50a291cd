"""Evaluations: curves of a model's accuracy (or saliency) as one knob sweeps, with their normalised area.

Each is a class in its own family's module, registered like an attack (``robust.evaluations.base.Evaluation``):
``PatchDrop`` and ``PatchShuffle`` (occlusion), ``PatchMixingCurve`` and ``Selectivity`` (patch selectivity).
Build one with its options and call it on a model and data, or run one by its registered name::

    curve = PatchDrop(levels=[0.0, 0.5], seeds=1)(model, data, samples=100)
    curve = run_evaluation("salient-drop", model, data, samples=100, seeds=1)

Grids scale with the input (``robust.grid.default_grid``: 8 x 8 at 32 px, 14 x 14 at 224 px, as in the paper).
"""

from __future__ import annotations

from torch.utils.data import Dataset

from robust.evaluations.base import Evaluation, Sweep
from robust.evaluations.curve import Curve
from robust.evaluations.mixing import PatchMixingCurve, Selectivity
from robust.evaluations.occlusion import PatchDrop, PatchShuffle
from robust.models.backbone import Backbone
from robust.registry import RUN_KEYS, get


def run_evaluation(name: str, model: Backbone, data: Dataset, **params: object) -> Curve:
    """Run the evaluation registered as ``name`` on ``model`` and ``data``.

    Args:
        name: a registered evaluation or one of its variants (``patch-drop``, ``salient-drop``, ``patch-shuffle``,
            ``patch-mixing``, ``selectivity``...: ``robust presets list`` names them all).
        model: the model: a ``Backbone``, or a plain ``nn.Module`` that takes the data's images as they are.
        data: a dataset of ``(x, y)`` items (``load_dataset``).
        **params: the evaluation's options (``levels``, ``grid``, ``seeds``...), and the run's: ``samples`` (the
            first images of ``data``; default all), ``batch_size`` and ``seed``.

    Returns:
        The curve: its points, their spread over seeds, its normalised area and the area's interval.

    Raises:
        InputError: an unknown name or option, or a bad value.

    Examples:
        >>> from robust import load_dataset, load_model, run_evaluation
        >>> model, data = load_model("zoo:digits-m/resnet", "cpu"), load_dataset("digits-m")
        >>> curve = run_evaluation("patch-drop", model, data, levels=[0.0, 0.5], seeds=1, samples=16)
        >>> curve.x, curve.mean, curve.area
        ([0.0, 0.5], [0.8125, 0.1875], 0.5)
    """
    run = {k: params.pop(k) for k in RUN_KEYS if k in params}
    return get(name, "evaluation").make(**params)(model, data, **run)


__all__ = ["Curve", "Evaluation", "PatchDrop", "PatchMixingCurve", "PatchShuffle", "Selectivity", "Sweep",
           "run_evaluation"]
