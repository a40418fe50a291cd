"""What a cell's key is made of: the version that makes stores recompute and the fingerprints of a
model's weights and of a dataset's images (the same content gives the same key wherever it was loaded from)."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported by what uses it: the store and the plan's ids need no torch
    import torch

CELL_VERSION = 6  # bump when a change to robust alters results, so stores recompute (2: protocol-exact counts;
# 3: per-image draws, donors from the whole set, PGD with restarts and early stop, LaVAN early stop, bootstrap areas;
# 4: per-image outcomes for the worst case, LaVAN keeps each image's best patch; 5: patch attacks' realism;
# 6: the victim passes each attack spent, gan-patch refines with LaVAN's optimiser)


def fingerprint_model(model: torch.nn.Module) -> str:
    """The fingerprint of a model's weights: sha256 of its parameters and buffers (names, dtypes, shapes and bytes).

    The same weights give the same fingerprint on any device and from any source; a changed dtype changes it.

    Args:
        model: the module (its ``state_dict`` is hashed, on the CPU).

    Returns:
        The digest's first 16 hex digits.

    Examples:
        >>> import torch
        >>> from robust.runner.keys import fingerprint_model
        >>> net = torch.nn.Linear(2, 1)
        >>> _ = torch.nn.init.zeros_(net.weight), torch.nn.init.zeros_(net.bias)
        >>> fingerprint_model(net), fingerprint_model(net.double())
        ('01f9bff7258c532d', '754cc9880d1c5715')
    """
    from robust.models.checkpoint import state_digest

    return state_digest(model.state_dict())


def fingerprint_data(data: object, samples: int | None = None, batch_size: int = 256) -> str:
    """The fingerprint of a dataset's first ``samples`` images and labels: the same for the same content wherever it is
    loaded from.

    An ``ImageSet`` hashes its stored images and labels (not its class names, so that existing keys stay valid); any
    other dataset (an ImageFolder or torchvision set) is read through its transform, once, in batches, and its class
    names are hashed too.

    Args:
        data: an ``ImageSet``, or a dataset ``robust.data.base.iterate`` reads.
        samples: how many images from the start (default: all).
        batch_size: images read per batch (for a dataset that is not an ``ImageSet``; it does not change the
            digest).

    Returns:
        The sha256 digest's first 16 hex digits.

    Examples:
        >>> import torch
        >>> from robust.data.base import ImageSet
        >>> from robust.runner.keys import fingerprint_data
        >>> images = torch.zeros(4, 3, 8, 8, dtype=torch.uint8)
        >>> a = ImageSet(images, torch.tensor([0, 1, 0, 1]), ["cat", "dog"], "toy")
        >>> b = ImageSet(images.clone(), torch.tensor([0, 1, 0, 0]), ["bird", "fish"], "other")
        >>> len(fingerprint_data(a)), fingerprint_data(a, 3) == fingerprint_data(b, 3)
        (16, True)
        >>> fingerprint_data(a) == fingerprint_data(b)
        False
    """
    from robust.data.base import ImageSet, iterate

    h = hashlib.sha256()
    if isinstance(data, ImageSet):  # (the class names are not hashed here, so that existing keys stay valid)
        h.update(data.images[:samples].contiguous().numpy().tobytes())
        h.update(data.labels[:samples].contiguous().numpy().tobytes())
    else:
        h.update(json.dumps(list(getattr(data, "class_names", []))).encode())
        for x, y in iterate(data, batch_size, "cpu", limit=samples):
            h.update(x.float().contiguous().numpy().tobytes())
            h.update(y.long().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


__all__ = ["CELL_VERSION", "fingerprint_data", "fingerprint_model"]
