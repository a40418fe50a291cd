"""A dataset as a model takes it: through the model's own preprocessing, and labelled by the model's own decisions
where the dataset has decision labels (``imagenet-crops``). Above both ``robust.data`` and ``robust.models``, which
do not import each other's workings for it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from robust.checks import InputError, InputTypeError
from robust.data import label_source, load_dataset, resizable
from robust.data.base import ImageSet
from robust.data.photos import DECISION
from robust.models.state import eval_mode

if TYPE_CHECKING:
    from robust.data.external import _Labelled


def load_for(model: object, name: str, split: str = "test") -> ImageSet | _Labelled:
    """Load ``load_dataset(name, split)`` as ``model`` takes it.

    Through the model's own preprocessing (``Backbone.preprocess``: its timm / torchvision resize, crop and
    interpolation) when the dataset is photos resized for a model (``robust.data.resizable``), and labelled by its
    own clean top-1 when the dataset has decision labels (``imagenet-crops``, through ``decision_labels``).

    Args:
        model: the model (a ``Backbone``; only its ``preprocess``, when it has one, and its decisions are used).
        name: a dataset name as ``load_dataset`` takes it.
        split: the split (``test`` by default).

    Returns:
        The dataset.

    Raises:
        InputError: what ``load_dataset`` refuses.

    Examples:
        >>> from robust.model_data import load_for
        >>> from robust.models import load_model
        >>> load_for(load_model("zoo:digits-m/resnet", "cpu"), "digits-m")
        ImageSet('digits-m', n=1000, size=(3, 32, 32), classes=10)
    """
    preprocess = getattr(model, "preprocess", None)
    data = load_dataset(name, split, preprocess=preprocess if resizable(name) else None)
    return decision_labels(model, data) if takes_decisions(data) else data


def takes_decisions(data: object) -> bool:
    """Whether ``data`` is labelled by each model's own clean top-1 (``imagenet-crops``).

    Such a set is labelled per model: a model takes it through ``decision_labels`` (``load_for`` does that).

    Args:
        data: any dataset; its ``meta["labels"]`` is read (``robust.data.label_source``).

    Returns:
        True when its labels are ``'decision'``.

    Examples:
        >>> import torch
        >>> from robust.data import ImageSet, load_dataset
        >>> from robust.model_data import takes_decisions
        >>> takes_decisions(load_dataset("digits-m"))
        False
        >>> takes_decisions(ImageSet(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), torch.tensor([0]), ["a"], "crops",
        ...                          meta={"labels": "decision"}))
        True
    """
    return label_source(data) == DECISION


def decision_labels(model: torch.nn.Module, data: ImageSet, batch_size: int = 64) -> ImageSet:
    """Label ``data`` by ``model``'s clean top-1 on each image.

    Batched on the model's device (that of its first parameter), in eval mode and without gradients; every module's
    training flag is given back afterwards. The images, class names and name stay; ``meta`` says ``labels:
    'decision'`` and ``labelled_by`` the model's ``name`` (``'model'`` when it has none).

    Args:
        model: the classifier (a ``Backbone``, or a module that takes the images as they are).
        data: the images.
        batch_size: the images per forward pass.

    Returns:
        A new ``ImageSet`` of the same images with the model's decisions as labels.

    Raises:
        TypeError: ``data`` is not an ``ImageSet``.
        InputError: the model does not give one logit per class of the data.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> from robust.data import ImageSet
        >>> from robust.model_data import decision_labels
        >>> data = ImageSet(torch.zeros(3, 3, 8, 8, dtype=torch.uint8), torch.tensor([0, 0, 0]), ["a", "b"], "toy")
        >>> net = nn.Sequential(nn.Conv2d(3, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        >>> with torch.no_grad():  # the network always says class 1
        ...     _ = net[0].weight.zero_(), net[0].bias.copy_(torch.tensor([0.0, 1.0]))
        >>> labelled = decision_labels(net, data)
        >>> labelled.labels.tolist(), labelled.meta, net.training
        ([1, 1, 1], {'labels': 'decision', 'labelled_by': 'model'}, True)
    """
    if not isinstance(data, ImageSet):
        raise InputTypeError(f"data must be an in-memory ImageSet, got {type(data).__name__}.")
    device = next(model.parameters()).device
    top1 = []
    with eval_mode(model), torch.no_grad():
        for x, _ in data.batches(batch_size, device):
            logits = model(x)
            if logits.ndim != 2 or logits.shape[1] != len(data.class_names):
                raise InputError(f"model gives outputs of shape {tuple(logits.shape)} on {data.name!r}; expected N x "
                                 f"{len(data.class_names)}, one logit per class of the data.")
            top1.append(logits.argmax(1).cpu())
    top1 = torch.cat(top1)
    return ImageSet(data.images, top1, data.class_names, data.name,
                    {**data.meta, "labels": DECISION, "labelled_by": getattr(model, "name", "model")})


__all__ = ["decision_labels", "load_for", "takes_decisions"]
