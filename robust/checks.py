"""Argument checks shared by every public entry point: one sentence naming argument, value and expectation."""

from __future__ import annotations

import torch


def check_images(x: object, name: str = "x", channels: int = 3) -> torch.Tensor:
    """Require a float tensor N x C x H x W with values in [0, 1] and no NaN; return it unchanged."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of images, got {type(x).__name__}.")
    if x.ndim != 4:
        raise ValueError(f"{name} has shape {tuple(x.shape)}; expected a batch N x {channels} x H x W.")
    if not x.is_floating_point():
        raise TypeError(
            f"{name} has dtype {x.dtype}; expected float images in [0, 1] (divide uint8 images by 255)."
        )
    if x.shape[1] != channels:
        raise ValueError(
            f"{name} has {x.shape[1]} channel(s) (shape {tuple(x.shape)}); expected {channels} (RGB)."
        )
    if x.numel():
        lo, hi = torch.aminmax(x.detach())
        lo, hi = float(lo), float(hi)  # one host sync for the whole check
        if lo != lo or hi != hi:
            raise ValueError(f"{name} contains NaN values; expected finite images in [0, 1].")
        if lo < -1e-6 or hi > 1 + 1e-6:
            raise ValueError(f"{name} has values in [{lo:.4g}, {hi:.4g}]; expected images in [0, 1].")
    return x


def check_labels(y: object, num_classes: int, n: int | None = None, name: str = "y") -> torch.Tensor:
    """Require an integer tensor of class indices in [0, num_classes), of length ``n`` when given."""
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of class indices, got {type(y).__name__}.")
    if y.ndim != 1 or y.is_floating_point() or y.dtype == torch.bool:
        raise ValueError(f"{name} has shape {tuple(y.shape)} and dtype {y.dtype}; expected a 1-D integer tensor.")
    if n is not None and y.shape[0] != n:
        raise ValueError(f"{name} has {y.shape[0]} labels; expected {n}, one per image.")
    if y.numel():
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= num_classes:
            bad = lo if lo < 0 else hi
            raise ValueError(f"{name} contains class {bad}; expected classes in [0, {num_classes - 1}].")
    return y
