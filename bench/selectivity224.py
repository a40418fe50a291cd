"""Does the selectivity score separate models at 224 px? EfficientNet-Lite0 against its Patch-Mixing twin.

The twin: Lite0 fine-tuned with Patch Mixing (the paper's 14 x 14 grid, a fraction r ~ U(0, 0.5) of the cells from
a partner, soft targets weighted by the cells kept; ``p`` of the batches mixed) on imagenet-crops' training split
(12 photos x 40 crops, labelled by Lite0's own decisions), BatchNorm statistics frozen, AdamW; saved as a
``file:`` checkpoint. Then, on the held-out test crops (each model on its own decision labels), for both models:

- the patch-mixing curve (accuracy against the fraction of cells replaced by a donor of another class): what the
  paper's claim is about, and what a selectivity score should agree with;
- the selectivity score with Grad-CAM, and with the contrastive RISE map (c-RISE: RISE of the original class minus
  RISE of the donor's, random 7 x 7 masks at p = 1/2, ``--masks`` of them): the share of the positive saliency in
  the donor's cells (lower = more selective), the curve's area with its bootstrap interval.

A score separates the pair when the two area intervals do not overlap. Prints one JSON object on its last line.
Usage: python bench/selectivity224.py [--epochs 6] [--samples 96] [--rise-samples 24] [--masks 256] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import torch

warnings.filterwarnings("ignore", category=FutureWarning)


def finetune(base, epochs: int, lr: float, p: float, batch_size: int, seed: int) -> tuple[torch.nn.Module, list]:
    """A copy of ``base``'s network fine-tuned with Patch Mixing on the training crops; its loss per epoch."""
    import copy

    from timm.loss import SoftTargetCrossEntropy

    from robust.augment import PatchMixing
    from robust.model_data import load_for

    train = load_for(base, "imagenet-crops", "train")
    net = copy.deepcopy(base).eval()  # eval: BatchNorm statistics and dropout frozen; weights trained
    for q in net.parameters():
        q.requires_grad_(True)
    gen = torch.Generator().manual_seed(seed)
    mixing = PatchMixing(14, ratio=(0.0, 0.5), p=p, soft=True, num_classes=1000, generator=gen)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.01)
    loss_fn, history = SoftTargetCrossEntropy(), []
    for epoch in range(epochs):
        start, total, steps = time.perf_counter(), 0.0, 0
        for x, y in train.batches(batch_size, shuffle=True, generator=gen):
            x, soft = mixing(x, y)
            loss = loss_fn(net(x), soft)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, steps = total + float(loss.detach()), steps + 1
        history.append({"epoch": epoch + 1, "loss": round(total / steps, 4),
                        "seconds": round(time.perf_counter() - start, 1)})
        print(json.dumps(history[-1]), flush=True)
    for q in net.parameters():
        q.requires_grad_(False)
    return net, history


def measure(model, samples: int, rise_samples: int, masks: int, seeds: int) -> dict:
    from robust.evaluations import run_evaluation
    from robust.model_data import load_for

    data = load_for(model, "imagenet-crops")
    out = {}
    runs = {"patch-mixing": ("patch-mixing", {"samples": samples}),
            "selectivity-gradcam": ("selectivity", {"samples": samples}),
            "selectivity-crise": ("selectivity", {"samples": rise_samples, "saliency": "rise", "masks": masks,
                                                  "ratios": (0.1, 0.3, 0.5)})}
    for key, (name, params) in runs.items():
        start = time.perf_counter()
        curve = run_evaluation(name, model, data, seeds=seeds, batch_size=16, seed=0, **params).to_dict()
        out[key] = {"x": curve["x"], "mean": [round(v, 4) for v in curve["mean"]], "area": round(curve["area"], 4),
                    "interval": [round(v, 4) for v in curve["area_interval"]] if curve.get("area_interval") else None,
                    "n": curve["n"], "seconds": round(time.perf_counter() - start, 1)}
        print(json.dumps({key: out[key]}), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--p", type=float, default=0.5, help="fraction of the batches mixed")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--samples", type=int, default=96, help="test crops for the curves and Grad-CAM score")
    parser.add_argument("--rise-samples", type=int, default=24, help="test crops for the c-RISE score")
    parser.add_argument("--masks", type=int, default=256, help="RISE masks per image and class")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("/tmp/selectivity224"), help="where the twin is saved")
    args = parser.parse_args()

    from robust.data.imagenet import imagenet_class_names
    from robust.models import load_model, save_weights

    base = load_model("zoo:imagenet/efficientnet-lite0", device="cpu")
    twin_path = args.out / f"lite0-pm-{args.epochs}ep-seed{args.seed}.safetensors"
    history = None
    if not twin_path.exists():
        net, history = finetune(base, args.epochs, args.lr, args.p, args.batch_size, args.seed)
        twin_path.parent.mkdir(parents=True, exist_ok=True)
        save_weights(twin_path, net.net, arch="timm:tf_efficientnet_lite0", name="lite0-pm",
                     num_classes=1000, input_size=base.input_size, mean=base.mean, std=base.std,
                     class_names=imagenet_class_names(),
                     extra={"finetune": {"from": "zoo:imagenet/efficientnet-lite0", "data": "imagenet-crops/train",
                                         "labels": "decision (Lite0)", "epochs": args.epochs, "lr": args.lr,
                                         "p": args.p, "batch_size": args.batch_size, "seed": args.seed,
                                         "history": history}})
    twin = load_model(f"file:{twin_path}", device="cpu")
    result = {"settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "finetune_history": history, "twin": str(twin_path), "models": {}}
    for name, model in (("lite0", base), ("lite0-pm", twin)):
        result["models"][name] = measure(model, args.samples, args.rise_samples, args.masks, args.seeds)
    separated = {}
    for key in ("patch-mixing", "selectivity-gradcam", "selectivity-crise"):
        a, b = (result["models"][m][key]["interval"] for m in ("lite0", "lite0-pm"))
        separated[key] = None if a is None or b is None else (a[1] < b[0] or b[1] < a[0])
    result["separated"] = separated
    print(json.dumps(result))


if __name__ == "__main__":
    main()
