"""Reading a trained attack's files (safetensors weights + a JSON configuration beside them) as untrusted input:
a missing, truncated or foreign file, or a configuration with missing or wrong-typed keys, is one ValueError
naming the file, never a library exception. Nothing in them is ever imported or called."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn


def read_config(path: Path, attack: str, key: str, value: str) -> dict:
    """The JSON beside ``path`` (``path`` + ``.json``), required to be a table whose ``key`` is ``value``."""
    meta = path.with_suffix(path.suffix + ".json")
    if not path.is_file() or not meta.is_file():
        raise ValueError(f"{attack} checkpoint {str(path)!r} (and its .json) does not exist.")
    try:
        cfg = json.loads(meta.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{str(meta)!r} is not valid JSON ({e}); expected the configuration {attack} saved.") from None
    if not isinstance(cfg, dict) or cfg.get(key) != value:
        found = cfg.get(key) if isinstance(cfg, dict) else type(cfg).__name__
        raise ValueError(f"{str(meta)!r} has {key} {found!r}; expected {value!r}.")
    return cfg


def check_config(cfg: dict, types: dict[str, tuple[type, ...]], path: Path) -> None:
    """Every key of ``types`` present in ``cfg`` with a value of one of its types (bool is not a number)."""
    for k, allowed in types.items():
        v = cfg.get(k)
        if k not in cfg or (isinstance(v, bool) and bool not in allowed) or not isinstance(v, allowed):
            raise ValueError(f"the configuration of {str(path)!r} has {k}={v!r}; expected a value of type "
                             f"{' or '.join(t.__name__ for t in allowed)} (re-save it or train it again).")


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of the safetensors file ``path``."""
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for truncated or foreign bytes
        raise ValueError(f"{str(path)!r} is truncated or not a safetensors file ({str(e)[:120]}).") from None


def check_shapes(module: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """``state`` has exactly ``module``'s tensor names and shapes (``module`` may live on the meta device, so that
    a configuration asking for a huge network allocates nothing before it is refused)."""
    want = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if want != got:
        k = next(iter(sorted(set(want) ^ set(got))), None) or next(k for k in want if want[k] != got[k])
        raise ValueError(f"{str(path)!r} does not match the configuration beside it (tensor {k!r}: "
                         f"{got.get(k)} in the file, {want.get(k)} expected).")
