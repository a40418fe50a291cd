"""Train a digits-m zoo architecture (seeded) and publish its weights and manifest entry.

The recipe: AdamW, linear warm-up then cosine decay, label smoothing, random translations and random colour
channel permutations as augmentation (both batched, drawn from an explicit ``torch.Generator``), bfloat16
autocast where the device supports it (float16 on CUDA cards without bfloat16, none on MPS). Accuracy is measured in
float32 on the test split (on the validation split for a model trained on ``fit``). ``robust zoo train ARCH``
runs it.
"""

from __future__ import annotations

import functools
import math
import re
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from timm.loss import SoftTargetCrossEntropy

from robust.checks import InputError, check_number, check_positive_int, check_seed
from robust.data import digits_m
from robust.data.digits_stream import DigitStream
from robust.device import autocast, resolve_device
from robust.io import cache_dir, publish_dir
from robust.metrics import clean_accuracy
from robust.models.backbone import Backbone
from robust.models.checkpoint import save_weights
from robust.models.zoo.archs import ARCHS, Recipe
from robust.models.zoo.manifest import ZOO_DIR, update_manifest
from robust.placement import patch_side


def random_shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Translate every image by its own random offset in [-max_shift, max_shift] pixels, batched.

    The images are padded by ``max_shift`` on each side with reflect padding, and each one's window is cut at its
    own offset (rows and columns drawn independently), so nothing is lost at the edges. The offsets are drawn from
    ``gen`` on its device.

    Args:
        x: the images.
        max_shift: the largest shift in pixels (0 or less: ``x`` itself is returned); under the image's side.
        gen: the generator of the offsets.

    Returns:
        The shifted images.

    Shape:
        x: N x C x H x W; returns N x C x H x W.

    Examples:
        >>> import torch
        >>> from robust.zoo_training import random_shift
        >>> x, gen = torch.rand(2, 3, 8, 8), torch.Generator().manual_seed(0)
        >>> tuple(random_shift(x, 2, gen).shape), random_shift(x, 0, gen) is x
        ((2, 3, 8, 8), True)
    """
    if max_shift <= 0:
        return x
    n, _, h, w = x.shape
    pad = F.pad(x, (max_shift,) * 4, mode="reflect")
    off = torch.randint(0, 2 * max_shift + 1, (2, n), generator=gen, device=gen.device).to(x.device)
    rows = (off[0, :, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (off[1, :, None] + torch.arange(w, device=x.device))[:, None, None, :]
    return pad[torch.arange(n, device=x.device)[:, None, None, None], torch.arange(x.shape[1], device=x.device)[
        None, :, None, None], rows, cols]


def channel_permute(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Permute the colour channels of each image independently (digits-m colours carry no label).

    Each image's permutation is drawn uniformly from ``gen`` on its device (the argsort of uniform numbers).

    Args:
        x: the images.
        gen: the generator of the permutations.

    Returns:
        The images with their channels reordered.

    Shape:
        x: N x C x H x W; returns N x C x H x W.

    Examples:
        >>> import torch
        >>> from robust.zoo_training import channel_permute
        >>> x = torch.tensor([0.0, 1.0, 2.0]).view(1, 3, 1, 1).repeat(4, 1, 2, 2)
        >>> out = channel_permute(x, torch.Generator().manual_seed(0))
        >>> tuple(out.shape), [sorted(image[:, 0, 0].tolist()) for image in out]
        ((4, 3, 2, 2), [[0.0, 1.0, 2.0], [0.0, 1.0, 2.0], [0.0, 1.0, 2.0], [0.0, 1.0, 2.0]])
    """
    perm = torch.rand(x.shape[0], x.shape[1], generator=gen, device=gen.device).argsort(1).to(x.device)
    return x.gather(1, perm[:, :, None, None].expand_as(x))


def _amp_precision(device: torch.device) -> str:
    """The recipe's autocast precision on ``device``: bf16 where it has it (``robust.device.autocast`` applies bf16
    on CUDA and CPUs and nothing elsewhere, e.g. MPS), fp16 on CUDA cards without bf16."""
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return "fp16"
    return "bf16"


AUGMENTS = {"patch-mixing": "pm", "masking": "mask"}  # augmentation -> suffix of the zoo name


def masked(x: torch.Tensor, masks: torch.Tensor, generator: torch.Generator, p: float = 0.5,
           fill: float = 0.5) -> torch.Tensor:
    """PatchCleanser's training augmentation: each image, with probability ``p``, hidden by the union of two masks
    of ``masks`` drawn uniformly (the same one twice: one mask), so that the model learns the one- and two-mask
    images its defence classifies.

    Args:
        x: the images.
        masks: the defence's mask set (``robust.defenses.mask_set``), True where a mask hides.
        generator: the CPU ``torch.Generator`` of the draws.
        p: the share of images masked.
        fill: the value written into hidden pixels.

    Returns:
        The images, some of them masked.

    Shape:
        x: N x C x H x W in [0, 1]; masks: K x H x W (bool); returns N x C x H x W.

    Examples:
        >>> import torch
        >>> from robust.defenses import mask_set
        >>> from robust.zoo_training import masked
        >>> out = masked(torch.zeros(4, 3, 8, 8), mask_set((8, 8), 2, 2), torch.Generator().manual_seed(0), p=1.0)
        >>> bool((out == 0.5).any(1).flatten(1).any(1).all())  # every image has hidden pixels
        True
    """
    n, k = x.shape[0], masks.shape[0]
    pair = torch.randint(0, k, (n, 2), generator=generator).to(x.device)
    chosen = torch.rand(n, generator=generator).to(x.device) < p
    hide = ((masks[pair[:, 0]] | masks[pair[:, 1]]) & chosen[:, None, None])[:, None].to(x.dtype)
    return x * (1 - hide) + fill * hide


def train_backbone(builder: Callable[..., torch.nn.Module], recipe: Recipe, *, split: str = "train", seed: int = 0,
                   device: str = "auto", amp: bool = True, augment: str | None = None, name: str = "model",
                   stream: bool = False, progress: bool = True) -> tuple[Backbone, float]:
    """Train ``builder(num_classes=10)`` with ``recipe`` on digits-m's ``split``.

    The recipe (see the module docstring): AdamW, linear warm-up then cosine decay per step, label smoothing, random
    shifts and channel permutations drawn from a ``torch.Generator`` seeded by ``seed``, autocast where the device
    supports it. The network is initialised after ``torch.manual_seed(seed)`` (the global generator: the caller's
    random state is reset too). The inputs are normalised by the split's per-channel mean and std, which the
    returned Backbone applies inside. An epoch is ``ceil(len(split) / batch_size)`` steps.

    Args:
        builder: makes the network, called as ``builder(num_classes=10)``.
        recipe: the hyper-parameters (``robust.models.zoo.archs.Recipe``: epochs, lr, weight decay, batch size,
            warm-up epochs, label smoothing, shift, amp).
        split: ``'train'`` (shipped models), or ``'fit'`` when choosing a recipe on ``'val'``.
        seed: the seed of the initialisation, the shuffling, the augmentation (and of the stream's composites).
        device: where to train (``'auto'``: CUDA, then MPS, then the CPU).
        amp: whether to autocast when the recipe does (bf16, or fp16 on CUDA cards without bf16; none on MPS).
        augment: ``'patch-mixing'`` to add Patch Mixing (8 x 8 grid, ratio U(0, 0.5), p = 0.5, soft targets with the
            recipe's label smoothing), ``'masking'`` to train for PatchCleanser (half the images hidden by two masks,
            drawn per image, of its 2 % mask set with 4 masks per axis: ``masked``), or None.
        name: the Backbone's name (and the progress bar's label).
        stream: whether each step's batch is a fresh draw of the split's digits on new backgrounds
            (``robust.data.digits_stream``) instead of the stored composites, for the same number of steps.
        progress: whether to show a progress bar.

    Returns:
        The trained model as a Backbone in eval mode, and the training seconds.

    Raises:
        InputError: a split other than ``train`` or ``fit``, an unknown augmentation, device or seed.

    Examples:
        >>> from unittest import mock
        >>> from torch import nn
        >>> from robust.data import digits_m
        >>> from robust.models.zoo.archs import Recipe
        >>> from robust.zoo_training import train_backbone
        >>> def tiny(num_classes):
        ...     return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        ...                          nn.Linear(8, num_classes))
        >>> split = digits_m.load("train").subset(slice(0, 64))  # a short run: 64 images, 2 steps
        >>> with mock.patch.object(digits_m, "load", lambda name: split):
        ...     model, seconds = train_backbone(tiny, Recipe(epochs=1, batch_size=32), device="cpu", progress=False)
        >>> model.name, model.input_size, model.num_classes, model.training
        ('model', (3, 32, 32), 10, False)
    """
    if split not in ("train", "fit"):
        raise InputError(f"split={split!r} is not valid for training; expected 'train' (shipped models) or 'fit' "
                         "(choosing on 'val').")
    if augment is not None and augment not in AUGMENTS:
        raise InputError(f"augment={augment!r} is not valid; expected one of {sorted(AUGMENTS)} or none.")
    dev = resolve_device(device)
    check_seed(seed)
    train_set = digits_m.load(split)
    source = DigitStream(split, seed) if stream else None
    torch.manual_seed(seed)  # weight initialisation inside timm draws from the global generator
    model = builder(num_classes=train_set.num_classes).to(dev)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    imgs = train_set.images.float().div_(255)
    mean, std = imgs.mean((0, 2, 3)), imgs.std((0, 2, 3))
    del imgs
    mean_d, std_d = mean.to(dev)[None, :, None, None], std.to(dev)[None, :, None, None]

    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    steps_per_epoch = math.ceil(len(train_set) / recipe.batch_size)
    total, warm = recipe.epochs * steps_per_epoch, int(recipe.warmup_epochs * steps_per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (
        1 + math.cos(math.pi * (s - warm) / max(1, total - warm))))
    precision = _amp_precision(dev) if amp and recipe.amp else "fp32"
    mixing, criterion = None, functools.partial(F.cross_entropy, label_smoothing=recipe.label_smoothing)
    if augment == "patch-mixing":
        from robust.augment import PatchMixing

        mixing = PatchMixing(8, ratio=(0.0, 0.5), p=0.5, soft=True, num_classes=train_set.num_classes,
                             label_smoothing=recipe.label_smoothing, generator=gen)
        criterion = SoftTargetCrossEntropy()  # of its soft targets
    masks = None
    if augment == "masking":
        from robust.defenses import mask_set

        masks = mask_set(tuple(train_set.image_size[1:]), patch_side(0.02, tuple(train_set.image_size[1:])), 4).to(dev)

    start = time.perf_counter()
    model.train()
    columns = [TextColumn(f"train {name}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
               TimeRemainingColumn()]
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task("train", total=total, info="")
        for epoch in range(recipe.epochs):
            running = 0.0
            batches = (source.batch(epoch * steps_per_epoch + i, recipe.batch_size, dev) for i in
                       range(steps_per_epoch)) if source is not None else train_set.batches(
                recipe.batch_size, dev, shuffle=True, generator=gen)
            for i, (x, y) in enumerate(batches):
                x = channel_permute(random_shift(x, recipe.shift, gen), gen)
                if mixing is not None:
                    x, y = mixing(x, y)  # y: soft targets
                if masks is not None:
                    x = masked(x, masks, gen)
                with autocast(dev, precision):
                    logits = model((x - mean_d) / std_d)
                loss = criterion(logits.float(), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                running += float(loss.detach())
                bar.update(task, advance=1, info=f"epoch {epoch + 1}/{recipe.epochs} loss {running / (i + 1):.3f}")
    seconds = time.perf_counter() - start
    backbone = Backbone(model, name=name, input_size=train_set.image_size, mean=mean.tolist(), std=std.tolist(),
                        class_names=train_set.class_names)
    return backbone.eval(), seconds


def train(arch: str, *, epochs: int | None = None, lr: float | None = None, seed: int = 0, device: str = "auto",
          out_dir: str | Path | None = None, publish: bool = False, amp: bool = True, augment: str | None = None,
          name: str | None = None, split: str = "train", stream: bool = False, progress: bool = True) -> dict:
    """Train zoo architecture ``arch`` on digits-m, save its weights and add it to the manifest there.

    It saves ``<out_dir>/digits-m-<name>.safetensors`` (architecture, normalisation and class names recorded) and
    updates ``manifest.json`` beside it, with the accuracy on the test split (on ``val`` for a model trained on
    ``fit``) measured in float32, the training seconds and the command that retrains it. ``robust zoo train ARCH``
    runs it.

    Args:
        arch: a zoo architecture (a key of ``robust.models.zoo.archs.ARCHS``: ``resnet``, ``vit``, ``mixer``...).
        epochs: overrides the recipe's epochs (a positive integer).
        lr: overrides the recipe's learning rate, in (0, 1).
        seed: the seed of the run (see ``train_backbone``).
        device: where to train (``'auto'``: CUDA, then MPS, then the CPU).
        out_dir: the folder of the weights and manifest (default: robust's cache, ``zoo/``).
        publish: write into the package's zoo instead, which only a source checkout allows (then no ``out_dir``,
            and ``split='train'``).
        amp: whether to autocast when the recipe does.
        augment: ``'patch-mixing'`` adds Patch Mixing (protocol defaults: 8 x 8 grid, r ~ U(0, 0.5), p = 0.5, soft
            targets with the recipe's label smoothing) and names the model ``<arch>-pm``; ``'masking'`` trains for
            PatchCleanser (``masked``) and names it ``<arch>-mask``.
        name: overrides that name (lower-case letters and digits joined by dashes), e.g. ``resnet-8ep`` for a
            control trained longer than its recipe.
        split: ``'train'``, or ``'fit'``: the training digits without the validation digits, scored on ``val``
            (never on test): the way to try a recipe; such a model is not published.
        stream: train on fresh composites of the split's digits (see ``train_backbone``).
        progress: whether to show a progress bar.

    Returns:
        The manifest entry (file, sha256, arch, family, params, ``test_accuracy`` and ``test_n`` or ``val_accuracy``
        and ``val_n``, train_seconds, epochs, lr, seed, split, device, torch, dataset, dataset_hash, augment, stream,
        command) and ``path``, the weights file.

    Raises:
        InputError: an unknown architecture, augmentation or split, epochs, lr or name out of range, ``out_dir`` with
            ``publish``, ``publish`` with ``split='fit'``, or publishing outside a source checkout.

    Examples:
        >>> from unittest import mock
        >>> from robust.data import digits_m
        >>> from robust.zoo_training import train
        >>> load = digits_m.load
        >>> with mock.patch.object(digits_m, "load", lambda split: load(split).subset(slice(0, 16))):  # a short run
        ...     entry = train("resnet", epochs=1, out_dir=".", amp=False, progress=False)
        >>> entry["path"], entry["test_n"], entry["command"]
        ('digits-m-resnet.safetensors', 16, 'robust zoo train resnet --epochs 1 --seed 0')
    """
    if arch not in ARCHS:
        raise InputError(f"arch={arch!r} is not a zoo architecture; expected one of {sorted(ARCHS)}.")
    if epochs is not None:
        check_positive_int(epochs, "epochs")
    if lr is not None:
        check_number(lr, "lr", low=0, high=1, low_open=True, high_open=True, expected="a number in (0, 1)")
    if name is not None and not (isinstance(name, str) and re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name)):
        raise InputError(f"name={name!r} is not valid; expected lower-case letters and digits joined by dashes, "
                         "e.g. 'resnet-8ep'.")
    if publish and out_dir is not None:
        raise InputError(f"out_dir={str(out_dir)!r} and publish=True: expected one of them.")
    if publish and split != "train":
        raise InputError(f"split={split!r} and publish=True: a shipped model trains on split='train' (a recipe "
                         "chosen on 'fit' / 'val' is then trained on all of 'train').")
    builder, recipe = ARCHS[arch]
    recipe = replace(recipe, epochs=epochs or recipe.epochs, lr=float(lr or recipe.lr))
    out_dir = publish_dir(ZOO_DIR) if publish else Path(out_dir) if out_dir is not None else cache_dir("zoo")
    key = name or (f"{arch}-{AUGMENTS[augment]}" if augment else arch)
    spec = f"zoo:digits-m/{key}"
    backbone, seconds = train_backbone(builder, recipe, split=split, seed=seed, device=device, amp=amp,
                                       augment=augment, name=spec, stream=stream, progress=progress)
    scored = "test" if split == "train" else "val"  # a model trained on 'fit' is chosen on 'val', never on test
    score_set = digits_m.load(scored)
    acc = clean_accuracy(backbone, score_set)["accuracy"]  # float32, like every later evaluation
    path = out_dir / f"digits-m-{key}.safetensors"
    sha = save_weights(path, backbone.net, arch=f"robust.models.zoo.archs:{arch}", name=spec,
                       num_classes=backbone.num_classes, input_size=backbone.input_size, mean=backbone.mean,
                       std=backbone.std, class_names=backbone.class_names)
    entry = {"file": path.name, "sha256": sha, "arch": arch, "family": backbone.family,
             "params": sum(p.numel() for p in backbone.net.parameters()), f"{scored}_accuracy": round(acc, 4),
             f"{scored}_n": len(score_set), "train_seconds": round(seconds, 1), "epochs": recipe.epochs,
             "lr": recipe.lr, "seed": seed, "split": split, "device": str(backbone.device), "torch": torch.__version__,
             "dataset": "digits-m", "dataset_hash": digits_m.content_hash(), "augment": augment, "stream": stream,
             "command": f"robust zoo train {arch} --epochs {recipe.epochs} --seed {seed}"
                        + (f" --lr {lr}" if lr else "") + (f" --augment {augment}" if augment else "")
                        + (f" --name {name}" if name else "") + (" --stream" if stream else "")
                        + (f" --split {split}" if split != "train" else "")
                        + (" --publish" if publish else "")}
    update_manifest(out_dir, f"digits-m/{key}", entry)
    return {**entry, "path": str(path)}


__all__ = ["AUGMENTS", "channel_permute", "masked", "random_shift", "train", "train_backbone"]
