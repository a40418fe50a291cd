"""Conditional-GAN adversarial patches placed by Grad-CAM (protocols section 1, our reconstruction).

A U-Net generator G(image, window, target class) -> H x W map in [0, 1] (sigmoid output); the patch is the map's
crop at the window, so the generator sees the whole image as context and the window it must fill. The target class
conditions every level of the U-Net through a learned embedding (broadcast to the input and FiLM in each block).
A PatchGAN discriminator judges patched images against clean ones. Generator loss:
``lambda_adv * (CE or CW margin towards the target, mean over the victims) + lambda_gan * non-saturating GAN loss
+ lambda_tv * TV(patch)``.

``fit`` trains on an in-memory image set (seeded, progress bar, resumable from its last finished epoch);
``save``/``load`` write safetensors plus a JSON configuration (with the training curve). At attack time the cost is
one Grad-CAM for the placement and one generator forward per batch, plus ``refine`` optional signed-gradient steps
on the patch pixels starting from the generator's patch (amortised + refined).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from robust.attacks.artifacts import check_config, config_path, read_config
from robust.attacks.base import AttackResult, PatchAttack, check_training, sample_targets
from robust.attacks.lavan import OPTIMIZERS, optimise_patch, patch_loss
from robust.checks import SEED_LIMIT, check_int, check_number, check_positive_int
from robust.data.base import ImageSet
from robust.device import autocast
from robust.io import atomic_path, atomic_write_text
from robust.metrics import total_variation
from robust.models.backbone import Backbone
from robust.models.checkpoint import check_state, read_state_dict
from robust.models.state import eval_mode, preserved_grads
from robust.placement import crop, paste

FORMAT = "robust-gan-patch/1"


class _Block(nn.Module):
    """3x3 conv (stride 1 or 2) -> GroupNorm -> FiLM by the class embedding -> LeakyReLU."""

    def __init__(self, cin: int, cout: int, embed: int, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride, 1)
        self.norm = nn.GroupNorm(min(8, cout), cout, affine=False)
        self.film = nn.Linear(embed, 2 * cout)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.film(e)[:, :, None, None].chunk(2, 1)
        return F.leaky_relu(self.norm(self.conv(x)) * (1 + gamma) + beta, 0.2)


class Generator(nn.Module):
    """U-Net on the context around the window: (N x C x s x s context, N x 3 x s x s window mask and box position,
    N targets) -> N x C x s x s map in [0, 1]. The target enters as a learned per-class map at the input (a
    class-conditional template the U-Net can start from) and by FiLM in every block."""

    def __init__(self, num_classes: int, channels: int = 3, width: int = 32, depth: int = 3, embed: int = 32,
                 context: int = 18):
        super().__init__()
        self.embed = nn.Embedding(num_classes, embed)
        self.grid = min(context, 32)  # the template's own resolution, upsampled to the context
        self.template = nn.Embedding(num_classes, channels * self.grid * self.grid)
        nn.init.normal_(self.template.weight, std=0.1)
        widths = [width * 2 ** i for i in range(depth + 1)]
        self.stem = _Block(2 * channels + 3, widths[0], embed)
        self.down = nn.ModuleList(_Block(widths[i], widths[i + 1], embed, stride=2) for i in range(depth))
        self.mid = _Block(widths[-1], widths[-1], embed)
        self.up = nn.ModuleList(_Block(widths[i + 1] + widths[i], widths[i], embed) for i in reversed(range(depth)))
        self.head = nn.Conv2d(widths[0], channels, 1)

    def forward(self, ctx: torch.Tensor, where: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        e = self.embed(target)
        n, c, s, _ = ctx.shape
        template = self.template(target).view(n, c, self.grid, self.grid)
        if self.grid != s:
            template = F.interpolate(template, size=(s, s), mode="bilinear", align_corners=False)
        h = self.stem(torch.cat([ctx, where, template], 1), e)
        skips = [h]
        for block in self.down:
            h = block(h, e)
            skips.append(h)
        h = self.mid(skips.pop(), e)
        for block in self.up:
            skip = skips.pop()
            h = F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            h = block(torch.cat([h, skip], 1), e)
        return torch.sigmoid(self.head(h) + template)


class Discriminator(nn.Module):
    """PatchGAN: a logit per receptive field (real = clean image), spectral-normalised convolutions."""

    def __init__(self, channels: int = 3, width: int = 32):
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        self.net = nn.Sequential(
            sn(nn.Conv2d(channels, width, 4, 2, 1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(width, 2 * width, 4, 2, 1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(2 * width, 1, 3, 1, 1)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def context_side(side: int, image_hw: tuple[int, int]) -> int:
    """Side of the square context the generator sees around a ``side`` px window: twice the window, within the
    image."""
    return min(2 * side, *image_hw)


def _context(x: torch.Tensor, boxes: torch.Tensor, mask: torch.Tensor, s: int
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The s x s context around each box (shifted to stay inside the image), the generator's position input
    (window mask in the context, box centre in image coordinates as two constant planes) and the window's box
    inside the context."""
    n, _, h, w = x.shape
    p = mask.shape[-1]
    top = (boxes[:, 0] - (s - p) // 2).clamp(0, h - s)
    left = (boxes[:, 1] - (s - p) // 2).clamp(0, w - s)
    side = torch.full_like(top, s)
    ctx = crop(x, torch.stack([top, left, side, side], 1))
    inner = torch.stack([boxes[:, 0] - top, boxes[:, 1] - left, boxes[:, 2], boxes[:, 3]], 1)
    window = paste(x.new_zeros(n, 1, s, s), mask.to(x.dtype).expand(n, 1, p, p), inner)
    centre = torch.stack([(boxes[:, 0] + p / 2) / h, (boxes[:, 1] + p / 2) / w], 1).to(x.dtype)
    where = torch.cat([window, centre[:, :, None, None].expand(n, 2, s, s)], 1)
    return ctx, where, inner


class GanPatch(PatchAttack):
    """Targeted patches from a conditional U-Net generator; ``fit`` (or ``load``) before use. ``refine`` > 0 adds
    that many ``refine_optimizer`` steps of size ``refine_step`` on each patch at attack time."""

    name = "gan-patch"
    targeted = True
    #: defined by a trained checkpoint (refused as load overrides); ``training_params``: what training depends on
    fixed_params = frozenset({"area", "shape", "width", "depth", "embed"})
    training_params = fixed_params | {"loss", "lambda_adv", "lambda_gan", "lambda_tv"}

    def __init__(self, *, width: int = 32, depth: int = 3, embed: int = 32, loss: str = "ce",
                 lambda_adv: float = 1.0, lambda_gan: float = 0.05, lambda_tv: float = 0.05,
                 refine: int = 0, refine_step: float = 0.02, refine_optimizer: str = "sign", **patch_params):
        super().__init__(**patch_params)
        for key, value in (("width", width), ("depth", depth), ("embed", embed)):
            check_positive_int(value, key)
        if loss not in ("ce", "cw"):
            raise ValueError(f"loss={loss!r} is not valid; expected 'ce' or 'cw'.")
        for key, value in (("lambda_adv", lambda_adv), ("lambda_gan", lambda_gan), ("lambda_tv", lambda_tv)):
            check_number(value, key, low=0, expected="a finite number >= 0")
        check_int(refine, "refine", low=0, expected="an integer >= 0 (refinement steps)")
        check_number(refine_step, "refine_step", low=0, low_open=True, expected="a positive, finite number")
        if refine_optimizer not in OPTIMIZERS:
            raise ValueError(f"refine_optimizer={refine_optimizer!r} is not valid; expected one of {OPTIMIZERS}.")
        self.width, self.depth, self.embed, self.loss = width, depth, embed, loss
        self.lambdas = {"adv": float(lambda_adv), "gan": float(lambda_gan), "tv": float(lambda_tv)}
        self.refine, self.refine_step, self.refine_optimizer = refine, float(refine_step), refine_optimizer
        self.generator_net: Generator | None = None
        self.num_classes: int | None = None
        self.image_size: tuple[int, int, int] | None = None
        self.history: list[dict] = []
        self.training: dict = {}

    # -- configuration and checkpoints -------------------------------------------------------------------------

    def config(self) -> dict:
        return {"format": FORMAT, "attack": self.name, "area": self.area, "shape": self.shape,
                "placement": self.placement, "stride": self.stride, "seed": self.seed, "width": self.width,
                "depth": self.depth, "embed": self.embed, "loss": self.loss,
                **{f"lambda_{k}": v for k, v in self.lambdas.items()},
                "num_classes": self.num_classes, "image_size": list(self.image_size or ()),
                "patch_side": self.side(torch.empty(1, *self.image_size)) if self.image_size else None,
                "training": self.training, "history": self.history}

    def _build(self, num_classes: int, image_size: tuple[int, int, int]) -> None:
        self.num_classes, self.image_size = num_classes, tuple(image_size)
        side = self.side(torch.empty(1, *image_size))  # the area must give a patch that fits these images
        s = context_side(side, image_size[1:])
        self.generator_net = _seeded(lambda: Generator(num_classes, image_size[0], self.width, self.depth,
                                                       self.embed, s), self.seed)

    def save(self, path: str | os.PathLike) -> None:
        """``path`` (.safetensors) with the generator's weights and ``path`` + ``.json`` with the configuration."""
        from safetensors.torch import save_file

        if self.generator_net is None:
            raise ValueError("gan-patch has nothing to save; call fit() first.")
        path = Path(path)
        state = {k: v.detach().cpu().contiguous() for k, v in self.generator_net.state_dict().items()}
        with atomic_path(path) as tmp:
            save_file(state, str(tmp), metadata={"format": FORMAT})
        atomic_write_text(config_path(path), json.dumps(self.config(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike, *, num_classes: int | None = None,
             image_size: tuple[int, int, int] | None = None, **overrides: object) -> GanPatch:
        """A generator saved by ``save``. ``num_classes`` / ``image_size`` (when given) must match what it was
        trained for; ``overrides`` set attack-time options (``refine``, ``placement``, ``seed``, ...)."""
        path = Path(path)
        cfg = read_config(path, "gan-patch", "format", FORMAT)
        want = {"num_classes": (int,), "image_size": (list,), **{k: (int, float, str) for k in (
            "area", "shape", "placement", "stride", "seed", "width", "depth", "embed", "loss", "lambda_adv",
            "lambda_gan", "lambda_tv")}}
        check_config(cfg, want, path)
        if not (cfg["num_classes"] >= 2 and len(cfg["image_size"]) == 3
                and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in cfg["image_size"])):
            raise ValueError(f"gan-patch {str(path)!r} records num_classes={cfg['num_classes']!r}, image_size="
                             f"{cfg['image_size']!r}; expected a class count >= 2 and (C, H, W).")
        if num_classes is not None and cfg["num_classes"] != num_classes:
            raise ValueError(f"gan-patch {str(path)!r} was trained for {cfg['num_classes']} classes; expected "
                             f"{num_classes}.")
        if image_size is not None and tuple(cfg["image_size"]) != tuple(image_size):
            raise ValueError(f"gan-patch {str(path)!r} was trained on {tuple(cfg['image_size'])} images; expected "
                             f"{tuple(image_size)}.")
        keys = ("area", "shape", "placement", "stride", "seed", "width", "depth", "embed", "loss",
                "lambda_adv", "lambda_gan", "lambda_tv")
        if bad := sorted(cls.fixed_params & set(overrides)):
            raise ValueError(f"{bad} are fixed by the checkpoint {str(path)!r}; expected attack-time options only.")
        attack = cls(**{**{k: cfg[k] for k in keys}, **overrides})
        state = read_state_dict(path)
        with torch.device("meta"):  # the configured network's shapes, before allocating it
            attack._build(cfg["num_classes"], tuple(cfg["image_size"]))
        state = check_state(attack.generator_net, state, repr(str(path)))
        attack._build(cfg["num_classes"], tuple(cfg["image_size"]))
        attack.generator_net.load_state_dict(state)
        attack.history, attack.training = cfg.get("history", []), cfg.get("training", {})
        return attack

    # -- training ----------------------------------------------------------------------------------------------

    def fit(self, victims: Backbone | list[Backbone], data: ImageSet, *, epochs: int = 30, batch_size: int = 128,
            lr: float = 1e-3, template_lr: float = 0.05, precision: str = "fp32",
            resume: str | os.PathLike | None = None, progress: bool = False) -> GanPatch:
        """Train the generator (and its discriminator) against ``victims`` (their mean adversarial loss) on
        ``data`` for ``epochs`` epochs. Placement windows come from the first victim, computed once per image.
        With ``resume`` (a file path), the state after each epoch is written there and a later call with the same
        configuration continues from the last finished epoch. The generator's learning rates (``lr``, and
        ``template_lr`` for the per-class template) decay on a cosine over the epochs. ``precision`` (``fp32``,
        ``bf16``, ``fp16``) is the autocast of the training passes (see ``robust.device.autocast``)."""
        from rich.progress import Progress

        victims = check_training(victims, data)
        k = data.num_classes
        for key, value in (("epochs", epochs), ("batch_size", batch_size)):
            check_positive_int(value, key)
        for key, value in (("lr", lr), ("template_lr", template_lr)):
            check_number(value, key, low=0, low_open=True, expected="a positive, finite number")
        device = victims[0].device
        amp = autocast(device, precision)  # validates precision before any work
        self._build(k, data.image_size)
        g_net = self.generator_net.to(device)
        d_net = _seeded(lambda: Discriminator(data.image_size[0]), (self.seed + 1) % SEED_LIMIT).to(device)
        template = [g_net.template.weight]  # a per-class patch in logit space: trained at a patch's pace
        rest = [p for p in g_net.parameters() if p is not g_net.template.weight]
        g_opt = torch.optim.Adam([{"params": rest}, {"params": template, "lr": template_lr}], lr=lr,
                                 betas=(0.5, 0.999))
        d_opt = torch.optim.Adam(d_net.parameters(), lr=lr, betas=(0.5, 0.999))
        self.training = {"victims": [m.spec for m in victims], "data": data.name, "epochs": epochs,
                         "batch_size": batch_size, "lr": lr, "template_lr": template_lr, "precision": precision}
        self.history, first = [], 0
        if resume is not None:
            first = self._resume(Path(resume), g_net, d_net, g_opt, d_opt)
        side = self.side(torch.empty(1, *data.image_size))
        mask = self.mask(side, device)
        with contextlib.ExitStack() as stack:
            stack.enter_context(torch.enable_grad())
            for m in victims:
                stack.enter_context(eval_mode(m))
                stack.enter_context(preserved_grads(m))
            boxes = self._training_boxes(victims[0], data, batch_size)
            bar = stack.enter_context(Progress(disable=not progress, transient=True))
            task = bar.add_task(f"fit {self.name}", total=epochs * -(-len(data) // batch_size),
                                completed=first * -(-len(data) // batch_size))
            g_net.train()
            for epoch in range(first, epochs):
                started = time.perf_counter()
                for group, base in zip(g_opt.param_groups, (lr, template_lr), strict=True):
                    group["lr"] = base * 0.5 * (1 + math.cos(math.pi * epoch / epochs))  # cosine over the epochs
                sums = torch.zeros(5, device=device)  # adv, gan, tv, hits, n
                order = torch.randperm(len(data), generator=self.generator)
                for start in range(0, len(data), batch_size):
                    idx = order[start:start + batch_size]
                    x, y = data.batch(idx, device)
                    t = sample_targets(y, k, "random", self.generator)
                    b = boxes[idx].to(device) if boxes.numel() else self.locate(victims[0], x)
                    with amp:
                        sums += self._step(victims, g_net, d_net, g_opt, d_opt, x, y, t, b, mask)
                    bar.advance(task)
                adv, gan, tv, hits, n = sums.tolist()
                self.history.append({"epoch": epoch + 1, "loss_adv": adv / n, "loss_gan": gan / n, "tv": tv / n,
                                     "train_tcs": hits / n, "seconds": round(time.perf_counter() - started, 1)})
                if resume is not None:
                    self._checkpoint(Path(resume), epoch + 1, g_net, d_net, g_opt, d_opt)
            g_net.eval()
        return self

    def _step(self, victims, g_net, d_net, g_opt, d_opt, x, y, t, boxes, mask) -> torch.Tensor:
        patch = self._generate(g_net, x, boxes, mask, t)
        x_adv = paste(x, patch, boxes, mask)
        logits = [m.logits(x_adv) for m in victims]
        adv = sum(patch_loss(z.float(), y, t, self.loss) for z in logits) / len(victims)
        gan = F.softplus(-d_net(x_adv).float()).mean((1, 2, 3))
        tv = total_variation(patch.float())
        loss = (self.lambdas["adv"] * adv + self.lambdas["gan"] * gan + self.lambdas["tv"] * tv).mean()
        g_params = list(g_net.parameters())
        g_opt.zero_grad(set_to_none=True)
        for p, grad in zip(g_params, torch.autograd.grad(loss, g_params), strict=True):
            p.grad = grad
        g_opt.step()
        if self.lambdas["gan"] > 0:
            d_loss = F.softplus(-d_net(x).float()).mean() + F.softplus(d_net(x_adv.detach()).float()).mean()
            d_params = list(d_net.parameters())
            d_opt.zero_grad(set_to_none=True)
            for p, grad in zip(d_params, torch.autograd.grad(d_loss, d_params), strict=True):
                p.grad = grad
            d_opt.step()
        hits = (logits[0].argmax(1) == t).sum()
        n = torch.tensor(float(x.shape[0]), device=x.device)
        return torch.stack([adv.detach().sum(), gan.detach().sum(), tv.detach().sum(), hits.float(), n])

    def _generate(self, g_net: Generator, x: torch.Tensor, boxes: torch.Tensor, mask: torch.Tensor,
                  target: torch.Tensor) -> torch.Tensor:
        ctx, where, inner = _context(x, boxes, mask, context_side(mask.shape[-1], tuple(x.shape[-2:])))
        return crop(g_net(ctx, where, target), inner)

    def _training_boxes(self, victim: Backbone, data: ImageSet, batch_size: int) -> torch.Tensor:
        """The placement window of every training image (Grad-CAM: one batched pass over the set)."""
        if self.placement not in ("gradcam", "gradcam-min"):
            return torch.empty(0, dtype=torch.long)  # cheap: drawn per batch by locate()
        out = []
        for x, _ in data.batches(max(batch_size, 256), victim.device):
            out.append(self.locate(victim, x).cpu())
        return torch.cat(out)

    def _resume(self, path: Path, g_net, d_net, g_opt, d_opt) -> int:
        if not path.exists():
            return 0
        state = torch.load(path, map_location="cpu", weights_only=True)
        saved = json.loads(state["config"])

        def comparable(cfg: dict) -> dict:  # a resumed run may ask for more epochs
            return {**cfg, "history": None, "training": {**cfg["training"], "epochs": None}}

        if comparable(saved) != comparable(self.config()):
            raise ValueError(f"resume file {str(path)!r} was written for another configuration; expected the same "
                             "attack, data and training options (delete it to start over).")
        g_net.load_state_dict(state["generator"])
        d_net.load_state_dict(state["discriminator"])
        g_opt.load_state_dict(state["g_opt"])
        d_opt.load_state_dict(state["d_opt"])
        self.generator.set_state(state["rng"])
        self.history = saved["history"]
        return int(state["epoch"])

    def _checkpoint(self, path: Path, epoch: int, g_net, d_net, g_opt, d_opt) -> None:
        state = {"config": json.dumps(self.config()), "epoch": epoch, "generator": g_net.state_dict(),
                 "discriminator": d_net.state_dict(), "g_opt": g_opt.state_dict(), "d_opt": d_opt.state_dict(),
                 "rng": self.generator.get_state()}
        with atomic_path(path) as tmp:
            torch.save(state, tmp)

    # -- attack ------------------------------------------------------------------------------------------------

    def run(self, model: Backbone, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> AttackResult:
        if self.generator_net is None:
            raise ValueError("gan-patch has no trained generator; call fit() or GanPatch.load() first.")
        if self.num_classes != model.num_classes:
            raise ValueError(f"the generator was trained for {self.num_classes} classes; the model has "
                             f"{model.num_classes}.")
        if tuple(x.shape[1:]) != self.image_size:
            raise ValueError(f"the generator was trained on {self.image_size} images; x has {tuple(x.shape[1:])}.")
        boxes = self.locate(model, x)
        mask = self.mask(self.side(x), x.device)
        g_net = self.generator_net.to(x.device).eval()
        with torch.no_grad():
            patch = self._generate(g_net, x, boxes, mask, target)
        if self.refine:
            patch = optimise_patch(model, x, y, target, patch, boxes, mask, steps=self.refine,
                                   step_size=self.refine_step, optimizer=self.refine_optimizer, loss=self.loss)
        return AttackResult(paste(x, patch, boxes, mask), target, boxes, extra={"patch": patch})


def _seeded(factory, seed: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory()
