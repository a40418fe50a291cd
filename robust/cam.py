"""Grad-CAM in torch, batched, on the model's device: saliency maps N x H x W in [0, 1].

``cam(model, x, target)`` hooks the Backbone's Grad-CAM layer, reshapes token activations to their grid
(``model.tokens_to_map``), weighs each channel by its mean gradient for the sample's own target class, keeps
the positive part, upsamples with ``F.interpolate`` and scales each map to [0, 1]. One forward and one backward
for the whole batch; gradients are taken with ``torch.autograd.grad``, so no parameter's ``.grad`` is touched.

Other CAM methods (Grad-CAM++, XGrad-CAM, Eigen-CAM, Score-CAM, Layer-CAM, ...) go through pytorch-grad-cam on
the same layer and reshape (``method=``); they run on the CPU side of that library, one target per image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from robust.checks import InputError, check_images, check_labels
from robust.models.backbone import Backbone
from robust.models.state import eval_mode, preserved_grads

#: method name -> pytorch-grad-cam class name; "gradcam" is ours (batched, in torch).
LIBRARY_METHODS = {
    "gradcam++": "GradCAMPlusPlus", "xgradcam": "XGradCAM", "eigencam": "EigenCAM", "eigengradcam": "EigenGradCAM",
    "scorecam": "ScoreCAM", "layercam": "LayerCAM", "hirescam": "HiResCAM", "ablationcam": "AblationCAM",
    "gradcam-elementwise": "GradCAMElementWise", "pgc-gradcam": "GradCAM",
}
METHODS = ("gradcam", *LIBRARY_METHODS)


def _check(model: Backbone, x: torch.Tensor, target: torch.Tensor | None, method: str,
           size: tuple[int, int] | None) -> None:
    if not isinstance(model, Backbone):
        raise TypeError(f"model must be a robust Backbone (see load_model), got {type(model).__name__}.")
    check_images(x)
    if x.shape[0] == 0:
        raise InputError("x is an empty batch; expected at least one image.")
    if target is not None:
        check_labels(target, model.num_classes, n=x.shape[0], name="target")
    if method not in METHODS:
        raise InputError(f"method={method!r} is not valid; expected one of {METHODS}.")
    if size is not None and (len(size) != 2 or min(size) < 1):
        raise InputError(f"size={size!r} is not valid; expected (H, W) with positive sides.")


def normalize_maps(maps: torch.Tensor) -> torch.Tensor:
    """Scale each N x H x W map to [0, 1] (min to 0, max to 1); a constant map becomes 0."""
    flat = maps.flatten(1)
    lo, hi = flat.min(1).values, flat.max(1).values
    return ((flat - lo[:, None]) / (hi - lo).clamp_min(1e-12)[:, None]).view_as(maps)


def _gradcam(model: Backbone, x: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    store: dict[str, torch.Tensor] = {}
    handle = model.cam_layer.register_forward_hook(lambda _m, _i, out: store.__setitem__("act", out))
    try:
        with torch.enable_grad():
            inp = x.detach().requires_grad_(True)  # keeps a graph even when every parameter is frozen
            logits = model.logits(inp)
            if target is None:
                target = logits.argmax(1)
            act = store["act"]
            act = act[0] if isinstance(act, (tuple, list)) else act
            score = logits.gather(1, target[:, None].to(logits.device)).sum()
            (grad,) = torch.autograd.grad(score, act)
    finally:
        handle.remove()
    a, g = model.tokens_to_map(act.detach()), model.tokens_to_map(grad)
    weights = g.float().mean((2, 3), keepdim=True)
    return F.relu((weights * a.float()).sum(1))


def library_reshape(model: Backbone):
    """pytorch-grad-cam's ``reshape_transform`` for ``model``'s Grad-CAM layer: None for feature maps (CNN,
    MetaFormer), else its tokens -> N x C x h x w."""
    return None if model.family in ("cnn", "metaformer") else model.tokens_to_map


def _library_cam(model: Backbone, x: torch.Tensor, target: torch.Tensor | None, method: str) -> torch.Tensor:
    import pytorch_grad_cam
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    if target is None:
        with torch.no_grad():
            target = model.logits(x).argmax(1)
    cls = getattr(pytorch_grad_cam, LIBRARY_METHODS[method])
    reshape = library_reshape(model)
    # The library calls backward(), which would leave gradients on the parameters: give them back.
    with preserved_grads(model), cls(model=model, target_layers=[model.cam_layer],
                                     reshape_transform=reshape) as method_cam:
        maps = method_cam(input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in target.tolist()])
    return torch.from_numpy(maps).to(x.device)


def cam(model: Backbone, x: torch.Tensor, target: torch.Tensor | None = None, *, method: str = "gradcam",
        size: tuple[int, int] | None = None, normalize: bool = True) -> torch.Tensor:
    """Saliency maps N x H x W in [0, 1] of ``model`` for class ``target[i]`` of image ``x[i]`` (with
    ``normalize=False``: the raw non-negative maps, whose mass can be compared between regions).

    ``target``: one class per sample (a 1-D integer tensor of length N), or None for the predicted class.
    ``size``: output (H, W), default the input's. The model is left as found (mode, grads, buffers).
    """
    _check(model, x, target, method, size)
    size = tuple(size) if size is not None else tuple(x.shape[-2:])
    with eval_mode(model):
        raw = _gradcam(model, x, target) if method == "gradcam" else _library_cam(model, x, target, method)
    if raw.shape[-2:] != size:
        raw = F.interpolate(raw[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    return normalize_maps(raw) if normalize else raw.clamp_min(0)


__all__ = ["LIBRARY_METHODS", "METHODS", "cam", "normalize_maps"]
