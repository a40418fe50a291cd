"""Detect a backbone's family, Grad-CAM layer and token-to-map reshape from its module structure.

One traced forward pass at the model's input size records, for every module, the order in which it finished and
the tensor it returned. From that trace (never from a list of model names):

- ``metaformer``: blocks with a ``token_mixer`` (PoolFormer and its kin); layer = the last such block.
- ``vit`` / ``swin``: blocks holding multi-head attention; ``swin`` when the attention is windowed. Layer = the
  last attention block's first norm; ViT tokens lose their prefix (CLS, distillation, register) tokens and are
  reshaped to the patch grid; Swin's N x H x W x C maps are permuted to N x C x H x W.
- ``mlp``: no attention, but 3-D token sequences after a patchifying convolution (MLP-Mixer, ResMLP, gMLP);
  layer = the last block's first norm, tokens reshaped to the patch grid.
- ``cnn``: everything else; layer = the deepest module that produces the last spatial feature map (H x W > 1)
  before pooling: a ResNet's last block, a ConvNeXt's last block, DenseNet's ``features`` final norm,
  EfficientNet's head norm, a ConvMixer's last block.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from robust.checks import InputError
from robust.models.state import eval_mode

FAMILIES = ("cnn", "vit", "swin", "mlp", "metaformer")
_CONTAINERS = (nn.Sequential, nn.ModuleList)


@dataclass(frozen=True)
class Structure:
    family: str
    cam_layer_name: str
    tokens_to_map: Callable[[torch.Tensor], torch.Tensor]


@dataclass
class _Trace:
    order: dict[str, int]  # module name -> completion index (last call)
    out: dict[str, torch.Tensor]  # module name -> the tensor it returned (last call)
    modules: dict[str, nn.Module]


def _trace(net: nn.Module, input_size: tuple[int, int, int], device: torch.device) -> _Trace:
    modules = dict(net.named_modules())
    order: dict[str, int] = {}
    out: dict[str, torch.Tensor] = {}
    counter = itertools.count()

    def record(name: str, _m: nn.Module, _inp: tuple[object, ...], output: object) -> None:
        if isinstance(output, (tuple, list)) and output:  # a tuple's first item
            output = output[0]
        if isinstance(output, torch.Tensor):
            order[name], out[name] = next(counter), output

    handles = [m.register_forward_hook(functools.partial(record, name)) for name, m in modules.items()]
    try:
        with eval_mode(net), torch.no_grad():
            net(torch.zeros(1, *input_size, device=device))
    finally:
        for h in handles:
            h.remove()
    return _Trace(order, out, modules)


def _children(trace: _Trace, name: str) -> list[str]:
    prefix = f"{name}." if name else ""
    return [f"{prefix}{c}" for c, _ in trace.modules[name].named_children()]


def _parent(name: str) -> str:
    return name.rpartition(".")[0]


def _is_attention(m: nn.Module) -> bool:
    return isinstance(m, nn.MultiheadAttention) or (
        hasattr(m, "num_heads") and any(hasattr(m, a) for a in ("qkv", "q", "in_proj_weight")))


def _block_of(trace: _Trace, name: str) -> str:
    """The ancestor of ``name`` that is an item of a block list (a Sequential or ModuleList)."""
    while name:
        if isinstance(trace.modules[_parent(name)], _CONTAINERS):
            return name
        name = _parent(name)
    raise InputError("could not find the block list that holds the model's attention or token-mixing layers.")


def _first_norm(trace: _Trace, block: str) -> str:
    for child in _children(trace, block):
        short = child.rsplit(".", 1)[-1]
        if isinstance(trace.modules[child], nn.LayerNorm) or short.startswith(("norm", "ln")):
            return child
    return block


def _patch_grid(trace: _Trace) -> tuple[int, int] | None:
    """Output H x W of the first patchifying convolution (kernel == stride > 1), if any."""
    convs = [n for n, m in trace.modules.items() if isinstance(m, nn.Conv2d) and n in trace.order
             and m.kernel_size == m.stride and m.stride[0] > 1]
    if not convs:
        return None
    first = min(convs, key=trace.order.__getitem__)
    return tuple(trace.out[first].shape[-2:])  # type: ignore[return-value]


@dataclass(frozen=True)
class TokensToGrid:
    """N x L x C tokens (prefix tokens first) -> N x C x h x w, dropping the prefix (CLS, distillation, register)
    tokens. A small class rather than a closure, so that a Backbone pickles (worker processes, Ray)."""

    h: int
    w: int

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        h, w = self.h, self.w
        if t.ndim != 3 or t.shape[1] < h * w:
            raise InputError(f"tokens of shape {tuple(t.shape)} do not hold a {h} x {w} patch grid.")
        return t[:, t.shape[1] - h * w:].transpose(1, 2).reshape(t.shape[0], t.shape[2], h, w)


def _channels_last_to_map(t: torch.Tensor) -> torch.Tensor:
    """N x H x W x C (Swin) -> N x C x H x W."""
    return t.permute(0, 3, 1, 2)


def _identity(t: torch.Tensor) -> torch.Tensor:
    return t


def _last_spatial_layer(trace: _Trace) -> str:
    def spatial(name: str) -> bool:
        t = trace.out.get(name)
        return (t is not None and t.ndim == 4 and t.shape[-1] * t.shape[-2] > 1
                and any(True for _ in trace.modules[name].parameters()))

    def last_spatial_child(name: str) -> str | None:
        cands = [c for c in _children(trace, name) if c in trace.order and spatial(c)]
        return max(cands, key=trace.order.__getitem__) if cands else None

    root, current = "", last_spatial_child("")
    while current is None:  # a wrapper (a user's module around a backbone): descend into the child holding the maps
        inner = [c for c in _children(trace, root) if any(spatial(n) for n in trace.out if n.startswith(c + "."))]
        if not inner:
            raise InputError("found no layer with a spatial (N x C x H x W, H x W > 1) output to use for Grad-CAM.")
        root = max(inner, key=lambda c: trace.order.get(c, -1))
        current = last_spatial_child(root)
    while (child := last_spatial_child(current)) is not None:
        # Descend through block lists, and through a module that merely returns a sub-module's output (a
        # ConvNeXt stage returning its blocks'); stop at a block whose last layer is a plain leaf, since in-place
        # ops (``x += shortcut``) make a block's output the very tensor its last norm returned.
        passes_through = trace.out[child] is trace.out[current] and any(True for _ in trace.modules[child].children())
        if isinstance(trace.modules[current], _CONTAINERS) or passes_through:
            current = child
        else:
            break
    # Lift to the enclosing block when it returns the very same tensor (e.g. a ConvMixer block ending in BN).
    while (parent := _parent(current)) and isinstance(trace.modules[parent], nn.Sequential) \
            and trace.out.get(parent) is trace.out[current] and isinstance(trace.modules[_parent(parent)], _CONTAINERS):
        current = parent
    return current


def detect(net: nn.Module, input_size: tuple[int, int, int], device: torch.device) -> Structure:
    """Family, Grad-CAM layer name and token reshape of ``net`` (see the module docstring)."""
    trace = _trace(net, input_size, device)
    ran = [n for n in trace.modules if n in trace.order]

    mixers = [n for n in ran if n and hasattr(trace.modules[n], "token_mixer")]
    if mixers:
        return Structure("metaformer", max(mixers, key=trace.order.__getitem__), _identity)

    attn = [n for n in ran if n and _is_attention(trace.modules[n])]
    if attn:
        last = max(attn, key=trace.order.__getitem__)
        block = _block_of(trace, last)
        layer = _first_norm(trace, block)
        act = trace.out[layer]
        family = "swin" if hasattr(trace.modules[last], "window_size") else "vit"  # windowed attention
        if act.ndim == 4:  # Swin keeps N x H x W x C maps
            return Structure(family, layer, _channels_last_to_map)
        grid = _patch_grid(trace) or (int(act.shape[1] ** 0.5),) * 2  # no patchifying conv: a square token grid
        return Structure(family, layer, TokensToGrid(*grid))

    grid = _patch_grid(trace)
    tokens = [n for n in ran if n and trace.out[n].ndim == 3 and isinstance(trace.modules[_parent(n)], _CONTAINERS)]
    if grid is not None and tokens:
        block = max(tokens, key=trace.order.__getitem__)
        return Structure("mlp", _first_norm(trace, block), TokensToGrid(*grid))

    return Structure("cnn", _last_spatial_layer(trace), _identity)
