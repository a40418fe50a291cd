"""Generators against the per-image reference, success and realism on the same images (issue 14 sections 2 and 3).

Each ``--generators`` entry (NAME=PATH of a gan-patch .safetensors, e.g. trained with ``robust attack train
gan-patch --split fit --out PATH ...``) is scored alone and, with ``--refine K``, refined by K steps (its default
refinement, as ``bench/reference.py``'s gan-refine-10); ``--lavan`` adds LaVAN with that many steps (Adam, CW: its
defaults) as the per-image point of comparison. For every attack, on
the first ``--samples`` images of ``--split`` (12 % Grad-CAM windows, random targets, seed 0): TCS with its
Wilson interval, the realism measures of ``robust.realism`` (SSIM, PSNR, TV, colour-histogram distance, the
detector's AUC) with their intervals, the seconds per image, and the generator's training curve (train TCS per
epoch). Choose on ``--split val`` with a victim trained on ``fit``; report on test.
Prints one line per attack and one JSON object on its last line.
Usage: python bench/generator.py --victim file:DIR/digits-m-resnet-fit.safetensors --split val
       --generators critic-0=PATH,critic-0.05=PATH [--refine 10] [--lavan 100] [--samples 500] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

warnings.filterwarnings("ignore", category=FutureWarning)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--victim", required=True, help="model spec (zoo:..., file:...)")
    parser.add_argument("--generators", default="", help="NAME=PATH,... gan-patch checkpoints")
    parser.add_argument("--split", default="val", choices=("val", "test"))
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--refine", type=int, default=0)
    parser.add_argument("--lavan", type=int, default=0, help="LaVAN steps (0: leave LaVAN out)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    from robust.attacks import evaluate, make_attack
    from robust.attacks.gan import GanPatch
    from robust.data import load_dataset
    from robust.models import load_model
    from robust.realism import Realism

    model = load_model(args.victim, device=args.device)
    data = load_dataset("digits-m", args.split)
    runs: list[tuple[str, object, list]] = []
    for entry in filter(None, args.generators.split(",")):
        name, _, path = entry.partition("=")
        gen = GanPatch.load(path, num_classes=model.num_classes)
        curve = [h.get("train_tcs") for h in gen.history]
        runs.append((name, gen, curve))
        if args.refine:
            runs.append((f"{name}+refine-{args.refine}", GanPatch.load(path, num_classes=model.num_classes,
                                                                       refine=args.refine), curve))
    if args.lavan:
        runs.append((f"lavan-{args.lavan}", make_attack("lavan", area=0.12, steps=args.lavan), []))
    out: dict = {"victim": args.victim, "split": args.split, "samples": args.samples, "seed": 0, "area": 0.12,
                 "device": args.device, "attacks": {}}
    for name, attack, curve in runs:
        meter = Realism()
        start = time.perf_counter()
        counts = evaluate(attack, model, data, samples=args.samples, batch_size=args.batch,
                          inspect=lambda x, y, res, meter=meter: meter.update(x, res.x_adv, res.boxes))
        seconds = time.perf_counter() - start
        real = meter.summary(0)
        auc = real["detector_auc"]
        row = {"tcs": counts.tcs, "tcs_interval": counts.interval("tcs"), "n": counts.tcs_clean_correct,
               "s_per_image": seconds / counts.n, "train_tcs": curve,
               **{k: {"mean": v["mean"], "interval": v["interval"]} for k, v in real.items() if k != "detector_auc"},
               "detector_auc": {"auc": auc["auc"], "interval": auc["interval"]}}
        out["attacks"][name] = row
        lo, hi = row["tcs_interval"]
        print(f"{name:28s} TCS {row['tcs']:.3f} [{lo:.3f}, {hi:.3f}] n={row['n']}  "
              + "  ".join(f"{k} {row[k]['mean']:.3f}" for k in ("ssim", "psnr", "tv", "hist"))
              + f"  AUC {auc['auc']:.3f} [{auc['interval'][0]:.3f}, {auc['interval'][1]:.3f}]"
              f"  {row['s_per_image']:.4f} s/img", flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
