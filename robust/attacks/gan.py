"""Conditional-GAN adversarial patches placed by Grad-CAM (protocols section 1, our reconstruction).

A U-Net generator G(context, window, target class) -> a map in [0, 1] (sigmoid output) the size of its input: the
square context around the window (``context`` window sides, twice by default, kept inside the image), so it sees
what surrounds the window it must fill; the patch is the map's crop at the window. The target class conditions
every level of the U-Net through a learned embedding (broadcast to the input and FiLM in each block).
A PatchGAN discriminator judges patched images against clean ones. Generator loss:
``lambda_adv * (CE or CW margin towards the target, mean over the victims) + lambda_gan * non-saturating GAN loss
+ lambda_tv * TV(patch)``.

``fit`` trains on an in-memory image set (seeded, progress bar, resumable from its last finished epoch);
``save``/``load`` write safetensors plus a JSON configuration (with the training curve). At attack time the cost is
one Grad-CAM for the placement and one generator forward per batch, plus ``refine`` optional steps of LaVAN's
optimiser on the patch pixels starting from the generator's patch (amortised + refined).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from robust.attacks.base import AttackResult, attack_loss, bounded, check_training, optimizer_step, sample_targets
from robust.attacks.evaluate import evaluate
from robust.attacks.gan_networks import Discriminator, Generator, context_inputs
from robust.attacks.lavan import OPTIMIZERS, optimise_patch
from robust.attacks.trained import MAX_SIDE, TrainedPatchAttack
from robust.checks import (
    SEED_LIMIT,
    InputError,
    InputTypeError,
    check_choice,
    check_int,
    check_number,
    check_positive_int,
)
from robust.data.base import ImageSet
from robust.data.digits_stream import SPLITS as DIGIT_SPLITS
from robust.data.digits_stream import DigitStream
from robust.data.photo_stream import SPLITS as PHOTO_SPLITS
from robust.data.photo_stream import PhotoStream
from robust.device import autocast
from robust.draws import Draws, seeded
from robust.models.backbone import Backbone
from robust.models.checkpoint import check_state, load_state, state_digest
from robust.models.state import eval_mode, preserved_grads
from robust.placement import context_side, crop, paste
from robust.realism import total_variation
from robust.registry import register_attack

LR_SCHEDULES = ("cosine", "constant")


def training_stream(data: ImageSet, seed: int) -> DigitStream | PhotoStream:
    """The stream of fresh images like ``data``'s training images: digits-m composites of its split's digits
    (``train`` or ``fit``), or random resized crops of ``imagenet-crops``' training photos at its size."""
    split = data.meta.get("split")
    if data.name == "digits-m" and split in DIGIT_SPLITS:
        return DigitStream(split, seed)
    if data.name == "imagenet-crops" and split in PHOTO_SPLITS:
        return PhotoStream(split, seed, size=data.image_size[-1])
    raise InputError(f"stream=True draws fresh images like the training split's; data is {data.name!r} split "
                     f"{split!r}, expected digits-m split one of {DIGIT_SPLITS} or imagenet-crops split one of "
                     f"{PHOTO_SPLITS}.")


@register_attack
class GanPatch(TrainedPatchAttack):
    """Targeted patches from a conditional U-Net generator; ``fit`` (or ``load``) before use.

    The generator sees the square context around each window (``context`` times the window's side, within the image),
    where the window lies in it and the target class, and outputs the patch in [0, 1]: one Grad-CAM for the (default)
    placement and one generator forward per batch. ``refine`` > 0 adds up to that many ``refine_optimizer`` steps of
    size ``refine_step`` on ``refine_loss``, from each image's generated patch, at attack time (each image stops at its
    first success, as LaVAN's do): the generator as a warm start. The defaults, whatever loss the generator was trained
    with, are LaVAN's optimiser (Adam at 0.1) on cross-entropy: chosen on digits-m's validation split, where 10 such
    steps reach TCS 0.884 / 0.996 / 0.939 on resnet / vit / mixer against 0.892 / 0.976 / 0.912 on LaVAN's CW margin and
    0.830 / 0.949 / 0.774 for the signed steps of 0.02 used before
    (``bench/results/2026-12-03-cpu/refine-choice-val.txt``, from ``bench/frontier.py --split val``).

    Args:
        width: the generator's channels at full resolution (doubled at each level down).
        depth: the U-Net's levels down (and up).
        embed: the size of the target class's embedding (FiLM in every block).
        context: the side of the square the generator sees around the window, in window sides, >= 1 (kept inside
            the image: 2 is the paper's context around the patch; image side / window side or more, the whole
            image, as protocols section 1 also allows).
        canvas: the side in pixels the generator works at: the context square is resized to it (bilinear) and the
            generator's map back to the square before the patch is cut from it; None (the default): the square's
            own side. It separates how much the generator sees (``context``) from how finely it works.
        view: what the generator is told of the victim: ``none`` (the default), or ``logits``: the victim's
            log-probabilities on the clean image (one more victim forward per image), added to the target's
            embedding: a generator that knows what the victim sees, not only where the patch goes.
        loss: the adversarial loss of training: ``ce``, ``cw`` (the logit margin) or ``hinge`` (the margin, clamped
            where the target leads by ``robust.attacks.base.HINGE`` logits: a patch that succeeds by that much stops
            pulling, and the generator's capacity goes to the images it still misses).
        lambda_adv: the weight of the adversarial loss (mean over the victims), >= 0.
        lambda_gan: the weight of the non-saturating GAN loss of a PatchGAN discriminator, >= 0 (0: no
            discriminator step).
        lambda_tv: the weight of the patch's total variation, >= 0.
        refine: the most refinement steps per image at attack time, >= 0 (the per-image budget a board's frontier
            varies).
        refine_step: the refinement's step size (signed step, or Adam's learning rate).
        refine_optimizer: ``adam`` or ``sign``.
        refine_loss: ``ce`` or ``cw``.
        **patch_params: the options of every patch attack (``PatchAttack``: ``area``, ``placement``, ``shape``,
            ``stride``, ``bound``; and ``Attack``'s: ``target``, ``seed``, ``precision``,
            ``channels_last``, ``adaptive``).
            ``area`` and ``shape``, with ``width``, ``depth``, ``embed``, ``context``, ``canvas`` and ``view``,
            define the trained generator: ``load`` refuses an override that changes them.

    Shape:
        As ``Attack``; ``extra["patch"]``: the patches, N x 3 x p x p.

    Examples:
        >>> import torch
        >>> from robust.attacks.artifacts import resolve_checkpoint
        >>> from robust.attacks.gan import GanPatch
        >>> from robust.models import load_model
        >>> gan = GanPatch.load(resolve_checkpoint("zoo:digits-m/resnet/gan-patch-12pct"), refine=1)
        >>> gan.area, gan.placement
        (0.12, 'gradcam')
        >>> y = torch.tensor([3, 5])
        >>> result = gan(load_model("zoo:digits-m/resnet", "cpu"), torch.rand(2, 3, 32, 32), y)
        >>> tuple(result.x_adv.shape), tuple(result.extra["patch"].shape), bool((result.target != y).all())
        ((2, 3, 32, 32), (2, 3, 11, 11), True)
    """

    steps_param = "refine"  # the per-image budget a board's frontier varies

    name = "gan-patch"
    description = "Conditional-GAN patch at the Grad-CAM window (one generator forward per batch)"
    targeted = True
    resumable = True
    fixed_params = frozenset({"area", "shape", "width", "depth", "embed", "context", "canvas", "view"})
    later_params = frozenset({"context", "canvas", "view"})
    training_params = frozenset({"loss", "lambda_adv", "lambda_gan", "lambda_tv"})

    def __init__(self, *, width: int = 32, depth: int = 3, embed: int = 32, context: float = 2.0,
                 canvas: int | None = None, view: str = "none", loss: str = "ce",
                 lambda_adv: float = 1.0, lambda_gan: float = 0.05, lambda_tv: float = 0.05,
                 refine: int = 0, refine_step: float = 0.1, refine_optimizer: str = "adam", refine_loss: str = "ce",
                 **patch_params: object):
        super().__init__(**patch_params)
        for key, value in (("width", width), ("depth", depth), ("embed", embed)):
            check_positive_int(value, key)
        self.context = check_number(context, "context", low=1, expected="a finite number >= 1 (window sides)")
        self.canvas = None if canvas is None else check_int(
            canvas, "canvas", low=4, high=MAX_SIDE, expected=f"None or an integer from 4 to {MAX_SIDE} (pixels)")
        check_choice(view, ("none", "logits"), "view")
        check_choice(loss, ("ce", "cw", "hinge"), "loss")
        check_choice(refine_loss, ("ce", "cw"), "refine_loss")
        self.lambda_adv, self.lambda_gan, self.lambda_tv = (
            check_number(v, k, low=0, expected="a finite number >= 0")
            for k, v in (("lambda_adv", lambda_adv), ("lambda_gan", lambda_gan), ("lambda_tv", lambda_tv)))
        check_int(refine, "refine", low=0, expected="an integer >= 0 (refinement steps)")
        check_number(refine_step, "refine_step", low=0, low_open=True, expected="a positive, finite number")
        check_choice(refine_optimizer, OPTIMIZERS, "refine_optimizer")
        self.width, self.depth, self.embed, self.loss, self.view = width, depth, embed, loss, view
        self.refine, self.refine_step, self.refine_optimizer = refine, float(refine_step), refine_optimizer
        self.refine_loss = refine_loss
        self.generator_net: Generator | None = None

    # -- trained state -----------------------------------------------------------------------------------------

    def _build(self) -> Generator:
        s = self.canvas or context_side(self.side_for(self.image_size), self.image_size[1:], self.context)
        classes = self.protocol_classes()  # a generator for a target protocol embeds its classes only
        rows = self.num_classes if classes is None else len(classes)
        view = self.num_classes if self.view == "logits" else 0
        return seeded(lambda: Generator(rows, self.image_size[0], self.width, self.depth, self.embed, s, view),
                      self.seed)

    def state(self) -> dict[str, torch.Tensor] | None:
        return None if self.generator_net is None else self.generator_net.state_dict()

    def set_state(self, state: dict[str, torch.Tensor], where: str) -> None:
        with torch.device("meta"):  # the configured network's shapes, before allocating it
            state = check_state(self._build(), state, where)
        self.generator_net = self._build()
        self.generator_net.load_state_dict(state)

    # -- training ----------------------------------------------------------------------------------------------

    def fit(self, victims: Backbone | list[Backbone], data: ImageSet, *, epochs: int = 30, batch_size: int = 128,
            lr: float = 1e-3, template_lr: float = 0.05, precision: str = "fp32", train_samples: int | None = None,
            distill: float = 0.0, teacher_steps: int = 100, teacher_samples: int | None = None,
            teacher_margin: float = 2.0, distill_refine: int = 0, steps: int | None = None, stream: bool = False,
            lr_schedule: str = "cosine", cooldown: int = 0, log_every: int = 250, monitor: ImageSet | None = None,
            resume: str | os.PathLike | None = None, stop: int | None = None,
            init: Mapping[str, torch.Tensor] | None = None, progress: bool = False) -> GanPatch:
        """Train the generator (and its discriminator) against ``victims`` (their mean adversarial loss) on
        ``data`` for ``epochs`` epochs. Placement windows come from the first victim, computed once per image.
        With ``resume`` (a file path), the state after each epoch is written there and a later call with the same
        configuration continues from the last finished epoch. The generator's learning rates (``lr``, and
        ``template_lr`` for the per-class template) decay on a cosine over the epochs (``lr_schedule="constant"``:
        they do not). ``precision`` (``fp32``, ``bf16``, ``fp16``) is the autocast of the training passes (see
        ``robust.device.autocast``); ``train_samples`` keeps the first N images of ``data``. The targets it learns
        are ``trained_target()``'s: the attack's target protocol (``target="n8"``: the eight N8 classes), else random
        classes.

        ``steps`` = N measures the schedule in optimiser steps instead: each step draws its batch from (seed,
        step) alone, a history row (and a resume checkpoint) is written every ``log_every`` steps, and a resumed
        run may ask for more steps (at a constant rate, the same run continued). ``cooldown`` = K > 0 (with
        ``lr_schedule="constant"``) decays the rates linearly to zero over the last K steps: the decay phase of a
        warmup-stable-decay schedule (Hägele et al., "Scaling Laws and Compute-Optimal Training Beyond Fixed
        Training Durations", NeurIPS 2024), which lets a constant-rate run be branched at any step it has reached
        and annealed from there (a resume file of the constant run continues into ``steps`` = its step + K), while
        the constant run itself can go on. ``stop`` = M < N ends this call after step M of the same schedule (a
        chunk of it: a later call with ``resume`` continues). ``init``, a generator's state dict of this
        architecture (e.g. another run's; one of another ``context`` has its template resampled,
        ``Generator.adapt``), is where the generator starts instead of its seeded initialisation (a
        warm start, e.g. to train a generator further on another loss; its digest is recorded as ``init`` in the
        training, so that a resume file only continues the same start). With ``stream`` the batches are
        fresh images (``training_stream``: digits-m composites of ``data``'s digits when ``data`` is digits-m's
        ``train`` or ``fit`` split, random resized crops of the training photos for imagenet-crops' ``train``)
        labelled by the first victim's decisions, windows placed per batch: a
        generator never sees an image twice. ``monitor``, a held-out set (e.g. digits-m ``val``), is scored at
        every history row (``val_tcs``: the attack as configured, mean TCS over the victims), so a schedule can
        run until that curve flattens.

        ``distill`` > 0 distils the per-image optimum: before the first epoch, LaVAN (up to ``teacher_steps`` Adam
        steps on the CW margin against the first victim, from a grey patch, each image stopping once its target
        leads by ``teacher_margin`` logits, at its training window) computes a patch and a fixed target for
        ``teacher_samples`` images (a seeded draw; all by default); training then draws those images' targets from
        the teacher and adds ``distill`` x the mean absolute difference between the generated patch and the
        teacher's successful patch to the generator's loss. The grey start makes the teacher's patch a function of
        the image and the target, something a generator can learn, where a random start would be noise. The
        teacher's patches are kept in the resume file, so an interrupted run does not recompute them. With
        ``distill_refine`` = k > 0 the teacher of every training image is instead the generator's own patch after
        k such steps, computed on the fly (learned refinement: the generator is pulled to where k steps of
        refinement would take its patch, at k victim passes more per batch).

        Example (500 fresh batches against the resnet, scored on val every 100 steps)::

            from robust.data import load_dataset
            from robust.models import load_model

            net = load_model("zoo:digits-m/resnet")
            fit = load_dataset("digits-m", "fit")
            val = load_dataset("digits-m", "val")
            gan = GanPatch(area=0.12).fit(net, fit, steps=500, stream=True, lr_schedule="constant",
                                          log_every=100, monitor=val)
            gan.history[-1]  # {"step": 500, "train_tcs": ..., "val_tcs": ..., ...}"""
        from rich.progress import Progress

        for key, value in (("epochs", epochs), ("batch_size", batch_size), ("teacher_steps", teacher_steps),
                           ("log_every", log_every)):
            check_positive_int(value, key)
        for key, value in (("lr", lr), ("template_lr", template_lr)):
            check_number(value, key, low=0, low_open=True, expected="a positive, finite number")
        check_number(distill, "distill", low=0, expected="a finite number >= 0 (the distillation weight)")
        check_number(teacher_margin, "teacher_margin", low=0, expected="a finite number >= 0 (logits)")
        check_int(distill_refine, "distill_refine", low=0, expected="an integer >= 0 (refinement steps)")
        for key, value in (("teacher_samples", teacher_samples), ("steps", steps), ("stop", stop)):
            if value is not None:
                check_positive_int(value, key)
        check_choice(lr_schedule, LR_SCHEDULES, "lr_schedule")
        check_int(cooldown, "cooldown", low=0, expected="an integer >= 0 (steps of linear decay at the end)")
        if cooldown and (steps is None or lr_schedule != "constant" or cooldown > steps):
            raise InputError(f"cooldown={cooldown!r} is not valid here (steps={steps!r}, lr_schedule="
                             f"{lr_schedule!r}); expected steps=N >= cooldown and lr_schedule='constant': a cooldown "
                             "is the last steps of a constant-rate schedule in steps.")
        if stop is not None and (steps is None or stop > steps):
            raise InputError(f"stop={stop!r} is not valid with steps={steps!r}; expected a step of the schedule "
                             "(steps=N, stop <= N).")
        if not isinstance(stream, bool):
            raise InputError(f"stream={stream!r} is not valid; expected True or False.")
        if stream and steps is None:
            raise InputError("stream=True needs steps=N: a stream has no epochs; expected a schedule in steps.")
        if stream and (train_samples is not None or (distill and not distill_refine)):
            raise InputError("stream=True draws fresh images, so neither train_samples nor a teacher cached per "
                             "stored image (distill without distill_refine) applies; expected neither.")
        if monitor is not None and not isinstance(monitor, ImageSet):
            raise InputTypeError(f"monitor must be an ImageSet (a held-out split), got {type(monitor).__name__}.")
        schedule = {"steps": steps, "stream": stream, "log_every": log_every} if steps is not None else {
            "epochs": epochs}
        victims, data = self._begin_fit(victims, data, train_samples, {
            **schedule, "batch_size": batch_size, "lr": lr, "template_lr": template_lr, "precision": precision,
            **({"lr_schedule": lr_schedule} if lr_schedule != "cosine" else {}),
            **({"cooldown": cooldown} if cooldown else {}),
            **({"train_samples": train_samples} if train_samples is not None else {}),
            **({"distill": distill, "teacher_margin": teacher_margin,
                **({"distill_refine": distill_refine} if distill_refine else
                   {"teacher_steps": teacher_steps, "teacher_samples": teacher_samples})} if distill else {})})
        if init is not None:
            self.training["init"] = state_digest(init)
        if monitor is not None:
            check_training(victims, monitor)
            self.training["monitor"] = f"{monitor.name}/{monitor.meta.get('split', '?')}"
        source = training_stream(data, self.seed) if stream else None
        k, device = data.num_classes, victims[0].device
        amp = autocast(device, precision)  # validates precision before any work
        self.generator_net = g_net = self._build().to(device)
        if init is not None:
            load_state(g_net, g_net.adapt(init), "init")  # a template of another context is resampled
        d_net = seeded(lambda: Discriminator(data.image_size[0]), (self.seed + 1) % SEED_LIMIT).to(device)
        template = [g_net.template.weight]  # a per-class patch in logit space: trained at a patch's pace
        rest = [p for p in g_net.parameters() if p is not g_net.template.weight]
        g_opt = torch.optim.Adam([{"params": rest}, {"params": template, "lr": template_lr}], lr=lr, betas=(0.5, 0.999))
        d_opt = torch.optim.Adam(d_net.parameters(), lr=lr, betas=(0.5, 0.999))
        first = 0
        if (saved := self._resumed(None if resume is None else Path(resume))) is not None:
            for obj, key in ((g_net, "generator"), (d_net, "discriminator"), (g_opt, "g_opt"), (d_opt, "d_opt")):
                obj.load_state_dict(saved[key])
            first = int(saved["step" if steps is not None else "epoch"])
        mask = self.mask(self.side_for(data.image_size), device)
        per_epoch = -(-len(data) // batch_size)
        total, done = (steps, first) if steps is not None else (epochs * per_epoch, first * per_epoch)

        def set_lr(at: int, of: int) -> None:  # at ``at`` steps (or epochs) done of ``of``
            for group, base in zip(g_opt.param_groups, (lr, template_lr), strict=True):
                group["lr"] = base * (0.5 * (1 + math.cos(math.pi * at / of)) if lr_schedule == "cosine" else
                                      min(1.0, (of - at) / cooldown) if cooldown else 1.0)

        with contextlib.ExitStack() as stack:
            stack.enter_context(torch.enable_grad())
            for m in victims:
                stack.enter_context(eval_mode(m))
                stack.enter_context(preserved_grads(m))
            boxes = torch.empty(0, dtype=torch.long) if stream else self._training_boxes(victims[0], data, batch_size)
            teacher = None

            def checkpoint(at: int) -> None:
                if resume is not None:
                    self._save_resume(Path(resume), **{"step" if steps is not None else "epoch": at},
                                      generator=g_net.state_dict(), discriminator=d_net.state_dict(),
                                      g_opt=g_opt.state_dict(), d_opt=d_opt.state_dict(),
                                      **({"teacher": teacher} if teacher else {}))

            def train_batch(x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor | None,
                            clean: torch.Tensor | None = None) -> torch.Tensor:
                t = sample_targets(y, k, self.trained_target(), self.generator)
                b = boxes[idx].to(device) if boxes.numel() else self.locate(victims[0], x, self.generator)
                view = self._view(victims[0], x, clean)  # once per step, for the step and its reference
                ref = self._reference(teacher, distill_refine, teacher_margin, victims[0], g_net, x, y, t, b,
                                      mask, idx, amp, view) if distill else None
                with amp:
                    return self._step(victims, g_net, d_net, g_opt, d_opt, x, y, t, b, mask, distill, ref, view)

            def record(sums: torch.Tensor, started: float, **at: int) -> None:
                adv, gan, tv, hits, n, dist, dn = sums.tolist()
                row = {**at, "loss_adv": adv / n, "loss_gan": gan / n, "tv": tv / n,
                       **({"distill": dist / max(dn, 1)} if distill else {}), "train_tcs": hits / n}
                if monitor is not None:
                    row["val_tcs"] = sum(evaluate(self, m, monitor).tcs for m in victims) / len(victims)
                    g_net.train()
                self.history.append({**row, "seconds": round(time.perf_counter() - started, 1)})
                checkpoint(next(iter(at.values())))

            if distill and not distill_refine:
                teacher = (saved or {}).get("teacher")
                if teacher is None:
                    teacher = self._teacher(victims[0], data, boxes, mask, teacher_samples, teacher_steps,
                                            teacher_margin, batch_size, amp, progress)
                    checkpoint(first)  # the teacher's patches are kept before the first epoch
                teacher = {k: v.to(device) for k, v in teacher.items()}
            bar = stack.enter_context(Progress(disable=not progress, transient=True))
            task = bar.add_task(f"fit {self.name}", total=total, completed=done)
            g_net.train()
            if steps is None:
                for epoch in range(first, epochs):
                    started = time.perf_counter()
                    set_lr(epoch, epochs)  # cosine over the epochs
                    sums = torch.zeros(7, device=device)  # adv, gan, tv, hits, n, distill, distilled
                    order = torch.randperm(len(data), generator=self.generator)
                    for start in range(0, len(data), batch_size):
                        idx = order[start:start + batch_size]
                        sums += train_batch(*data.batch(idx, device), idx)
                        bar.advance(task)
                    record(sums, started, epoch=epoch + 1)
            else:
                sums, started = torch.zeros(7, device=device), time.perf_counter()
                end = steps if stop is None else stop
                for step in range(first, end):
                    set_lr(step, steps)
                    if source is not None:  # fresh images, labelled by the first victim's decisions
                        x, _ = source.batch(step, batch_size, device)
                        with torch.no_grad(), amp:
                            clean = victims[0](x)
                        y, idx = clean.argmax(1), None
                    else:
                        idx = torch.from_numpy(np.random.default_rng([self.seed, step]).choice(
                            len(data), min(batch_size, len(data)), replace=False))
                        x, y = data.batch(idx, device)
                        clean = None
                    sums += train_batch(x, y, idx, clean)
                    bar.advance(task)
                    if (step + 1) % log_every == 0 or step + 1 == end:
                        record(sums, started, step=step + 1)
                        sums, started = torch.zeros(7, device=device), time.perf_counter()
            g_net.eval()
        return self

    def _step(self, victims: list[Backbone], g_net: Generator, d_net: Discriminator, g_opt: torch.optim.Optimizer,
              d_opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, t: torch.Tensor, boxes: torch.Tensor,
              mask: torch.Tensor, distill: float = 0.0, ref: tuple[torch.Tensor, torch.Tensor] | None = None,
              view: torch.Tensor | None = None) -> torch.Tensor:
        patch = self._generate(g_net, x, boxes, mask, t, view)
        x_adv = paste(x, patch, boxes, mask, check=False)  # boxes from our placement
        logits = [m.logits(x_adv) for m in victims]
        adv = sum(attack_loss(z.float(), y, t, self.loss) for z in logits) / len(victims)
        gan = F.softplus(-d_net(x_adv).float()).mean((1, 2, 3))
        tv = total_variation(patch.float())
        loss = (self.lambda_adv * adv + self.lambda_gan * gan + self.lambda_tv * tv).mean()
        dist, used = torch.zeros((), device=x.device), torch.zeros((), device=x.device)
        if ref is not None:  # distillation: towards the teacher's patch, where it had one that worked
            target_patch, use = ref
            per_image = (patch.float() - target_patch).abs().mean((1, 2, 3)) * use
            loss = loss + distill * per_image.sum() / x.shape[0]
            dist, used = per_image.detach().sum(), use.sum().float()
        optimizer_step(loss, list(g_net.parameters()), g_opt)
        if self.lambda_gan > 0:
            d_loss = F.softplus(-d_net(x).float()).mean() + F.softplus(d_net(x_adv.detach()).float()).mean()
            optimizer_step(d_loss, list(d_net.parameters()), d_opt)
        hits = (logits[0].argmax(1) == t).sum()
        n = torch.tensor(float(x.shape[0]), device=x.device)
        return torch.stack([adv.detach().sum(), gan.detach().sum(), tv.detach().sum(), hits.float(), n, dist, used])

    def _view(self, victim: Backbone, x: torch.Tensor, clean: torch.Tensor | None = None) -> torch.Tensor | None:
        """What the generator is told of ``victim`` on the clean ``x`` (``view``): None, or its log-probabilities,
        N x classes, from its logits ``clean`` on ``x`` when the caller has them, else from one forward (no
        gradient)."""
        if self.view == "none":
            return None
        if clean is None:
            with torch.no_grad():
                clean = victim.logits(x)
        return clean.float().log_softmax(1)

    def _generate(self, g_net: Generator, x: torch.Tensor, boxes: torch.Tensor, mask: torch.Tensor,
                  target: torch.Tensor, view: torch.Tensor | None = None) -> torch.Tensor:
        ctx, where, inner = context_inputs(x, boxes, mask, self.context)
        side = ctx.shape[-1]
        if view is not None:
            view = view.to(ctx.dtype)
        if self.canvas is None or self.canvas == side:
            out = g_net(ctx, where, self.class_rows(target), view)
        else:  # the generator works at the canvas; its map comes back to the context square
            def resize(t: torch.Tensor, to: int) -> torch.Tensor:
                return F.interpolate(t, size=(to, to), mode="bilinear", align_corners=False, antialias=True)

            out = resize(g_net(resize(ctx, self.canvas), resize(where, self.canvas), self.class_rows(target), view),
                         side)
        return crop(out, inner, mask.shape[-1], check=False)

    def _reference(self, teacher: dict | None, refine: int, margin: float, victim: Backbone, g_net: Generator,
                   x: torch.Tensor, y: torch.Tensor, t: torch.Tensor, boxes: torch.Tensor, mask: torch.Tensor,
                   idx: torch.Tensor, amp: contextlib.AbstractContextManager[None], view: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch's distillation target and which images have one: the cached ``teacher``'s patches where it
        succeeded (its targets replace ``t`` in place for every image it covers), or, with ``refine`` steps, the
        generator's own patch (told the victim's ``view``) refined towards ``t``."""
        if teacher is None:
            with torch.no_grad(), amp:
                start = self._generate(g_net, x, boxes, mask, t, view)
            with amp:
                refined, _ = optimise_patch(victim, x, y, t, start.float(), boxes, mask, steps=refine, step_size=0.1,
                                            optimizer="adam", loss="cw", margin=margin)
            return refined, torch.ones(len(x), dtype=torch.bool, device=x.device)
        j = teacher["slot"][idx.to(x.device)]
        taught = j >= 0
        j = j.clamp_min(0)  # a row to read for every image; those without a teacher keep t, no patch and no use
        t.copy_(torch.where(taught, teacher["target"][j], t))
        patches = torch.where(taught[:, None, None, None], teacher["patch"][j].float(), 0.0)
        return patches, taught & (teacher["margin"][j] > 0)

    def _teacher(self, victim: Backbone, data: ImageSet, boxes: torch.Tensor, mask: torch.Tensor,
                 samples: int | None, steps: int, margin: float, batch_size: int,
                 amp: contextlib.AbstractContextManager[None], progress: bool) -> dict[str, torch.Tensor]:
        """LaVAN's patch (Adam, learning rate 0.1, CW margin, up to ``steps`` steps from a grey patch, stopping at
        ``margin``) for ``samples`` training images (a seeded draw; all by default) at their training windows, with
        random targets: the rows' ``slot`` in the set's order (-1: no teacher), ``target``, ``patch`` (float16, on
        the CPU) and ``margin`` (> 0: the target was reached)."""
        from rich.progress import Progress

        n = len(data) if samples is None else min(samples, len(data))
        chosen = torch.randperm(len(data), generator=self.generator)[:n].sort().values
        side = mask.shape[-1]
        out: dict[str, list[torch.Tensor]] = {"target": [], "patch": [], "margin": []}
        with Progress(disable=not progress, transient=True) as bar:
            task = bar.add_task("teacher patches (LaVAN)", total=n)
            for start in range(0, n, batch_size):
                idx = chosen[start:start + batch_size]
                x, y = data.batch(idx, victim.device)
                t = sample_targets(y, data.num_classes, self.trained_target(), self.generator)
                b = boxes[idx].to(victim.device) if boxes.numel() else self.locate(victim, x, self.generator)
                grey = torch.full((len(idx), x.shape[1], side, side), 0.5, device=x.device, dtype=x.dtype)
                with amp:
                    patch, reached = optimise_patch(victim, x, y, t, grey, b, mask, steps=steps, step_size=0.1,
                                                    optimizer="adam", loss="cw", margin=margin)
                for key, v in (("target", t), ("patch", patch.half()), ("margin", reached.float())):
                    out[key].append(v.cpu())
                bar.advance(task, len(idx))
        slot = torch.full((len(data),), -1, dtype=torch.long)
        slot[chosen] = torch.arange(n)
        return {"slot": slot, **{k: torch.cat(v) for k, v in out.items()}}

    def _training_boxes(self, victim: Backbone, data: ImageSet, batch_size: int) -> torch.Tensor:
        """The placement window of every training image (Grad-CAM or the search: one batched pass over the set)."""
        if self.placement not in ("gradcam", "gradcam-min", "search"):
            return torch.empty(0, dtype=torch.long)  # cheap: drawn per batch by locate()
        return torch.cat([self.locate(victim, x, self.generator).cpu()
                          for x, _ in data.batches(max(batch_size, 256), victim.device)])

    # -- attack ------------------------------------------------------------------------------------------------

    def run(self, model: Backbone, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
            draws: Draws) -> AttackResult:
        if self.generator_net is None:
            raise InputError("gan-patch has no trained generator; call fit() or GanPatch.load() first.")
        if self.num_classes != model.num_classes:
            raise InputError(f"the generator was trained for {self.num_classes} classes; the model has "
                             f"{model.num_classes}.")
        if tuple(x.shape[1:]) != self.image_size:
            raise InputError(f"the generator was trained on {self.image_size} images; x has {tuple(x.shape[1:])}.")
        self.class_rows(target, check=True)  # a target outside the protocol it was trained for: once per call
        boxes = self.locate(model, x, draws)
        mask = self.mask(self.side(x), x.device)
        g_net = self.generator_net.to(x.device).eval()
        limits = self.limits(x, boxes)
        with torch.no_grad():
            patch = bounded(self._generate(g_net, x, boxes, mask, target, self._view(model, x)), limits)
        if self.refine:
            patch, _ = optimise_patch(model, x, y, target, patch, boxes, mask, steps=self.refine,
                                      step_size=self.refine_step, optimizer=self.refine_optimizer,
                                      loss=self.refine_loss, limits=limits)
        return AttackResult(paste(x, patch, boxes, mask), target, boxes, extra={"patch": patch})
