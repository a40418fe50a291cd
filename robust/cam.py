"""Saliency maps, batched, on the model's device: Grad-CAM in torch (N x H x W in [0, 1]), other CAM methods
through pytorch-grad-cam, and RISE.

``cam(model, x, target)`` hooks the Backbone's Grad-CAM layer, reshapes token activations to their grid
(``model.tokens_to_map``), weighs each channel by its mean gradient for the sample's own target class, keeps
the positive part, upsamples with ``F.interpolate`` and scales each map to [0, 1]. One forward and one backward
for the whole batch; gradients are taken with ``torch.autograd.grad``, so no parameter's ``.grad`` is touched.

Other CAM methods (Grad-CAM++, XGrad-CAM, Eigen-CAM, Score-CAM, Layer-CAM, ...) go through pytorch-grad-cam on
the same layer and reshape (``method=``); they run on the CPU side of that library, one target per image.
``rise(model, x, classes, seed)`` is RISE (Petsiuk et al. 2018): masked forwards only, no gradient.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from robust.checks import InputError, InputTypeError, check_choice, check_images, check_labels
from robust.draws import Draws, Pool
from robust.models.backbone import Backbone
from robust.models.state import eval_mode, preserved_grads

if TYPE_CHECKING:
    from collections.abc import Callable

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
        raise InputTypeError(f"model must be a robust Backbone (see load_model), got {type(model).__name__}.")
    check_images(x)
    if x.shape[0] == 0:
        raise InputError("x is an empty batch; expected at least one image.")
    if target is not None:
        check_labels(target, model.num_classes, n=x.shape[0], name="target")
    check_choice(method, METHODS, "method")
    if size is not None and (len(size) != 2 or min(size) < 1):
        raise InputError(f"size={size!r} is not valid; expected (H, W) with positive sides.")


def normalize_maps(maps: torch.Tensor) -> torch.Tensor:
    """Scale each map to [0, 1]: its minimum to 0, its maximum to 1; a constant map becomes all 0.

    Args:
        maps: the maps (any values).

    Returns:
        The scaled maps, of the same shape.

    Shape:
        maps: N x ... (one map per row, e.g. N x H x W); returns the same shape, in [0, 1].

    Examples:
        >>> import torch
        >>> from robust.cam import normalize_maps
        >>> normalize_maps(torch.tensor([[[1.0, 3.0], [2.0, 5.0]], [[2.0, 2.0], [2.0, 2.0]]]))
        tensor([[[0.0000, 0.5000],
                 [0.2500, 1.0000]],
        <BLANKLINE>
                [[0.0000, 0.0000],
                 [0.0000, 0.0000]]])
    """
    flat = maps.flatten(1)
    lo, hi = flat.min(1).values, flat.max(1).values
    return ((flat - lo[:, None]) / (hi - lo).clamp_min(1e-12)[:, None]).view_as(maps)


def _gradcam(model: Backbone, x: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    store: dict[str, torch.Tensor] = {}
    handle = model.cam_layer.register_forward_hook(lambda _m, _i, out: store.__setitem__("act", out))
    try:
        return gradcam_maps(model, x, target, store)
    finally:
        handle.remove()


def gradcam_maps(model: Backbone, x: torch.Tensor, target: torch.Tensor | None, store: dict) -> torch.Tensor:
    """Grad-CAM's computation once the Grad-CAM layer's forward hook writes its output into ``store["act"]``: one
    forward, one backward to that layer, the channel-weighted maps (raw, N x h x w). Nothing in it reads a value back
    to the host (``tests/test_sync_free.py`` traces it whole)."""
    with torch.enable_grad():
        logits = model.logits(x.detach().requires_grad_(True))  # a graph even when every parameter is frozen
        if target is None:
            target = logits.argmax(1)
        act = store.pop("act")  # not kept: the store holds nothing of the graph after the call
        act = act[0] if isinstance(act, (tuple, list)) else act
        score = logits.gather(1, target[:, None].to(logits.device)).sum()
        (grad,) = torch.autograd.grad(score, act)
    a, g = model.tokens_to_map(act.detach()), model.tokens_to_map(grad)
    weights = g.float().mean((2, 3), keepdim=True)
    return F.relu((weights * a.float()).sum(1))


def library_reshape(model: Backbone) -> Callable[[torch.Tensor], torch.Tensor] | None:
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
    # The library calls backward(), which would leave gradients on the parameters: give them back.
    with preserved_grads(model), cls(model=model, target_layers=[model.cam_layer],
                                     reshape_transform=library_reshape(model)) as method_cam:
        maps = method_cam(input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in target.tolist()])
    return torch.from_numpy(maps).to(x.device)


def cam(model: Backbone, x: torch.Tensor, target: torch.Tensor | None = None, *, method: str = "gradcam",
        size: tuple[int, int] | None = None, normalize: bool = True) -> torch.Tensor:
    """Saliency maps of ``model`` for one class per image: Grad-CAM by default, batched in torch.

    The model is left as it was found (mode, gradients, buffers).

    Args:
        model: the model; its ``cam_layer`` is the layer whose output is weighed.
        x: the images.
        target: one class per image, or None for the predicted class.
        method: ``gradcam`` (ours, batched) or a pytorch-grad-cam method: ``gradcam++``, ``xgradcam``, ``eigencam``,
            ``eigengradcam``, ``scorecam``, ``layercam``, ``hirescam``, ``ablationcam``, ``gradcam-elementwise``
            or ``pgc-gradcam`` (the library's Grad-CAM).
        size: the maps' (H, W) (default: the images').
        normalize: scale each map to [0, 1]; False gives the raw non-negative maps, whose mass compares between
            regions.

    Returns:
        The maps.

    Shape:
        x: N x 3 x H x W in [0, 1]; target: N (class indices); returns N x H x W (in [0, 1] when ``normalize``).

    Examples:
        >>> import torch
        >>> from robust.cam import cam
        >>> from robust.models import load_model
        >>> maps = cam(load_model("zoo:digits-m/resnet", "cpu"), torch.rand(4, 3, 32, 32))
        >>> tuple(maps.shape), float(maps.min()) >= 0.0, float(maps.max()) <= 1.0
        ((4, 32, 32), True, True)
    """
    _check(model, x, target, method, size)
    model = model.undefended  # a defended model's maps are its network's (the defence masks the input)
    size = tuple(size) if size is not None else tuple(x.shape[-2:])
    with eval_mode(model):
        raw = _gradcam(model, x, target) if method == "gradcam" else _library_cam(model, x, target, method)
    if raw.shape[-2:] != size:
        raw = F.interpolate(raw[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    return normalize_maps(raw) if normalize else raw.clamp_min(0)


def rise(model: Backbone, x: torch.Tensor, classes: torch.Tensor, seed: int, masks: int = 64,
         cells: int = 7, p: float = 0.5, chunk: int = 2 << 20) -> torch.Tensor:
    """RISE saliency (Petsiuk et al. 2018) of each image for each of its classes: masked forwards only, no gradient.

    The map of class k is the sum over ``masks`` random masks (``cells`` x ``cells`` Bernoulli(``p``) grids,
    bilinearly upsampled and randomly shifted) of the class probability on the masked image (image times mask) times
    the mask, over ``masks * p``: non-negative, not scaled to [0, 1] (about the class probability when the pixel is
    kept). The masks are a function of ``seed`` alone: the same for every image and batch. The masked images are made
    and scored ``chunk`` pixels at a time (2,048 images at 32 px, 41 at 224 px), so memory does not grow with
    ``masks``. An image's masked scores do not depend on the batch; their sum over the masks is one matrix product,
    whose summation order some CPUs' BLAS picks by the batch's size, so an image's map alone and in a batch can differ
    in the last bits (4.5e-8 seen). The inputs are not validated (see ``cam``); the model is used in eval mode and
    left as it was found.

    Args:
        model: the model.
        x: the images.
        classes: the classes to map, K per image.
        seed: the seed of the masks.
        masks: how many random masks.
        cells: the masks' grid, cells per side before upsampling.
        p: the probability that a cell is kept (1) rather than masked (0).
        chunk: how many pixels of masked images one forward pass takes at most (at least one image).

    Returns:
        The maps, one per image and class, in float32.

    Shape:
        x: N x 3 x H x W in [0, 1]; classes: N x K (class indices); returns N x K x H x W (>= 0).

    Examples:
        >>> import torch
        >>> from robust.cam import rise
        >>> from robust.models import load_model
        >>> model, x = load_model("zoo:digits-m/resnet", "cpu"), torch.rand(2, 3, 32, 32)
        >>> maps = rise(model, x, torch.tensor([[3, 5], [0, 1]]), seed=0, masks=16)
        >>> tuple(maps.shape), bool((maps >= 0).all())
        ((2, 2, 32, 32), True)
        >>> one = rise(model, x[:1], torch.tensor([[3, 5]]), seed=0, masks=16)  # per image: the same masked scores,
        >>> torch.allclose(one, maps[:1], rtol=1e-5, atol=1e-7)  # summed by a matrix product whose order may vary
        True
    """
    n, _, h, w = x.shape
    ch, cw = math.ceil(h / cells), math.ceil(w / cells)
    mask_draws = Draws(seed, torch.arange(masks, device=x.device), Pool((x[:0], classes[:0, 0])))
    grid = (mask_draws.uniform("rise-grid", 1, cells, cells) < p).float()
    up = F.interpolate(grid, size=((cells + 1) * ch, (cells + 1) * cw), mode="bilinear", align_corners=False)
    dy, dx = mask_draws.integers("rise-shift-y", ch), mask_draws.integers("rise-shift-x", cw)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, :]
    m = up[torch.arange(masks)[:, None, None], 0, rows, cols].to(x.device, x.dtype)  # masks x H x W
    probs, step = [], max(1, chunk // (h * w))
    with torch.no_grad(), eval_mode(model):
        for start in range(0, n * masks, step):  # image i // masks under mask i % masks, in that order
            i = torch.arange(start, min(start + step, n * masks), device=x.device)
            probs.append(model.logits(x[i // masks] * m[i % masks, None]).float().softmax(1))
    prob = torch.cat(probs).view(n, masks, -1).gather(2, classes[:, None, :].expand(n, masks, -1))  # N x M x K
    return torch.einsum("nmk,mhw->nkhw", prob, m.float()) / (masks * p)


__all__ = ["LIBRARY_METHODS", "METHODS", "cam", "normalize_maps", "rise"]
