"""Weights on disk: safetensors files that record their architecture, and safe loading of other checkpoints.

A robust checkpoint is a safetensors file whose metadata holds ``format`` (``robust-backbone/1``), ``arch`` (a
load spec that builds the architecture with random weights, e.g. ``timm:resnet18?num_classes=10`` or
``robust.models.zoo.archs:vit``) and the Backbone fields (``name``, ``num_classes``, ``input_size``, ``mean``,
``std``, ``class_names``). Nothing is ever unpickled except through ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from robust.checks import InputError, first_line
from robust.io import atomic_path, sha256_file

FORMAT = "robust-backbone/1"
_JSON_FIELDS = ("num_classes", "input_size", "mean", "std", "class_names", "extra")


def save_weights(path: str | os.PathLike, module: nn.Module, *, arch: str, name: str, num_classes: int,
                 input_size: Sequence[int], mean: Sequence[float], std: Sequence[float],
                 class_names: Sequence[str], extra: Mapping | None = None) -> str:
    """Save a module's weights with the description ``load_model("file:PATH")`` needs, atomically.

    The file is safetensors; its metadata records the architecture by name (a timm, torchvision or robustbench name
    or a zoo architecture), never code, so loading it imports nothing the file names.

    Args:
        path: the ``.safetensors`` file to write.
        module: the module whose state dict is saved.
        arch: the architecture ``load_model`` rebuilds it from: a timm, torchvision or robustbench spec (with at
            most sizes and switches as options) or ``robust.models.zoo.archs:NAME``.
        name: the model's name on boards.
        num_classes: its class count.
        input_size: (C, H, W) of its input.
        mean: per-channel mean of its normalisation, on the [0, 1] scale.
        std: per-channel standard deviation of its normalisation.
        class_names: one name per class.
        extra: more JSON-able facts to record (e.g. how it was trained).

    Returns:
        The file's sha256.

    Examples:
        >>> import timm
        >>> from robust.models import load_model, save_weights
        >>> net = timm.create_model("resnet10t", num_classes=10)  # ... trained by you
        >>> digest = save_weights("mine.safetensors", net, arch="timm:resnet10t?num_classes=10", name="mine",
        ...                       num_classes=10, input_size=(3, 64, 64), mean=(0.5, 0.5, 0.5),
        ...                       std=(0.25, 0.25, 0.25), class_names=[str(c) for c in range(10)])
        >>> model = load_model("file:mine.safetensors", "cpu")
        >>> model.name, model.family, model.input_size, len(digest)
        ('mine', 'cnn', (3, 64, 64), 64)
    """
    state = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    meta = {"format": FORMAT, "arch": arch, "name": name, "num_classes": num_classes,
            "input_size": list(input_size), "mean": list(mean), "std": list(std),
            "class_names": list(class_names), "extra": dict(extra or {})}
    meta = {k: json.dumps(v) if k in _JSON_FIELDS else v for k, v in meta.items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=meta)
    return sha256_file(path)


def read_header(path: str | os.PathLike) -> dict:
    """The parsed metadata of a robust safetensors checkpoint; ``ValueError`` if it has none."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint path {str(path)!r} does not exist or is not a file.")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as e:  # safetensors raises its own error types for non-safetensors bytes
        raise InputError(f"checkpoint {str(path)!r} is truncated or not a safetensors file ({first_line(e)})."
                         ) from None
    if meta.get("format") != FORMAT or "arch" not in meta:
        raise InputError(f"checkpoint {str(path)!r} does not record its architecture (metadata 'format' = "
                         f"{FORMAT!r} and 'arch'); save it with robust.models.save_weights().")
    try:
        out = {k: json.loads(v) if k in _JSON_FIELDS else v for k, v in meta.items()}
    except json.JSONDecodeError as e:
        raise InputError(f"checkpoint {str(path)!r} has unreadable metadata ({e}).") from None
    _check_header(out, path)
    return out


def _check_header(meta: dict, path: Path) -> None:
    """The metadata fields a Backbone is built from, by type: a file's description is data, checked like input."""
    def numbers(v: object, k: int) -> bool:
        return isinstance(v, list) and len(v) == k and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                           for x in v)

    checks = {"num_classes": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
              "input_size": lambda v: numbers(v, 3) and all(isinstance(x, int) and x >= 1 for x in v),
              "mean": lambda v: numbers(v, 3), "std": lambda v: numbers(v, 3),
              "class_names": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
              "name": lambda v: isinstance(v, str) and len(v) <= 200}
    for key, ok in checks.items():
        if key in meta and not ok(meta[key]):
            raise InputError(f"checkpoint {str(path)!r} records {key}={str(meta[key])[:60]!r}, which is not valid; "
                             "expected what robust.models.save_weights() writes.")


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file, or of a torch checkpoint loaded with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint path {str(path)!r} does not exist or is not a file.")
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except Exception as e:  # SafetensorError (truncated, corrupt) or OSError, with safetensors' own wording
            raise InputError(f"checkpoint {str(path)!r} is truncated or not a safetensors file ({first_line(e)})."
                             ) from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, AttributeError) as e:
        raise InputError(f"checkpoint {str(path)!r} is not plain weights and will not be unpickled "
                         f"(torch.load(weights_only=True) refused it: {first_line(e)}).") from None
    for key in ("state_dict", "model_state_dict", "model", "net"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InputError(f"checkpoint {str(path)!r} holds a {type(obj).__name__}, not a state dict of tensors.")
    return dict(obj)


def load_state(module: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Load ``state`` strictly into ``module``; mismatched names or shapes raise one clear ``ValueError``."""
    module.load_state_dict(check_state(module, state, source), strict=True)


def state_digest(state: Mapping[str, torch.Tensor]) -> str:
    """The fingerprint of a state dict: sha256 of its tensors' names, dtypes, shapes and bytes, on the CPU (the same
    weights give the same digest on any device and from any source; a changed dtype changes it).

    Returns:
        The digest's first 16 hex digits.

    Examples:
        >>> import torch
        >>> from robust.models.checkpoint import state_digest
        >>> state_digest({"w": torch.zeros(2)}), state_digest({"w": torch.zeros(2, dtype=torch.float64)})
        ('c8568a9be43247ea', 'e86af41a3ac5f92f')
    """
    h = hashlib.sha256()
    for name, t in sorted(state.items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def check_state(module: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """``state`` (``module.`` prefixes of DataParallel removed) when it has exactly ``module``'s tensor names and
    shapes, else one clear ``ValueError``. ``module`` may live on the meta device, so that a configuration asking
    for a huge network allocates nothing before it is refused."""
    state = {k.removeprefix("module."): v for k, v in state.items()}  # DataParallel checkpoints
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [(k, tuple(state[k].shape), tuple(v.shape)) for k, v in own.items()
             if k in state and state[k].shape != v.shape]
    if wrong:
        k, got, want = wrong[0]
        raise InputError(f"checkpoint {source} does not match the architecture: {k!r} has shape {got}, "
                         f"expected {want} ({len(wrong)} mismatched tensor(s)).")
    if missing or unexpected:
        raise InputError(f"checkpoint {source} does not match the architecture: missing {missing[:3]}"
                         f"{'...' if len(missing) > 3 else ''}, unexpected {unexpected[:3]}"
                         f"{'...' if len(unexpected) > 3 else ''}.")
    return state
