"""Attack speed, measured in one run on the same images:

- per-image time of ``lavan`` (100 signed-gradient steps) over ``gan-patch`` (one Grad-CAM + one generator
  forward per batch), both batched, on the zoo CNN; and gan-patch with ``refine`` steps;
- our batched PGD (10 steps, one start, per-image early stop) against torchattacks' PGD on the same model, images,
  step size and budget: time ratio and robust accuracy of each (ours stops an image at its first adversarial
  iterate, so it can only be as strong or stronger, and is faster where most images fall early).

Prints one JSON object on its last line. Usage: python bench/attack_speed.py [--batch 128] [--repeats 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import warnings

import torch
from _timing import median_time

warnings.filterwarnings("ignore", category=FutureWarning)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--checkpoint", default="zoo:digits-m/resnet/gan-patch-12pct",
                        help="gan-patch generator (its weights do not change the timing).")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    args = parser.parse_args()

    import torchattacks

    from robust.attacks import GanPatch, make_attack
    from robust.attacks.artifacts import resolve_checkpoint
    from robust.data import load_dataset
    from robust.models import load_model

    dev = args.device
    x, y = load_dataset("digits-m").batch(slice(0, args.batch), dev)
    model = load_model("zoo:digits-m/resnet", device=dev)
    n = x.shape[0]
    out: dict = {"batch": n, "device": dev, "threads": torch.get_num_threads()}

    gan = GanPatch.load(resolve_checkpoint(args.checkpoint))
    lavan = make_attack("lavan", steps=100, area=gan.area)  # the same patch size
    t_gan = median_time(lambda: gan(model, x, y), args.repeats, dev)
    t_lavan = median_time(lambda: lavan(model, x, y), 1, dev)
    out["gan_patch_ms_per_image"] = round(t_gan / n * 1e3, 3)
    out["lavan100_ms_per_image"] = round(t_lavan / n * 1e3, 3)
    out["lavan100_over_gan_patch"] = round(t_lavan / t_gan, 1)
    for k in (5, 10):
        gan.refine = k
        t_ref = median_time(lambda: gan(model, x, y), args.repeats, dev)
        out[f"gan_patch_refine{k}_ms_per_image"] = round(t_ref / n * 1e3, 3)
        out[f"lavan100_over_gan_patch_refine{k}"] = round(t_lavan / t_ref, 1)
    gan.refine = 0

    ours = make_attack("lp", method="pgd", steps=10, alpha=2 / 255, seed=0)
    # In eval mode: torchattacks gives the wrapped model back the training flag it found, and a new module is
    # in training mode, which would leave the Backbone's BatchNorm in training mode for everything after.
    direct = torchattacks.PGD(_Logits(model).eval(), eps=8 / 255, alpha=2 / 255, steps=10, random_start=True)

    def run_direct() -> torch.Tensor:
        torch.manual_seed(0)
        return direct(x, y)

    t_ours = median_time(lambda: ours(model, x, y), args.repeats, dev)
    t_direct = median_time(run_direct, args.repeats, dev)
    adv_ours, adv_direct = ours(model, x, y).x_adv, run_direct()
    with torch.no_grad():
        acc_ours = float((model(adv_ours).argmax(1) == y).float().mean())
        acc_direct = float((model(adv_direct).argmax(1) == y).float().mean())
    out.update(pgd10_ours_ms=round(t_ours * 1e3, 1), pgd10_torchattacks_ms=round(t_direct * 1e3, 1),
               pgd10_torchattacks_over_ours=round(t_direct / t_ours, 2), robust_acc_ours=acc_ours,
               robust_acc_torchattacks=acc_direct)
    print(json.dumps(out))


class _Logits(torch.nn.Module):
    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone

    def forward(self, x):
        return self.backbone.logits(x)


if __name__ == "__main__":
    main()
