"""Where the generator alone falls short of the per-image attack (issue 25): on the same test images, with the same
targets, the shipped generator (one forward) against LaVAN-100, image by image. Prints TCS by target class and by true
class, the joint outcome (both succeed, only one, neither), and how far the generator's misses are from success (the
target's logit margin over the best other class: a miss close to 0 is one refinement step away, a far one is not).
One JSON object on its last line.

    python bench/generator_gaps.py --model resnet --checkpoint zoo:digits-m/resnet/gan-patch-stream-12pct
    python bench/generator_gaps.py --model mixer   # its shipped gan-patch-12pct
"""

from __future__ import annotations

import argparse
import json
import warnings

import torch

warnings.filterwarnings("ignore", category=FutureWarning)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet", help="a digits-m zoo name")
    ap.add_argument("--checkpoint", default=None, help="default: zoo:digits-m/MODEL/gan-patch-12pct")
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--lavan-steps", type=int, default=100)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    from robust.attacks import evaluate, make_attack
    from robust.attacks.artifacts import resolve_checkpoint
    from robust.attacks.gan import GanPatch
    from robust.attacks.lavan import success_margin
    from robust.data import load_dataset
    from robust.models import load_model

    model = load_model(f"zoo:digits-m/{args.model}", args.device)
    data = load_dataset("digits-m", "test")
    checkpoint = args.checkpoint or f"zoo:digits-m/{args.model}/gan-patch-12pct"
    attacks = {"gan": GanPatch.load(resolve_checkpoint(checkpoint)),
               "lavan": make_attack("lavan", steps=args.lavan_steps, area=0.12)}
    per: dict[str, dict[str, torch.Tensor]] = {}
    for label, attack in attacks.items():
        outcomes, margins = [], []

        def margin(x: torch.Tensor, y: torch.Tensor, result, into: list = margins) -> None:
            with torch.no_grad():
                into.append(success_margin(model(result.x_adv).float(), y, result.target).cpu())

        evaluate(attack, model, data, samples=args.samples, outcomes=outcomes, inspect=margin)
        label_, clean, adv, target = (torch.cat(parts) for parts in zip(*outcomes, strict=True))
        per[label] = {"y": label_, "correct": clean == label_, "hit": (adv == target) & (clean == label_),
                      "target": target, "margin": torch.cat(margins)}
    gan, lavan = per["gan"], per["lavan"]
    same = bool(torch.equal(gan["target"], lavan["target"]))
    keep = gan["correct"]  # clean-correct images: the TCS denominator
    rate = lambda hit, where: round(float(hit[where].float().mean()), 3) if where.any() else None
    by = {}
    for key, values in (("target", gan["target"]), ("true class", gan["y"])):
        by[key] = {int(c): {"n": int((keep & (values == c)).sum()), "gan": rate(gan["hit"], keep & (values == c)),
                            "lavan": rate(lavan["hit"], keep & (values == c))} for c in values.unique()}
    g, l_ = gan["hit"][keep], lavan["hit"][keep]
    joint = {"both": int((g & l_).sum()), "gan only": int((g & ~l_).sum()), "lavan only": int((~g & l_).sum()),
             "neither": int((~g & ~l_).sum())}
    misses = gan["margin"][keep & ~gan["hit"]]
    quantiles = {f"q{int(q * 100)}": round(float(misses.quantile(q)), 2) for q in (0.1, 0.25, 0.5, 0.75, 0.9)}
    out = {"model": args.model, "checkpoint": checkpoint, "samples": args.samples, "lavan_steps": args.lavan_steps,
           "same_targets": same, "clean_correct": int(keep.sum()), "tcs": {"gan": rate(gan["hit"], keep),
                                                                          "lavan": rate(lavan["hit"], keep)},
           "joint": joint, "gan_miss_margin": quantiles, "by": by}
    print(f"{args.model}: gan {out['tcs']['gan']}, LaVAN-{args.lavan_steps} {out['tcs']['lavan']}; same targets: "
          f"{same}; joint {joint}")
    print(f"the generator's misses, target margin (logits): {quantiles}")
    for key, table in by.items():
        print(f"by {key}: " + ", ".join(f"{c}: {r['gan']}/{r['lavan']} (n {r['n']})" for c, r in table.items()))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
