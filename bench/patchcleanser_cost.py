"""What PatchCleanser's defended forward costs: robust's batched one (the first round for every mask in one pass; the
second only where the first disagrees, each image's disagreeing masks tried in rounds until one wins) against a
per-mask loop (the reference code's shape: one forward per mask over the batch, then, image by image, a forward of
its K two-mask images per disagreeing mask until one wins) and against the bare forwards it needs (as many images
through the base model, in plain batches of the same chunk), measured in the same run on clean test images and on
images carrying each one's own 2 % LaVAN patch (crafted on the base, which makes the first round disagree).
One JSON line last.

    python bench/patchcleanser_cost.py > bench/results/DATE-cpu/patchcleanser-cost.txt
    python bench/patchcleanser_cost.py --device cuda --images 256
"""

from __future__ import annotations

import argparse
import json

import torch
from _timing import median_time

from robust.attacks import make_attack
from robust.data import load_dataset
from robust.defenses import PatchCleanser
from robust.models import load_model


def per_mask_loop(defended: PatchCleanser, x: torch.Tensor) -> torch.Tensor:
    """The same rule, a forward per mask and per disagreeing (image, mask): the peer."""
    hide = lambda images, m: images * (1 - m.to(images.dtype)) + defended.fill * m.to(images.dtype)
    labels = torch.stack([defended.base.logits(hide(x, m)).argmax(1) for m in defended.masks], 1)  # N x K
    majority = labels.mode(1).values
    out = majority.clone()
    for n in range(x.shape[0]):
        if (labels[n] == labels[n, 0]).all():
            out[n] = labels[n, 0]
            continue
        for i in (labels[n] != majority[n]).nonzero()[:, 0].tolist():
            two = defended.base.logits(hide(x[n].expand(len(defended.masks), -1, -1, -1),
                                            (defended.masks[i] | defended.masks)[:, None])).argmax(1)
            if (two == labels[n, i]).all():
                out[n] = labels[n, i]
                break
    return out


def forwards(defended: PatchCleanser, x: torch.Tensor) -> int:
    """Masked images the batched defence puts through its base network for ``x``, counted by a hook."""
    seen = [0]
    hook = defended.base.net.register_forward_pre_hook(lambda _m, args: seen.__setitem__(0, seen[0] + len(args[0])))
    try:
        defended(x)
    finally:
        hook.remove()
    return seen[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="zoo:digits-m/resnet")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--k", type=int, default=4, help="masks per axis")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--chunk", type=int, default=None, help="masked images per forward (default: the defence's)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.model, args.device)
    x, y = load_dataset("digits-m").batch(torch.arange(args.images), args.device)
    patched = make_attack("lavan", area=0.02, steps=30, seed=0)(model, x, y).x_adv
    defended = PatchCleanser(model, area=0.02, k=args.k, chunk=args.chunk)
    chunk = defended.chunk or (64 if torch.device(args.device).type == "cpu" else 1024)
    out = {"model": args.model, "images": args.images, "k": args.k, "masks": args.k ** 2, "device": args.device,
           "threads": args.threads, "repeats": args.repeats, "chunk": chunk}
    with torch.no_grad():
        for name, images in (("clean", x), ("lavan_patched", patched)):
            assert torch.equal(defended(images).argmax(1), per_mask_loop(defended, images))  # the same labels
            f = forwards(defended, images)
            bare = torch.rand(f, *images.shape[1:], device=images.device)
            row = {"forwards_per_image": round(f / args.images, 1),
                   "batched_s": median_time(lambda images=images: defended(images), args.repeats, args.device),
                   "per_mask_loop_s": median_time(lambda images=images: per_mask_loop(defended, images),
                                                  args.repeats, args.device),
                   "bare_forwards_s": median_time(lambda bare=bare: torch.cat(
                       [model.logits(b) for b in bare.split(chunk)]), args.repeats, args.device)}
            row["batched_over_bare"] = round(row["batched_s"] / row["bare_forwards_s"], 2)
            row["per_mask_loop_over_batched"] = round(row["per_mask_loop_s"] / row["batched_s"], 2)
            row.update({k: round(v, 3) for k, v in row.items() if k.endswith("_s")})
            out[name] = row
            print(name, row, flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
