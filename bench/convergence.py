"""Has an attack converged? Its figure against its budget, on the same images and seed, for the board's attacks:

- PGD (L-inf, eps 8/255): ASR against steps and random restarts (step 2.5 eps / steps, per-image early stop);
- LaVAN (12 %, Grad-CAM window, signed steps): TCS against steps;
- gan-patch + refine (12 %, the shipped generator): TCS against refinement steps.

A figure that still moves between the two largest budgets has not converged: the board's setting should sit where
it has stopped moving. Prints one table per attack and one JSON object on its last line.
Budgets are chosen on ``--split val`` (digits-m's 500 held-out training digits) against victims trained on ``fit``
(``bench/selection.py --out-dir``, ``robust zoo train ARCH --split fit``), which never saw those digits; the test
split and the shipped models report them.
Usage: python bench/convergence.py [--models resnet,vit,mixer] [--samples 500] [--split test|val] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

warnings.filterwarnings("ignore", category=FutureWarning)

PGD = [(10, 1), (20, 1), (50, 1), (100, 1), (50, 2), (100, 2), (100, 4)]
LAVAN = [20, 50, 100, 200]
REFINE = [0, 10, 30, 100]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default="resnet,vit,mixer",
                        help="digits-m zoo names or model specs (file:...), comma-separated; refine needs a zoo name")
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--attacks", default="pgd,lavan,refine")
    parser.add_argument("--split", default="test", choices=("test", "val"))
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    from robust.attacks import evaluate, make_attack
    from robust.attacks.artifacts import resolve_checkpoint
    from robust.attacks.gan import GanPatch
    from robust.data import load_dataset
    from robust.models import load_model

    data = load_dataset("digits-m", args.split)
    out: dict = {"split": args.split, "samples": args.samples, "device": args.device, "seed": 0, "models": {}}
    for name in args.models.split(","):
        model = load_model(name if ":" in name else f"zoo:digits-m/{name}", device=args.device)
        rows: dict = {}

        def measure(label: str, attack, headline: str, model=model, rows=rows, name=name) -> None:
            start = time.perf_counter()
            c = evaluate(attack, model, data, samples=args.samples, batch_size=args.batch)
            rows[label] = {headline: round(getattr(c, headline), 4), "n": c.clean_correct,
                           "seconds": round(time.perf_counter() - start, 1)}
            print(name, label, rows[label], flush=True)

        wanted = args.attacks.split(",")
        if "pgd" in wanted:
            for steps, restarts in PGD:
                measure(f"pgd-{steps}x{restarts}", make_attack("lp", method="pgd", steps=steps, restarts=restarts),
                        "asr")
        if "lavan" in wanted:
            for steps in LAVAN:
                measure(f"lavan-{steps}", make_attack("lavan", steps=steps, area=0.12), "tcs")
        if "refine" in wanted and ":" not in name:  # the shipped generator of a zoo model
            path = resolve_checkpoint(f"zoo:digits-m/{name}/gan-patch-12pct")
            for k in REFINE:
                measure(f"gan-refine-{k}", GanPatch.load(path, refine=k), "tcs")
        out["models"][name] = rows
    print(json.dumps(out))


if __name__ == "__main__":
    main()
