"""PGD's early stop: what dropping finished images from the batch on a schedule costs or saves, measured in one run.

``robust.attacks.lp.pgd`` runs sync-free masked steps (``pgd_step``) and drops the finished images when
``robust.attacks.base.compact_after`` says: on an accelerator after each of the first ``COMPACT_EARLY`` steps, then
every ``COMPACT_EVERY`` (one host sync each time); on the CPU after every step. A schedule ``k/e`` is the first rule
with those two values, whatever the device; ``1/0`` is the batch shrunk at every step (the CPU's rule, and every
device's before issue 31), ``100/0`` never shrinks it within a restart. Per model: seconds of PGD-10
and of PGD-20 x 2 restarts (targeted) on the same images for each schedule, the ratio to the first, and whether every
schedule gives the same adversarial images. A model is a zoo name or any model spec: a random-weight one
(``timm:resnet18?pretrained=false``) misclassifies almost every image before the first step, the case where
compacting late costs most. One JSON line last.

    python bench/pgd_compaction.py > bench/results/DATE-cpu/pgd-compaction.txt
"""

from __future__ import annotations

import argparse
import json
import time

import torch

import robust.attacks.base as base
import robust.attacks.lp as lp
from robust.attacks import make_attack
from robust.data import load_dataset
from robust.models import load_model

ACCELERATOR = torch.device("meta")  # any device but the CPU: compact_after's schedule of COMPACT_EVERY / COMPACT_EARLY


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--models", default="resnet,vit,mixer,timm:resnet18?pretrained=false")
    ap.add_argument("--schedules", default="1/0,4/0,4/2,8/2,100/0", help="COMPACT_EVERY/COMPACT_EARLY pairs")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    x, y = load_dataset("digits-m", "test").batch(slice(0, args.images))
    ks = args.schedules.split(",")
    out: dict = {"images": args.images, "device": args.device, "threads": torch.get_num_threads(), "models": {}}
    for name in args.models.split(","):
        model = load_model(name if ":" in name else f"zoo:digits-m/{name}", args.device)
        for label, options in (("pgd10", {}), ("pgd20x2-targeted", {"steps": 20, "restarts": 2, "targeted": True})):
            attack = make_attack("pgd-linf-8", **options)
            row, first = {}, None
            for k in ks:
                base.COMPACT_EVERY, base.COMPACT_EARLY = (int(v) for v in k.split("/"))
                lp.compact_after = lambda step, device: base.compact_after(step, ACCELERATOR)  # its rule, any device
                times = []
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    x_adv = attack(model, x, y).x_adv
                    times.append(time.perf_counter() - start)
                first = x_adv if first is None else first
                row[k] = {"seconds": round(sorted(times)[len(times) // 2], 3), "same": bool(torch.equal(x_adv, first))}
            for k in ks:
                row[k]["over_first"] = round(row[k]["seconds"] / row[ks[0]]["seconds"], 3)
            out["models"].setdefault(name, {})[label] = row
            print(name, label, {k: (v["seconds"], v["over_first"], v["same"]) for k, v in row.items()}, flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
