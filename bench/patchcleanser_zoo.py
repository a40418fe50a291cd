"""PatchCleanser (robust.defenses) around a digits-m model (default the zoo resnet) at 2 % patches: clean, defended
and certified accuracy on the first 100 test images, for k = 3 and 4 masks per axis, one CPU thread; one JSON line.

    python bench/patchcleanser_zoo.py > bench/results/DATE-cpu/patchcleanser-zoo-resnet.json
    python bench/patchcleanser_zoo.py --model zoo:digits-m/resnet-mask      # a model trained with --augment masking
"""

import argparse
import json
import time

import torch

from robust.data import load_dataset
from robust.defenses import PatchCleanser
from robust.metrics import wilson_interval
from robust.models import load_model

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--model", default="zoo:digits-m/resnet")
args = parser.parse_args()
torch.set_num_threads(1)
model = load_model(args.model, "cpu")
x, y = load_dataset("digits-m").batch(torch.arange(100))
out = {"model": args.model, "images": "digits-m test 0-99", "area": 0.02}
with torch.no_grad():
    out["clean_correct"] = int((model.logits(x).argmax(1) == y).sum())
for k in (3, 4):
    start = time.perf_counter()
    defended = PatchCleanser(model, area=0.02, k=k)
    with torch.no_grad():
        pred = torch.cat([defended(x[i:i + 20]).argmax(1) for i in range(0, 100, 20)])
        cert = torch.cat([defended.certify(x[i:i + 20], y[i:i + 20]) for i in range(0, 100, 20)])
    ok, certified = int((pred == y).sum()), int(cert.sum())
    out[f"k={k}"] = {"patch_side": defended.patch, "masks": k * k, "defended_correct": ok,
                     "defended_interval": wilson_interval(ok, 100), "certified_correct": certified,
                     "certified_interval": wilson_interval(certified, 100),
                     "seconds": round(time.perf_counter() - start, 1)}
print(json.dumps(out))
