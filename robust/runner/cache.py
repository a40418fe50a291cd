"""Per-process caches of what a board's cells share, named by what they do: a model loads once per run
(``load_model_cached``, least recently used out past ``MODEL_CACHE_BYTES``), its weights are hashed once
(``fingerprint_cached``), a dataset split loads once (``load_dataset_cached``) and is labelled once per model where
its labels are the model's own decisions (``load_for_cached``)."""

from __future__ import annotations

import functools
import weakref
from collections import OrderedDict
from typing import TYPE_CHECKING

import torch

from robust.runner.keys import fingerprint_data, fingerprint_model

if TYPE_CHECKING:
    from robust.data.base import ImageSet
    from robust.data.external import _Labelled
    from robust.data.preprocess import Preprocess
    from robust.models.backbone import Backbone

#: per-process caches: (spec, device, input size) -> Backbone, least recently used first, and its weights' fingerprint
_MODELS: OrderedDict[tuple, Backbone] = OrderedDict()
_WEIGHTS: dict[tuple, str] = {}
MODEL_CACHE_BYTES = 2 * 2**30  # parameters and buffers kept loaded: a board's models load once per run
_DATA: dict[tuple, ImageSet | _Labelled] = {}
#: a model's decision-labelled copies of the cached sets, by the set's id (held while the model is)
_DECIDED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _nbytes(net: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in net.state_dict().values())


#: in-memory models handed to measure(), by the spec that names them (held while the caller holds them)
_MODULES: weakref.WeakValueDictionary[str, torch.nn.Module] = weakref.WeakValueDictionary()


def module_spec(module: torch.nn.Module) -> str:
    """A spec naming an in-memory module for this process's cells: ``module:CLASS@WEIGHTS``.

    ``CLASS`` is its class's qualified name and ``WEIGHTS`` its ``fingerprint_model``, so that the same weights give
    the same cells in any session. The module is remembered under the spec (while the caller holds it), so that
    ``load_model_cached`` finds it.

    Args:
        module: the model.

    Returns:
        The spec.

    Examples:
        >>> import torch
        >>> from robust.runner.cache import module_spec
        >>> net = torch.nn.Linear(2, 1)
        >>> _ = torch.nn.init.zeros_(net.weight), torch.nn.init.zeros_(net.bias)
        >>> module_spec(net)
        'module:torch.nn.modules.linear.Linear@01f9bff7258c532d'
    """
    cls = type(module)
    spec = f"module:{cls.__module__}.{cls.__qualname__}@{fingerprint_model(module)}"
    _MODULES[spec] = module
    return spec


def load_model_cached(spec: str, device: str, input_size: tuple[int, ...] | None = None) -> Backbone:
    """The Backbone of ``spec`` on ``device``, loaded once per process while it fits the cache (planning loads it, the
    cells reuse it).

    Models are kept least recently used first; past ``MODEL_CACHE_BYTES`` of parameters and buffers the oldest are
    dropped (the newest always stays). An in-memory module (``module_spec``) stays on its own device and is not
    copied.

    Args:
        spec: a load spec (``zoo:...``, ``file:...``, a factory, or a ``module_spec``).
        device: where to load it (part of the cache's key).
        input_size: the data's image size, for a source that does not say (a factory, a module); part of the key.

    Returns:
        The loaded model (the same object on each call while it stays cached).

    Examples:
        >>> from robust.runner.cache import load_model_cached
        >>> net = load_model_cached("zoo:digits-m/resnet", "cpu")
        >>> type(net).__name__, net is load_model_cached("zoo:digits-m/resnet", "cpu")
        ('Backbone', True)
    """
    from robust.models import load_model

    key = (spec, str(device), input_size)
    if key not in _MODELS:
        if spec in _MODULES:
            _MODELS[key] = load_model(_MODULES[spec], input_size=input_size)
        else:
            _MODELS[key] = load_model(spec, device=device, input_size=input_size)
        while len(_MODELS) > 1 and sum(_nbytes(m) for m in _MODELS.values()) > MODEL_CACHE_BYTES:
            _WEIGHTS.pop(_MODELS.popitem(last=False)[0], None)
    _MODELS.move_to_end(key)
    return _MODELS[key]


def forget_models() -> None:
    """Empty the model cache and its fingerprints: each run loads its models afresh (a file may have changed since the
    last run).

    The dataset caches are kept.

    Examples:
        >>> from robust.runner.cache import forget_models, load_model_cached
        >>> net = load_model_cached("zoo:digits-m/resnet", "cpu")
        >>> forget_models()
        >>> net is load_model_cached("zoo:digits-m/resnet", "cpu")
        False
    """
    _MODELS.clear()
    _WEIGHTS.clear()


def fingerprint_cached(spec: str, device: str, input_size: tuple[int, ...] | None = None) -> str:
    """``fingerprint_model`` of ``load_model_cached(spec, device, input_size)``, computed once while the model stays
    cached.

    Args:
        spec: a load spec.
        device: where the model is loaded.
        input_size: the data's image size, for a source that does not say.

    Returns:
        The weights' fingerprint (16 hex digits).

    Examples:
        >>> from robust.runner.cache import fingerprint_cached, load_model_cached
        >>> from robust.runner.keys import fingerprint_model
        >>> key = fingerprint_cached("zoo:digits-m/resnet", "cpu")
        >>> key == fingerprint_model(load_model_cached("zoo:digits-m/resnet", "cpu")), len(key)
        (True, 16)
    """
    key = (spec, str(device), input_size)
    net = load_model_cached(spec, device, input_size)
    if key not in _WEIGHTS:
        _WEIGHTS[key] = fingerprint_model(net)
    return _WEIGHTS[key]


def load_dataset_cached(name: str, split: str = "test", preprocess: Preprocess | None = None
                        ) -> ImageSet | _Labelled:
    """Dataset ``name``'s ``split`` through ``preprocess``, loaded once per process.

    Args:
        name: the dataset's name (``robust.data.load_dataset``).
        split: ``test`` or ``train``.
        preprocess: a model's preprocessing (``Backbone.preprocess``); ignored by a dataset of one size.

    Returns:
        The dataset (the same object on each call with the same arguments).

    Examples:
        >>> from robust.runner.cache import load_dataset_cached
        >>> data = load_dataset_cached("digits-m")
        >>> type(data).__name__, len(data), data is load_dataset_cached("digits-m")
        ('ImageSet', 1000, True)
    """
    from robust.data import load_dataset, resizable

    key = (name, split, preprocess if resizable(name) else None)
    if key not in _DATA:
        _DATA[key] = load_dataset(name, split, preprocess=key[2])
    return _DATA[key]


def load_for_cached(name: str, net: Backbone, split: str = "test") -> ImageSet | _Labelled:
    """The ``split`` of dataset ``name`` as model ``net`` takes it: ``robust.model_data.load_for``, cached per process.

    The split goes through the model's preprocessing; where the dataset has decision labels, the model's own
    decisions become its labels (computed once per model and set, held while the model is).

    Args:
        name: the dataset's name.
        net: the model.
        split: ``test`` or ``train``.

    Returns:
        The dataset as the model takes it (the cached split itself when it needs no labelling).

    Examples:
        >>> from robust.runner.cache import load_dataset_cached, load_for_cached, load_model_cached
        >>> net = load_model_cached("zoo:digits-m/resnet", "cpu")
        >>> load_for_cached("digits-m", net) is load_dataset_cached("digits-m")
        True
    """
    from robust.model_data import decision_labels, takes_decisions

    data = load_dataset_cached(name, split, getattr(net, "preprocess", None))
    if not takes_decisions(data):
        return data
    decided = _DECIDED.setdefault(net, {})
    if id(data) not in decided:
        decided[id(data)] = decision_labels(net, data)
    return decided[id(data)]


@functools.cache
def fingerprint_train_split(name: str, preprocess: Preprocess | None) -> str:
    """The training split's hash, once per process (planning asks for it for every trained-attack cell)."""
    return fingerprint_data(load_dataset_cached(name, "train", preprocess))


__all__ = ["MODEL_CACHE_BYTES", "fingerprint_cached", "fingerprint_train_split", "forget_models", "load_dataset_cached",
           "load_for_cached", "load_model_cached", "module_spec"]
