"""The patch attacks' measured bars on the digits-m zoo, in one seeded run on the same test images:

- TCS / ASR of gan-patch (shipped generators) at Grad-CAM and at random placement, against noise-patch,
  natural-patch, universal-patch (shipped patches) and lavan (100 signed-gradient steps), all at one area;
- gan-patch with ``refine = k`` steps: TCS and time per image for each k;
- the transfer matrix of gan-patch between the models (each crafted with its own generator).

Prints one JSON object on its last line. Usage:
python bench/patch_attacks.py [--models resnet,vit,mixer] [--area 0.12] [--samples 500] [--lavan resnet]
[--refine 0,1,2,5,10] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import torch
from _timing import synchronize

warnings.filterwarnings("ignore", category=FutureWarning)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default="resnet,vit,mixer")
    parser.add_argument("--area", type=float, default=0.12)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--lavan", default="resnet", help="models to run lavan-100 on (slow), comma-separated")
    parser.add_argument("--refine", default="0,1,2,5,10")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    args = parser.parse_args()

    from robust.attacks import GanPatch, UniversalPatch, evaluate, make_attack, transfer_matrix
    from robust.attacks.artifacts import resolve_checkpoint
    from robust.data import load_dataset
    from robust.models import load_model

    pct = f"{round(args.area * 100):g}pct"
    data = load_dataset("digits-m", "test").subset(slice(0, args.samples))
    names = args.models.split(",")
    dev = args.device
    models = {m: load_model(f"zoo:digits-m/{m}", device=dev) for m in names}
    if torch.device(dev).type == "cuda":  # one untimed forward each: CUDA's kernel loading is no attack's cost
        with torch.no_grad():
            for model in models.values():
                model.logits(data.batch(slice(0, 250), dev)[0])
        synchronize(dev)

    def gan(m: str, **kw) -> GanPatch:
        return GanPatch.load(resolve_checkpoint(f"zoo:digits-m/{m}/gan-patch-{pct}"), seed=args.seed, **kw)

    def score(attack, model) -> dict:
        start = time.perf_counter()
        c = evaluate(attack, model, data, batch_size=250)
        synchronize(dev)
        seconds = time.perf_counter() - start
        return {"tcs": round(c.tcs, 4), "tcs_interval": [round(v, 4) for v in c.interval("tcs")],
                "asr": round(c.asr, 4), "n_clean_correct": c.clean_correct, "n": c.n,
                "ms_per_image": round(seconds / c.n * 1e3, 3)}

    out: dict = {"area": args.area, "samples": args.samples, "seed": args.seed, "device": dev, "models": {}}
    for m, model in models.items():
        row = {"gan-patch": score(gan(m), model), "gan-patch@random": score(gan(m, placement="random"), model)}
        for k in (int(v) for v in args.refine.split(",") if int(v) > 0):
            row[f"gan-patch+refine{k}"] = score(gan(m, refine=k), model)
        for name in ("noise-patch", "natural-patch"):
            row[name] = score(make_attack(name, area=args.area, seed=args.seed, targeted=True), model)
        universal = resolve_checkpoint(f"zoo:digits-m/{m}/universal-patch-{pct}")
        row["universal-patch"] = score(UniversalPatch.load(universal, seed=args.seed), model)
        if m in args.lavan.split(","):
            row["lavan-100"] = score(make_attack("lavan", area=args.area, steps=100, seed=args.seed), model)
        out["models"][m] = row
        print(m, json.dumps(row), flush=True)

    x, y = data.batch(slice(None), dev)
    matrix = transfer_matrix(lambda source: gan(source.name.split("/")[-1]), list(models.values()),
                             list(models.values()), x, y, batch_size=250)
    out["transfer_tcs"] = {f"{s} -> {t}": round(c.tcs, 4) for (s, t), c in matrix.items()}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
