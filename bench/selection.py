"""The zoo's recipe choices, re-made on the validation split (issue 13 section 6).

Each choice below was first made on test accuracy. Here every candidate trains on digits-m's ``fit`` split (the
training digits without the 500 validation digits) and is scored on ``val`` only; the test split is not loaded.
A choice stands when its candidate is the best on val (or within the other's Wilson interval, where the
simpler / cheaper candidate was chosen); otherwise the shipped model should be retrained with the winner.

- resnet: 4 epochs (the recipe) vs 8 (the equal-epoch control ``resnet-8ep``);
- poolformer: lr 7e-4 for 12 epochs (the recipe) vs 2e-3 for 8;
- vit: mean-pooled tokens (the recipe) vs a CLS token, 12 epochs each.

Prints one line per candidate and one JSON object on its last line. ``--out-dir`` keeps each recipe's model
(trained on fit) as ``digits-m-ARCH-fit.safetensors``: the victims for choosing attack budgets on val
(``bench/convergence.py --split val --models file:DIR/digits-m-resnet-fit.safetensors,...``).
Usage: python bench/selection.py [--choices resnet,poolformer,vit] [--device cpu] [--seed 0] [--out-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import warnings
from dataclasses import replace
from pathlib import Path

warnings.filterwarnings("ignore", category=FutureWarning)


def vit_cls(num_classes: int = 10):
    """The zoo ViT with a CLS token instead of mean-pooled tokens (everything else equal)."""
    from timm.models.vision_transformer import VisionTransformer

    from robust.models.zoo.archs import _sized

    return _sized(VisionTransformer(img_size=32, patch_size=4, embed_dim=128, depth=6, num_heads=4, mlp_ratio=2.0,
                                    num_classes=num_classes, class_token=True, global_pool="token"))


def candidates() -> dict[str, list[tuple[str, object, object]]]:
    """choice -> [(label, builder, recipe)], the shipped recipe first."""
    from robust.models.zoo.archs import ARCHS

    resnet, r = ARCHS["resnet"]
    pool, p = ARCHS["poolformer"]
    vit, v = ARCHS["vit"]
    return {"resnet": [("4 epochs (recipe)", resnet, r), ("8 epochs", resnet, replace(r, epochs=8))],
            "poolformer": [("lr 7e-4, 12 epochs (recipe)", pool, p), ("lr 2e-3, 8 epochs", pool,
                                                                      replace(p, lr=2e-3, epochs=8))],
            "vit": [("mean-pooled tokens (recipe)", vit, v), ("CLS token", vit_cls, v)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--choices", default="resnet,poolformer,vit")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", type=Path, default=None)
    args = parser.parse_args()

    from robust.data import load_dataset
    from robust.metrics import clean_accuracy
    from robust.models.checkpoint import save_weights
    from robust.zoo_training import train_backbone

    val = load_dataset("digits-m", "val")
    table = candidates()
    out: dict = {"split": "fit -> val", "val_n": len(val), "seed": args.seed, "device": args.device, "choices": {}}
    for choice in args.choices.split(","):
        if choice not in table:
            raise SystemExit(f"--choices: {choice!r} is not one of {sorted(table)}")
        rows = []
        for label, builder, recipe in table[choice]:
            model, seconds = train_backbone(builder, recipe, split="fit", seed=args.seed, device=args.device,
                                            name=f"{choice}: {label}", progress=False)
            res = clean_accuracy(model, val)
            rows.append({"candidate": label, "val_accuracy": round(res["accuracy"], 4),
                         "interval": [round(v, 4) for v in res["interval"]], "epochs": recipe.epochs,
                         "lr": recipe.lr, "train_seconds": round(seconds, 1)})
            print(choice, rows[-1], flush=True)
            if args.out_dir is not None and len(rows) == 1:  # the recipe (builders of ARCHS only)
                args.out_dir.mkdir(parents=True, exist_ok=True)
                save_weights(args.out_dir / f"digits-m-{choice}-fit.safetensors", model.net,
                             arch=f"robust.models.zoo.archs:{choice}", name=f"{choice} (fit)",
                             num_classes=model.num_classes, input_size=model.input_size, mean=model.mean,
                             std=model.std, class_names=model.class_names)
        out["choices"][choice] = rows
    print(json.dumps(out))


if __name__ == "__main__":
    main()
