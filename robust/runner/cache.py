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
    """A spec naming an in-memory module for this process's cells: ``module:CLASS@WEIGHTS`` (its class's qualified
    name and ``fingerprint_model``), so that the same weights give the same cells in any session."""
    cls = type(module)
    spec = f"module:{cls.__module__}.{cls.__qualname__}@{fingerprint_model(module)}"
    _MODULES[spec] = module
    return spec


def load_model_cached(spec: str, device: str, input_size: tuple[int, ...] | None = None) -> Backbone:
    """The Backbone of ``spec`` on ``device``, loaded once per process while it fits the cache (planning loads it,
    the cells reuse it). ``input_size``: the data's, for a source that does not say (a factory, a module); an
    in-memory module (``module_spec``) stays on its own device and is not copied."""
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
    """Empty the model cache: each run loads its models afresh (a file may have changed since the last run)."""
    _MODELS.clear()
    _WEIGHTS.clear()


def fingerprint_cached(spec: str, device: str, input_size: tuple[int, ...] | None = None) -> str:
    """``fingerprint_model`` of ``load_model_cached(spec, device, input_size)``, computed once while the model stays
    cached."""
    key = (spec, str(device), input_size)
    net = load_model_cached(spec, device, input_size)
    if key not in _WEIGHTS:
        _WEIGHTS[key] = fingerprint_model(net)
    return _WEIGHTS[key]


def load_dataset_cached(name: str, split: str = "test", preprocess: Preprocess | None = None
                        ) -> ImageSet | _Labelled:
    """Dataset ``name``'s ``split`` through ``preprocess`` (a model's: ``Backbone.preprocess``; ignored by a dataset
    of one size), loaded once per process."""
    from robust.data import load_dataset, resizable

    key = (name, split, preprocess if resizable(name) else None)
    if key not in _DATA:
        _DATA[key] = load_dataset(name, split, preprocess=key[2])
    return _DATA[key]


def load_for_cached(name: str, net: Backbone, split: str = "test") -> ImageSet | _Labelled:
    """The ``split`` of dataset ``name`` as model ``net`` takes it (``robust.model_data.load_for``, cached per process:
    its preprocessing, and its own decisions as labels where the dataset has decision labels)."""
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
