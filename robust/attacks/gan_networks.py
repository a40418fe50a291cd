"""The networks of gan-patch: a class-conditional U-Net generator over the context around a patch window, and a
PatchGAN discriminator (spectral-normalised); plus the context crop the generator sees."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from robust.placement import context_boxes, context_side, crop, paste


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
    N targets[, N x V victim's view]) -> N x C x s x s map in [0, 1]. The target enters as a learned per-class map at
    the input (a class-conditional template the U-Net can start from) and by FiLM in every block; with ``view`` = V >
    0, a linear map of the victim's view of the clean image (its V log-probabilities) is added to the target's
    embedding, so every block is conditioned on what the victim sees as well as on what it should see."""

    def __init__(self, num_classes: int, channels: int = 3, width: int = 32, depth: int = 3, embed: int = 32,
                 context: int = 18, view: int = 0):
        super().__init__()
        self.embed = nn.Embedding(num_classes, embed)
        self.view = nn.Linear(view, embed) if view else None
        self.grid = min(context, 32)  # the template's own resolution, upsampled to the context
        self.template = nn.Embedding(num_classes, channels * self.grid * self.grid)
        nn.init.normal_(self.template.weight, std=0.1)
        widths = [width * 2 ** i for i in range(depth + 1)]
        self.stem = _Block(2 * channels + 3, widths[0], embed)
        self.down = nn.ModuleList(_Block(widths[i], widths[i + 1], embed, stride=2) for i in range(depth))
        self.mid = _Block(widths[-1], widths[-1], embed)
        self.up = nn.ModuleList(_Block(widths[i + 1] + widths[i], widths[i], embed) for i in reversed(range(depth)))
        self.head = nn.Conv2d(widths[0], channels, 1)

    def forward(self, ctx: torch.Tensor, where: torch.Tensor, target: torch.Tensor,
                view: torch.Tensor | None = None) -> torch.Tensor:
        e = self.embed(target)
        if self.view is not None:
            e = e + self.view(view)
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

    def adapt(self, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``state`` (another generator's) with its per-class template resampled (bilinear) to this one's grid: a
        generator trained on another context side can warm-start this one, since its convolutions do not depend on
        the side. Any other difference is left for ``load_state_dict`` to name.

        Example:
            >>> small, whole = Generator(10, context=22), Generator(10, context=32)
            >>> whole.load_state_dict(whole.adapt(small.state_dict()))
            <All keys matched successfully>
        """
        w, mine = state.get("template.weight"), self.template.weight
        if w is None or w.ndim != 2 or w.shape == mine.shape or len(w) != len(mine):
            return dict(state)
        c = mine.shape[1] // self.grid ** 2
        side = math.isqrt(w.shape[1] // c)
        if c * side * side != w.shape[1]:  # not a square template of these channels
            return dict(state)
        resized = F.interpolate(w.float().view(-1, c, side, side), size=(self.grid, self.grid), mode="bilinear",
                                align_corners=False)
        return {**state, "template.weight": resized.reshape(len(w), -1).to(w.dtype)}


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


def context_inputs(x: torch.Tensor, boxes: torch.Tensor, mask: torch.Tensor, scale: float = 2.0
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The context square around each box (``robust.placement.context_boxes`` at ``scale`` window sides), the
    generator's position input (window mask in the context, box centre in image coordinates as two constant planes)
    and the window's box inside the context."""
    n, _, h, w = x.shape
    p = mask.shape[-1]
    ctx_boxes, inner = context_boxes(boxes, (h, w), p, scale)  # the side known: nothing read from the device
    s = context_side(p, (h, w), scale)
    ctx = crop(x, ctx_boxes, s, check=False)
    window = paste(x.new_zeros(n, 1, s, s), mask.to(x.dtype).expand(n, 1, p, p), inner, check=False)
    centre = torch.stack([(boxes[:, 0] + p / 2) / h, (boxes[:, 1] + p / 2) / w], 1).to(x.dtype)
    where = torch.cat([window, centre[:, :, None, None].expand(n, 2, s, s)], 1)
    return ctx, where, inner
