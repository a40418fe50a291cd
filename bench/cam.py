"""Batched Grad-CAM (robust.cam) against pytorch-grad-cam's GradCAM, and against the bare model: a forward
alone, and a forward + backward to the input (Grad-CAM itself only needs the backward down to its layer).

Same model, layer, images and targets in one run; medians of ``--repeats`` timings.
The issue's cases: the zoo CNN (and ViT) at batch 256, timm resnet18 and resnet50 at 224 px, batch 16. The peer is
pytorch-grad-cam's own ``GradCAM`` object (built once on the Backbone and its layer, called with its
``ClassifierOutputTarget`` list), not our wrapper around it.
Prints one JSON object on its last line.
Usage: python bench/cam.py [--batch 256] [--batch-224 16] [--repeats 5] [--device cpu]
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
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--batch-224", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    args = parser.parse_args()

    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from robust.cam import cam, library_reshape
    from robust.data import load_dataset
    from robust.models import load_model

    dev = args.device
    x, y = load_dataset("digits-m").batch(slice(0, args.batch), dev)
    rows = {}
    g = torch.Generator().manual_seed(0)
    cases = [("zoo:digits-m/resnet", x, y), ("zoo:digits-m/vit", x, y),
             *((f"timm:{name}?pretrained=false", torch.rand(args.batch_224, 3, 224, 224, generator=g).to(dev),
                y[: args.batch_224]) for name in ("resnet18", "resnet50"))]
    for spec, xs, ys in cases:
        model = load_model(spec, device=dev)
        gradcam = GradCAM(model=model, target_layers=[model.cam_layer],
                          reshape_transform=library_reshape(model))
        targets = [ClassifierOutputTarget(int(t)) for t in ys]

        def bare(model=model, xs=xs, ys=ys):
            inp = xs.detach().requires_grad_(True)
            logits = model.logits(inp)
            torch.autograd.grad(logits.gather(1, ys[:, None]).sum(), inp)

        ours = median_time(lambda model=model, xs=xs, ys=ys: cam(model, xs, ys), args.repeats, dev)
        peer = median_time(lambda gradcam=gradcam, xs=xs, targets=targets: gradcam(xs, targets), args.repeats, dev)
        floor = median_time(bare, args.repeats, dev)
        with torch.no_grad():
            fwd = median_time(lambda model=model, xs=xs: model.logits(xs), args.repeats, dev)
        rows[spec] = {"n": xs.shape[0], "robust_ms": round(ours * 1e3, 1), "pytorch_grad_cam_ms": round(peer * 1e3, 1),
                      "forward_ms": round(fwd * 1e3, 1), "fwd_bwd_to_input_ms": round(floor * 1e3, 1),
                      "speedup_vs_pytorch_grad_cam": round(peer / ours, 2), "over_forward": round(ours / fwd, 2),
                      "over_fwd_bwd_to_input": round(ours / floor, 2)}
    print(json.dumps({"batch": args.batch, "device": dev, "cam": rows}))


if __name__ == "__main__":
    main()
