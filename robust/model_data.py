"""A dataset as a model takes it: through the model's own preprocessing, and labelled by the model's own decisions
where the dataset has decision labels (``imagenet-crops``). Above both ``robust.data`` and ``robust.models``, which
do not import each other's workings for it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from robust.data import label_source, load_dataset, resizable
from robust.data.base import ImageSet
from robust.data.photos import DECISION
from robust.models.state import eval_mode

if TYPE_CHECKING:
    from robust.data.external import _Labelled


def load_for(model: object, name: str, split: str = "test") -> ImageSet | _Labelled:
    """``load_dataset(name, split)`` as ``model`` takes it: through its own preprocessing (``Backbone.preprocess``:
    its timm / torchvision resize, crop and interpolation) when the dataset is photos resized for a model, and
    labelled by its own clean top-1 when the dataset has decision labels (``imagenet-crops``).

    >>> from robust.models import load_model
    >>> load_for(load_model("zoo:digits-m/resnet"), "digits-m").image_size  # doctest: +SKIP
    (3, 32, 32)
    """
    preprocess = getattr(model, "preprocess", None)
    data = load_dataset(name, split, preprocess=preprocess if resizable(name) else None)
    return decision_labels(model, data) if takes_decisions(data) else data


def takes_decisions(data: object) -> bool:
    """Whether ``data`` is labelled by each model's own clean top-1 (``imagenet-crops``), so that a model takes it
    through ``decision_labels``."""
    return label_source(data) == DECISION


def decision_labels(model: torch.nn.Module, data: ImageSet, batch_size: int = 64) -> ImageSet:
    """``data`` labelled by ``model``'s clean top-1 on each image (batched, in eval mode, model left as found)."""
    if not isinstance(data, ImageSet):
        raise TypeError(f"data must be an in-memory ImageSet, got {type(data).__name__}.")
    device = next(model.parameters()).device
    with eval_mode(model), torch.no_grad():
        top1 = torch.cat([model(x).argmax(1).cpu() for x, _ in data.batches(batch_size, device)])
    return ImageSet(data.images, top1, data.class_names, data.name,
                    {**data.meta, "labels": DECISION, "labelled_by": getattr(model, "name", "model")})


__all__ = ["decision_labels", "load_for", "takes_decisions"]
