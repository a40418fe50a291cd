"""Train gan-patch on a stream of fresh images at a constant learning rate, in chunks, resumable across sittings,
and keep its curve: train and val TCS (the generator alone) against optimiser steps. Issue 25's study of what makes
the generator fit (capacity, steps, fresh data) on digits-m composites (``robust.data.digits_stream``), and issue
31's 224-px generator on crops of the training photos (``--data imagenet-crops``, ``robust.data.photo_stream``),
e.g. against EfficientNet-Lite0 for the N8 targets (``--target n8``).

Each call continues the run named by its options from its resume file up to ``--until`` steps, writing after
every chunk ``NAME.curve.json`` (every history row so far) and ``NAME.resume.pt`` (the one resume file, replaced).
The last line printed is one JSON object: the run's name, steps done and its last row. ``--test N`` then scores
the generator alone on the first N digits-m test images, recorded in the curve file under ``test`` by step.

``--cooldown K`` branches the constant-rate run named by the other options where its resume file stands (step S)
into its own run, ``NAME-coolK``, which decays the learning rates linearly to zero over steps S..S+K (``--until``
must be S + K): the decay phase of a warmup-stable-decay schedule. The constant run is left as it is, free to go on.

    python bench/generator_stream.py --victim zoo:digits-m/resnet --depth 4 --until 8000
    python bench/generator_stream.py --until 8000 --chunk 8000 --test 1000   # a finished run, scored on test
    python bench/generator_stream.py --split train --until 35250 --cooldown 2000 --test 1000  # anneal from 33,250
    python bench/generator_stream.py --split train --loss hinge --until 2000 --test 1000 \
        --init bench/results/generator-stream/resnet-w32-d3-ce-lr0.001-b128-train-s0.resume.pt
    python bench/generator_stream.py --data imagenet-crops --victim zoo:imagenet/efficientnet-lite0 --target n8 \
        --split train --batch-size 16 --precision bf16 --until 2000 --chunk 250 --test 96
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch

from robust.attacks import evaluate
from robust.attacks.gan import GanPatch
from robust.io import atomic_path, atomic_write_text
from robust.model_data import load_for
from robust.models import load_model


def run_files(out_dir: Path, run: str) -> tuple[Path, Path]:
    """A run's resume file and curve under ``out_dir``."""
    return out_dir / f"{run}.resume.pt", out_dir / f"{run}.curve.json"


def branch(args: argparse.Namespace, ap: argparse.ArgumentParser, base: str, constant: tuple[Path, Path],
           cooled: tuple[Path, Path]) -> None:
    """Start the cooldown run's files (``cooled``: resume, curve) as copies of the constant run's (``constant``) where
    they stand, the branch point recorded in the curve, unless it has begun. Refuses an ``--until`` that is not the
    branch's step plus the cooldown."""
    (resume, curve), (own_resume, own_curve) = constant, cooled
    if own_resume.exists():
        return
    if not resume.exists():
        ap.error(f"--cooldown {args.cooldown}: there is no constant run {base!r} to branch ({resume} is missing); "
                 "expected its resume file")
    at = int(torch.load(resume, map_location="cpu", weights_only=True)["step"])
    if args.until != at + args.cooldown:
        ap.error(f"--until {args.until} is not valid with --cooldown {args.cooldown}: the constant run stands at step "
                 f"{at}; expected --until {at + args.cooldown}")
    record = {k: v for k, v in json.loads(curve.read_text()).items() if k != "test"} if curve.exists() else {}
    atomic_write_text(own_curve, json.dumps({**record, "branched_from": {"run": base, "step": at}}, indent=1) + "\n")
    with atomic_path(own_resume) as tmp:
        shutil.copyfile(resume, tmp)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="digits-m", choices=("digits-m", "imagenet-crops"))
    ap.add_argument("--victim", default="zoo:digits-m/resnet")
    ap.add_argument("--target", default="random", help="random, or a named target set (n8, imagenet-patch, toaster)")
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--context", type=float, default=2.0, help="the side of what the generator sees around the "
                    "window, in window sides (2: the paper's; 3 at 12 %% of 32 px: the whole image)")
    ap.add_argument("--canvas", type=int, default=None, help="the side in pixels the generator works at (the context "
                    "resized to it; default: the context's own side); the run's name gets -cv and the side")
    ap.add_argument("--view", choices=("none", "logits"), default="none", help="what the generator is told of the "
                    "victim (logits: its log-probabilities on the clean image); the run's name gets -vlogits")
    ap.add_argument("--loss", choices=("ce", "cw", "hinge"), default="ce")
    ap.add_argument("--init", type=Path, default=None, help="a run's resume file whose generator this run starts "
                    "from (a warm start, e.g. on another loss); the run's name gets -init and the file's step")
    ap.add_argument("--lambda-gan", type=float, default=0.05, help="the critic's weight (0: no critic)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--split", choices=("fit", "train"), default="fit",
                    help="fit: scored on val as it trains (digits-m); imagenet-crops has train only")
    ap.add_argument("--until", type=int, required=True, help="optimiser steps to reach (a later call may ask more)")
    ap.add_argument("--chunk", type=int, default=1000, help="steps per call of fit (the curve is written after each)")
    ap.add_argument("--cooldown", type=int, default=0, help="branch the constant run where it stands into a linear "
                    "decay to zero over this many steps (--until: its step + this)")
    ap.add_argument("--log-every", type=int, default=250)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--device", default=None, help="cpu, cuda, ... (default: a CUDA GPU when there is one)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--test", type=int, default=0, help="then score the generator alone on the first N test images "
                    "(Wilson interval; recorded in the curve file as 'test')")
    ap.add_argument("--out-dir", type=Path, default=Path("bench/results/generator-stream"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    victim = load_model(args.victim, args.device)
    critic = "" if args.lambda_gan == 0.05 else f"-critic{args.lambda_gan:g}"
    prefix = ("" if args.data == "digits-m" else f"{args.data}-") + args.victim.rsplit("/", 1)[-1] + (
        "" if args.target == "random" else f"-{args.target}")
    context = "" if args.context == 2 else f"-ctx{args.context:g}"
    context += "" if args.canvas is None else f"-cv{args.canvas}"
    context += "" if args.view == "none" else f"-v{args.view}"
    name = (f"{prefix}-w{args.width}-d{args.depth}{context}-{args.loss}{critic}-lr{args.lr:g}-b{args.batch_size}"
            f"-{args.split}-s{args.seed}" + ("" if args.precision == "fp32" else f"-{args.precision}"))
    init = None
    if args.init is not None:
        saved = torch.load(args.init, map_location="cpu", weights_only=True)
        init, name = saved["generator"], f"{name}-init{int(saved['step'])}"
    args.out_dir.mkdir(parents=True, exist_ok=True)
    if args.cooldown:
        base, name = name, f"{name}-cool{args.cooldown}"
        branch(args, ap, base, run_files(args.out_dir, base), run_files(args.out_dir, name))
    resume, curve = run_files(args.out_dir, name)
    if args.data != "digits-m" and args.split != "train":
        ap.error(f"--split {args.split} is not valid for --data {args.data}; expected train (its test photos are held "
                 "out, and it has no val split).")
    data = load_for(victim, args.data, args.split)  # imagenet-crops: labelled by the victim's decisions
    monitor = load_for(victim, "digits-m", "val") if args.split == "fit" else None
    attack = GanPatch(area=0.12, width=args.width, depth=args.depth, context=args.context, canvas=args.canvas,
                      view=args.view, loss=args.loss, lambda_gan=args.lambda_gan, seed=args.seed, target=args.target)
    done, record = 0, {"name": name}
    if curve.exists():
        record = json.loads(curve.read_text())
    started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    first = record["history"][-1]["step"] if record.get("history") else 0
    while done < args.until:
        target = min(args.until, (done // args.chunk + 1) * args.chunk)
        started = time.perf_counter()
        schedule = {"steps": args.until, "cooldown": args.cooldown, "stop": target} if args.cooldown else {
            "steps": target}  # a constant run's schedule does not depend on its end, a cooldown's does
        attack.fit(victim, data, **schedule, stream=True, lr_schedule="constant", lr=args.lr,
                   batch_size=args.batch_size, log_every=args.log_every, monitor=monitor, resume=resume,
                   precision=args.precision, init=init)
        done = attack.history[-1]["step"]
        record.update(name=name, command="python bench/generator_stream.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
            if k not in ("until", "chunk", "out_dir", "threads", "test", "device")
            and not (k in ("data", "target", "precision", "cooldown", "init", "context", "canvas", "view")
                     and v == ap.get_default(k))),
            training=attack.training,
            history=attack.history)  # chunks and threads do not change a result: a resumed run continues bit for bit
        # on one device; each sitting's device is recorded, since a GPU's arithmetic differs from the CPU's
        sittings = record.setdefault("sittings", [])
        if not sittings and first:
            sittings.append({"device": "cpu", "from": 0, "to": first, "note": "sittings before they were recorded"})
        if done > first:
            if not sittings or sittings[-1].get("started") != started_at:
                sittings.append({"started": started_at, "device": str(victim.device), "from": first})
            sittings[-1]["to"] = done
        atomic_write_text(curve, json.dumps(record, indent=1) + "\n")
        for row in attack.history[-max(1, args.chunk // args.log_every):]:
            print(json.dumps(row), flush=True)
        print(f"# {name}: {done} steps, chunk {time.perf_counter() - started:.0f} s", flush=True)
    if args.test:  # the generator alone, as it stands, on held-out test images (never trained on)
        counts = evaluate(attack, victim, load_for(victim, args.data, "test"), samples=args.test)
        record.setdefault("test", {})[str(done)] = counts.to_dict()
        atomic_write_text(curve, json.dumps(record, indent=1) + "\n")
        print(f"# test, first {args.test} images, generator alone at {done} steps: {counts}", flush=True)
    print(json.dumps({"name": name, "steps": done, "last": attack.history[-1]}))


if __name__ == "__main__":
    main()
