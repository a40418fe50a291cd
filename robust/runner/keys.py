"""What a cell's key is made of: the version that makes stores recompute and the fingerprints of a
model's weights and of a dataset's images (the same content gives the same key wherever it was loaded from)."""

from __future__ import annotations

import hashlib
import json

import torch

CELL_VERSION = 6  # bump when a change to robust alters results, so stores recompute (2: protocol-exact counts;
# 3: per-image draws, donors from the whole set, PGD with restarts and early stop, LaVAN early stop, bootstrap areas;
# 4: per-image outcomes for the worst case, LaVAN keeps each image's best patch; 5: patch attacks' realism;
# 6: the victim passes each attack spent, gan-patch refines with LaVAN's optimiser)


def fingerprint_model(model: torch.nn.Module) -> str:
    """sha256 of the model's parameters and buffers (names, dtypes, shapes and bytes)."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def fingerprint_data(data: object, samples: int | None = None, batch_size: int = 256) -> str:
    """sha256 of the first ``samples`` images and labels and of the class names: the same for the same content
    wherever it is loaded from (an ImageFolder or torchvision set is read through its transform, once)."""
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
