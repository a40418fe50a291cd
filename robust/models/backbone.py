"""``Backbone``: any image classifier behind one interface: [0,1] images in, logits out, structure known."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from robust.checks import InputError, InputTypeError, check_images, data_image_size, first_line
from robust.data.preprocess import Preprocess
from robust.models.state import eval_mode
from robust.models.structure import FAMILIES, detect


def unwrap_logits(out: object) -> torch.Tensor:
    """Take the logits from what a model returns.

    A tensor is returned as it is; a tuple or list gives its first item (a tensor); a dict its ``logits`` entry, or
    its only tensor; any other object its ``logits`` attribute (e.g. Hugging Face outputs).

    Args:
        out: the model's output.

    Returns:
        The logits.

    Raises:
        InputError: an output without logits to find (a dict with several tensors and no ``logits``, or another type).

    Shape:
        returns what the model gave, normally N x num_classes.

    Examples:
        >>> import torch
        >>> from robust.models.backbone import unwrap_logits
        >>> logits = torch.zeros(2, 10)
        >>> unwrap_logits((logits, "aux")) is logits, unwrap_logits({"logits": logits, "loss": 0.0}) is logits
        (True, True)
    """
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    if isinstance(out, dict):
        if isinstance(out.get("logits"), torch.Tensor):
            return out["logits"]
        tensors = [v for v in out.values() if isinstance(v, torch.Tensor)]
        if len(tensors) == 1:
            return tensors[0]
        raise InputError(f"the model returned a dict with keys {sorted(out)}; expected a 'logits' entry.")
    if isinstance(getattr(out, "logits", None), torch.Tensor):
        return out.logits  # type: ignore[union-attr]
    raise InputError(f"the model returned a {type(out).__name__}; expected logits as a tensor, tuple or dict.")


class Backbone(nn.Module):
    """An image classifier behind one interface: images in [0, 1] in, logits out, its structure known.

    It normalises inside (``mean``, ``std``), so every attack works in pixel space. The family and the Grad-CAM
    layer are detected from the module structure unless given. ``forward`` checks its input; ``logits`` is the
    unchecked path for inner loops. Besides the arguments it keeps ``tokens_to_map``, which turns the Grad-CAM
    layer's output into an N x C x h x w map (a ViT's or a Mixer's tokens folded back to their grid).

    Args:
        net: the classifier; its output may be a tensor, a tuple or list (first item), a dict or an object with
            ``logits``.
        name: what boards and messages call it.
        input_size: (C, H, W) of its input; C must be 3.
        mean: per-channel mean subtracted inside, on the [0, 1] scale.
        std: per-channel standard deviation divided by inside, > 0.
        class_names: one name per class (default: ``"0"``, ``"1"``...).
        num_classes: the number of classes (default: read from the classifier head).
        family: ``cnn``, ``vit``, ``swin``, ``mlp`` or ``metaformer`` (default: detected).
        cam_layer: the dotted name of the module whose output Grad-CAM weighs (default: detected).
        spec: the spec it was loaded from, recorded on boards and in cell keys.
        preprocess: the resize and crop that turn a photo into its input (a ``robust.data.Preprocess``; None:
            the dataset's default).

    Shape:
        ``model(x)``: x is N x 3 x H x W in [0, 1] (float); the logits are N x num_classes.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> from robust.models import Backbone
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
        >>> model = Backbone(net, name="tiny", input_size=(3, 32, 32))
        >>> model.family, model.num_classes, model(torch.rand(2, 3, 32, 32)).shape
        ('cnn', 10, torch.Size([2, 10]))
    """

    def __init__(self, net: nn.Module, *, name: str, input_size: Sequence[int] = (3, 224, 224),
                 mean: Sequence[float] = (0.0, 0.0, 0.0), std: Sequence[float] = (1.0, 1.0, 1.0),
                 class_names: Sequence[str] | None = None, num_classes: int | None = None,
                 family: str | None = None, cam_layer: str | None = None, spec: str | None = None,
                 preprocess: Preprocess | None = None):
        super().__init__()
        if not isinstance(net, nn.Module):
            raise InputTypeError(f"net must be a torch.nn.Module, got {type(net).__name__}.")
        input_size = tuple(int(v) for v in input_size)
        if len(input_size) != 3 or input_size[0] != 3 or min(input_size) < 1:
            raise InputError(f"input_size={input_size!r} is not valid; expected (3, H, W).")
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise InputError(f"mean={tuple(mean)!r}, std={tuple(std)!r} are not valid; expected 3 values each, "
                             "std > 0.")
        if preprocess is not None and (not isinstance(preprocess, Preprocess) or preprocess.size != input_size[1]
                                       or input_size[1] != input_size[2]):
            raise InputError(f"preprocess={preprocess!r} is not valid for input_size={input_size}; expected a "
                             "robust.data.Preprocess cropping that size, or None.")
        if family is not None and family not in FAMILIES:
            raise InputError(f"family={family!r} is not valid; expected one of {FAMILIES}.")
        self.net = net
        self.name = name
        self.spec = spec or name
        self.preprocess = preprocess
        self.input_size: tuple[int, int, int] = input_size  # type: ignore[assignment]
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)
        device = next((p.device for p in net.parameters()), torch.device("cpu"))
        if device.type == "meta" or any(b.is_meta for b in net.buffers()):
            raise InputError(f"{name} has its weights on the meta device (shapes without values); expected a loaded "
                             "model (e.g. net.to_empty(device=...) then load_state_dict, or load_model(spec)).")
        self.register_buffer("_mean", torch.tensor(self.mean, device=device).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("_std", torch.tensor(self.std, device=device).view(1, 3, 1, 1), persistent=False)

        try:  # the first forward: a module that cannot take these images says so here, in one line
            structure = detect(net, input_size, device)
        except (RuntimeError, AssertionError, IndexError, TypeError) as e:
            who = name if name == type(net).__name__ else f"{name} ({type(net).__name__})"
            raise InputError(f"{who} cannot take images of size {input_size}: "
                             f"{type(e).__name__}: {first_line(e)[:160]}; expected the input_size it was built "
                             "for.") from None
        self.family = family or structure.family
        self.cam_layer_name = cam_layer or structure.cam_layer_name
        if self.cam_layer_name not in dict(net.named_modules()):
            raise InputError(f"cam_layer={self.cam_layer_name!r} is not a module of {name}.")
        self.tokens_to_map = structure.tokens_to_map

        if num_classes is None:  # what the network's head says
            with eval_mode(net), torch.no_grad():
                num_classes = unwrap_logits(net(torch.zeros(1, *input_size, device=device))).shape[-1]
        self.num_classes = int(num_classes)
        if class_names is None:
            class_names = [str(i) for i in range(self.num_classes)]
        if len(class_names) != self.num_classes:
            raise InputError(f"class_names has {len(class_names)} entries; expected {self.num_classes}.")
        self.class_names = list(class_names)

    @property
    def cam_layer(self) -> nn.Module:
        return dict(self.net.named_modules())[self.cam_layer_name]

    @property
    def undefended(self) -> Backbone:
        """The classifier without a defence: the model itself, or what a defended model (``robust.defenses``)
        wraps. Grad-CAM reads it: a defence masks its input, and the features Grad-CAM weighs are its network's."""
        return self

    @property
    def device(self) -> torch.device:
        return self._mean.device

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for images ``x`` in [0,1], without input validation (for inner loops)."""
        return unwrap_logits(self.net((x - self._mean) / self._std))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N x classes) for images ``x`` (N x 3 x H x W in [0, 1]), input and output checked: a size the
        network cannot take, or an output that is not one row per image, is a ValueError naming the model."""
        check_images(x)
        try:
            out = self.logits(x)
        except (RuntimeError, AssertionError) as e:
            if tuple(x.shape[1:]) == self.input_size:
                raise
            raise InputError(f"{self.name} takes {self.input_size} images; x has {tuple(x.shape[1:])} and the "
                             f"network refused it ({type(e).__name__}: {first_line(e)[:120]}); expected images of "
                             "its input size (resize the data).") from None
        if out.ndim != 2 or out.shape[0] != x.shape[0]:
            raise InputError(f"{self.name} returned logits of shape {tuple(out.shape)} for {x.shape[0]} images; "
                             "expected one row of class scores per image (N x classes).")
        return out

    def extra_repr(self) -> str:
        return (f"name={self.name!r}, family={self.family!r}, num_classes={self.num_classes}, "
                f"input_size={self.input_size}, cam_layer={self.cam_layer_name!r}")


def as_backbone(model: object, input_size: Sequence[int] | None = None, *, data: object = None, name: str = "model",
                mean: Sequence[float] = (0.0, 0.0, 0.0), std: Sequence[float] = (1.0, 1.0, 1.0)) -> Backbone:
    """Make ``model`` a ``Backbone``: a Backbone as it is, a plain ``nn.Module`` wrapped.

    A plain module gets its class name as name and, by default, no normalisation (it gets [0, 1] images); it is
    wrapped for images of ``input_size``, else of the size of ``data``, what it is evaluated on (read only for a plain
    module).

    Args:
        model: a ``Backbone`` or a plain ``nn.Module``.
        input_size: (C, H, W) of the images a plain module takes (None: the size of ``data``'s images).
        data: the dataset it is evaluated on, for its image size (``robust.checks.data_image_size``).
        name: what messages call ``model`` (e.g. ``'victim'``); not the Backbone's name.
        mean: per-channel mean a plain module's Backbone subtracts inside, on the [0, 1] scale.
        std: per-channel standard deviation it divides by inside.

    Returns:
        The Backbone.

    Raises:
        TypeError: ``model`` is not a module (the message names ``name``).
        InputError: a plain module without ``input_size`` or ``data``, or one that cannot take images of that size.

    Examples:
        >>> from torch import nn
        >>> from robust.models.backbone import as_backbone
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
        >>> model = as_backbone(net, (3, 16, 16))
        >>> model.name, model.input_size, model.num_classes, model.mean, as_backbone(model) is model
        ('Sequential', (3, 16, 16), 2, (0.0, 0.0, 0.0), True)
    """
    if isinstance(model, Backbone):
        return model
    if not isinstance(model, nn.Module):
        raise InputTypeError(f"{name} must be a robust Backbone or a torch.nn.Module (see load_model), got "
                             f"{type(model).__name__}.")
    if input_size is None and data is not None:
        input_size = data_image_size(data)
    if input_size is None:
        raise InputError(f"{name} is a plain {type(model).__name__} module, which does not say what images it takes; "
                         "expected input_size=(3, H, W), or robust.Backbone(net, input_size=..., mean=..., std=...).")
    return Backbone(model, name=type(model).__name__, input_size=input_size, mean=mean, std=std)


__all__ = ["Backbone", "as_backbone", "unwrap_logits"]
