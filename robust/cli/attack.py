"""``robust attack``: run any attack against a model on a dataset; train the ones that learn their patches."""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from robust import registry
from robust.checks import InputError
from robust.cli.base import (
    _RATE_LABELS,
    DataOpt,
    DeviceOpt,
    InputSizeOpt,
    JsonOpt,
    ModelOpt,
    SamplesOpt,
    SplitOpt,
    _check_options,
    _check_split,
    _emit,
    _image_progress,
    _load_victim,
    _params,
    _typer,
    console,
)

if TYPE_CHECKING:
    from robust.presets import Task


def train_command(task: Task, model: str, data: str, preset: Task | None = None, seed: int = 0) -> str:
    """The ``robust attack train`` command (without its output) that trains ``task``'s attack on ``model`` as the
    preset's parameters and ``[train]`` recipe say: what a board would train, for a user to run by hand. When
    ``task`` is the ``preset`` unchanged, the preset's own name says it all (``robust attack train PRESET`` takes
    its parameters and recipe); otherwise every parameter and recipe option is spelled out. A ``seed`` other than
    0 (the artifact a run looks for is the one trained with its seed) is passed on.

    >>> from robust.presets import load_preset
    >>> task = load_preset("gan-patch-12pct")
    >>> train_command(task, "zoo:digits-m/vit", "digits-m", preset=task)
    'robust attack train gan-patch-12pct --victim zoo:digits-m/vit --data digits-m'
    >>> train_command(task, "zoo:digits-m/vit", "digits-m", preset=task, seed=3)
    'robust attack train gan-patch-12pct --victim zoo:digits-m/vit --data digits-m --seed 3'
    >>> train_command(task, "zoo:digits-m/vit", "digits-m")
    'robust attack train gan-patch --victim zoo:digits-m/vit --data digits-m --area 0.12 --placement gradcam \
--param target=random --train epochs=12 --train precision=bf16'
    """
    where = ["--victim", shlex.quote(model), "--data", shlex.quote(data)]
    seeded = [f"--seed {seed}"] if seed else []
    if preset is not None and task == preset:
        return " ".join(["robust attack train", task.name, *where, *seeded])

    def word(key: str, value: object) -> str:
        return shlex.quote(f"{key}={str(value).lower() if isinstance(value, bool) else value}")

    own = [f"--{k} {task.params[k]}" for k in ("area", "placement") if k in task.params]  # options of their own
    params = {k: v for k, v in task.params.items() if k not in ("area", "placement", "seed")}
    return " ".join(["robust attack train", task.method, *where, *own,
                     *(f"--param {word(k, v)}" for k, v in params.items()),
                     *(f"--train {word(k, v)}" for k, v in task.train.items()), *seeded])


attack_app = _typer("Attacks: train the generative ones, run any against a model on a dataset.")


@attack_app.command("run")
def attack_run(attack: str = typer.Argument(..., help="{attacks}."),
               model: str = ModelOpt,
               data: str = DataOpt,
               split: str = SplitOpt,
               samples: int = SamplesOpt,
               area: float = typer.Option(None, "--area", help="Patch area as a fraction of the image."),
               placement: str = typer.Option(None, "--placement", help="{placements}."),
               param: list[str] = typer.Option([], "--param", help="Further attack parameters, KEY=VALUE."),
               checkpoint: str = typer.Option(None, "--checkpoint",
                                              help="A trained attack's artifact ({trained}): a path, or "
                                                   "zoo:DATA/MODEL/ATTACK-Npct for a shipped one."),
               seed: int = typer.Option(0, "--seed"), batch_size: int = typer.Option(100, "--batch-size"),
               input_size: str = InputSizeOpt, device: str = DeviceOpt, as_json: bool = JsonOpt) -> None:
    """Attack a model on the first N images of the test (or val) split; print clean accuracy, ASR and TCS with
    Wilson intervals."""
    import time

    from robust.attacks import evaluate
    from robust.attacks.artifacts import digests, list_artifacts, resolve_checkpoint
    from robust.attacks.cost import Passes
    from robust.checks import check_matches, check_samples
    from robust.data import label_source
    from robust.metrics import MEANINGS, RATES, describe_targets
    from robust.model_data import load_for
    from robust.presets import Task, method_preset
    from robust.runner.cells import versions

    _check_options(seed, samples=samples, batch_size=batch_size)
    params = _params(param, area=area, placement=placement, seed=seed)
    preset = method_preset(attack, "attack")  # a preset: its method and parameters
    given = {k: v for k, v in (("area", area), ("placement", placement)) if v is not None}
    task = preset or Task(attack, "attack", attack, {}, {})
    task = dataclasses.replace(task, params={**task.params, **params, **given})
    method = registry.get(task.method, "attack")
    params = {**task.params, "seed": seed}  # as the output records them
    _check_split(split)
    net = _load_victim(model, data, split, device, input_size)
    if checkpoint is None and method.trained and preset is not None:  # the artifact a board would use
        from robust.attacks.artifacts import artifact_for, artifact_victim
        from robust.runner.cache import fingerprint_train_split
        from robust.runner.keys import fingerprint_model

        art = artifact_for(task, artifact_victim(model, net), fingerprint_model(net), data, seed,
                           lambda: fingerprint_train_split(data, getattr(net, "preprocess", None)))
        if not Path(art["path"]).is_file():
            how = train_command(task, model, data, preset, seed)
            raise InputError(f"preset {attack!r} has no shipped or cached artifact for {model} on {data}; expected "
                             f"one trained with its recipe: `{how} --out FILE` and then --checkpoint FILE "
                             "(or run the preset on a board, which trains it into the cache).")
        checkpoint = art["name"] if art["source"] == "shipped" else art["path"]
    path = recorded = None
    if checkpoint is not None:
        if not method.trained:
            raise InputError(f"--checkpoint is for trained attacks ({registry.names('attack', True)}); {attack!r} "
                             "takes none.")
        path = resolve_checkpoint(checkpoint)
        recorded = {"checkpoint": str(checkpoint), **digests(path)}
    elif method.trained:
        raise InputError(f"{attack!r} needs --checkpoint (a file from `robust attack train {attack}`, or a shipped "
                         f"one: {', '.join('zoo:' + k for k in list_artifacts()) or 'none'}), or name a preset "
                         "(robust presets list).")
    atk = task.build_attack(seed, artifact=path)
    ds = load_for(net, data, split)
    start, passes = time.perf_counter(), Passes()
    check_matches(net, ds)  # bad input is one line, before any progress is shown
    check_samples(samples, ds)
    with _image_progress(f"{attack} on {model}", min(samples, len(ds)), as_json) as advance:
        total = evaluate(atk, net, ds, samples=samples, batch_size=batch_size, progress=advance, passes=passes)
    out = {"attack": attack, "method": method.name, "preset": preset and attack, "model": model, "data": data,
           "split": split, "samples": samples, "seed": seed, "params": params, "artifact": recorded,
           "labels": label_source(ds), "classes": net.num_classes, "device": str(net.device), "versions": versions(),
           "seconds": round(time.perf_counter() - start, 2), "passes": passes.to_dict(), **total.to_dict()}
    if as_json:
        _emit(out)
        return
    decided = " (decision labels: its own clean top-1)" if out["labels"] == "decision" else ""
    targets = describe_targets(total.targeted, getattr(atk, "target_mode", params.get("target", "random")))
    table = Table("measure", "value", "95 % interval", "count",
                  title=f"{attack} on {model} ({data}/{split}, n={total.n}, seed {seed}){decided}\n{targets}")
    shown = []
    for rate in RATES:
        value, ci = total.rate(rate), total.interval(rate)
        if value is None:
            continue
        k, n = total.fraction(rate)
        shown.append(rate)
        interval = f"{100 * ci[0]:.1f}-{100 * ci[1]:.1f} %" if ci else "-"
        table.add_row(_RATE_LABELS[rate], f"{100 * value:.1f} %", interval, f"{k} / {n}")
    table.add_row("victim passes / image", f"{passes.per_image:.1f}", "-",
                  f"{passes.forward} fwd + {passes.backward} bwd / {passes.images}")
    console.print(table)
    for rate in shown:
        if rate in ("asr", "tcs", "robust_accuracy"):
            console.print(f"{_RATE_LABELS[rate]}: {MEANINGS[rate]}.")


@attack_app.command("train", help="Train an attack that learns its patches ({train_options}) against one or "
                    "more victims and save it. An interrupted run of a resumable attack continues from its last "
                    "checkpoint when the same command is run again.")
def attack_train(attack: str = typer.Argument(..., help="{trained}, or a preset of one (its parameters and "
                                              "training recipe, under the options given here)."),
                 victim: list[str] = typer.Option(..., "--victim", help="Victim model spec; repeat for an ensemble."),
                 out: Path = typer.Option(None, "--out", help="The .safetensors to write (its .json goes beside it)."),
                 publish: bool = typer.Option(False, "--publish", help="Ship it with the package (zoo victims; a "
                                              "source checkout only): write it under robust/attacks/weights with "
                                              "its sha256 and the TCS measured on the test split in the manifest."),
                 variant: str = typer.Option(None, "--variant", help="With --publish: ship a recipe other than the "
                                             "preset's under its own name, ATTACK-VARIANT-Npct (e.g. critic2)."),
                 data: str = DataOpt,
                 split: str = typer.Option("train", "--split", help="train: all training images (what ships, "
                                           "scored on test with --publish); fit: digits-m without its validation "
                                           "digits, scored on val afterwards (to choose a recipe)."),
                 area: float = typer.Option(None, "--area", help="Patch area as a fraction of the image (default: "
                                            "a preset's, else 0.08)."),
                 placement: str = typer.Option(None, "--placement", help="{placements} (default: a preset's, else "
                                               "gradcam)."),
                 epochs: int = typer.Option(None, "--epochs", help="Training epochs (same as --train epochs=N)."),
                 steps: int = typer.Option(None, "--steps", help="Training steps (same as --train steps=N)."),
                 batch_size: int = typer.Option(None, "--batch-size"),
                 lr: float = typer.Option(None, "--lr"),
                 precision: str = typer.Option(None, "--precision", help="fp32, bf16 or fp16 autocast."),
                 train_samples: int = typer.Option(None, "--train-samples",
                                                   help="Train on the first N training images only."),
                 train: list[str] = typer.Option([], "--train", help="Further training options, KEY=VALUE (each "
                                                 "attack's are listed above)."),
                 param: list[str] = typer.Option([], "--param", help="Further attack parameters, KEY=VALUE."),
                 seed: int = typer.Option(0, "--seed"), input_size: str = InputSizeOpt, device: str = DeviceOpt,
                 as_json: bool = JsonOpt) -> None:
    import inspect
    import sys
    import time

    import torch

    from robust.attacks import evaluate, make_attack
    from robust.attacks.artifacts import artifact_name, artifact_path, record_artifact
    from robust.io import publish_dir
    from robust.model_data import load_for
    from robust.presets import method_preset

    _check_options(seed, train_samples=train_samples, epochs=epochs, steps=steps, batch_size=batch_size)
    task = method_preset(attack, "attack")
    method = registry.get(task.method if task else attack, "attack")
    if not method.trained:
        raise InputError(f"attack {attack!r} is not trained; expected one of {sorted(registry.trained())} or a "
                         "preset of one.")
    if task is not None and publish:
        raise InputError(f"--publish with the preset {attack!r}: a shipped artifact is named by its method; expected "
                         f"{task.method} with the preset's options and --variant (`robust presets show {attack}` "
                         "lists them), or --out PATH.")
    preset = task.params if task else {}
    area = area if area is not None else preset.get("area", 0.08)
    placement = placement if placement is not None else preset.get("placement", "gradcam")
    if split not in ("train", "fit"):
        raise InputError(f"--split {split!r} is not valid; expected 'train' or 'fit'.")
    if publish and split != "train":
        raise InputError(f"--split {split} and --publish: a shipped artifact trains on 'train' (a recipe chosen "
                         "on fit / val is then trained on all of train).")
    if variant is not None and not publish:
        raise InputError(f"--variant {variant!r} without --publish: a variant names a shipped artifact; expected "
                         "--publish too (or --out PATH alone).")
    name = artifact_name(data, victim, attack, area, variant) if publish else None
    if (out is None) == (name is None):
        raise InputError("expected exactly one of --out PATH and --publish.")
    out = out or publish_dir(artifact_path(name))  # into the source tree: only from a source checkout
    if out.suffix != ".safetensors":
        raise InputError(f"--out {str(out)!r} is not valid; expected a .safetensors path.")
    fit = {k: v for k, v in (("epochs", epochs), ("steps", steps), ("batch_size", batch_size), ("lr", lr),
                              ("precision", precision), ("train_samples", train_samples)) if v is not None}
    fit.update(_params(train, "--train", **dict(sorted(fit.items()))))  # a clash names the first key by name
    allowed = method.train_options()
    if bad := sorted(set(fit) - set(allowed)):
        raise InputError(f"{attack} does not take --{bad[0].replace('_', '-')} (training option {bad[0]!r}); its "
                         f"training options are {sorted(allowed)} (--train KEY=VALUE).")
    atk = make_attack(attack, area=area, placement=placement, seed=seed, **_params(param))
    out.parent.mkdir(parents=True, exist_ok=True)
    nets = [_load_victim(v, data, split, device, input_size) for v in victim]
    with console.status(f"loading {data}"):
        ds = load_for(nets[0], data, split)  # the victims' preprocessing: the first's
    resume = out.with_suffix(".resume.pt")
    if method.resumable:
        fit["resume"] = resume
    if split == "fit" and "monitor" in inspect.signature(atk.fit).parameters:  # the val curve while it trains
        fit["monitor"] = load_for(nets[0], data, "val")
    start = time.perf_counter()
    atk.fit(nets, ds, progress=not as_json, **fit)
    atk.save(out)
    if "steps" not in {**atk.recipe, **fit} or not method.resumable:  # a schedule in steps keeps its resume file
        resume.unlink(missing_ok=True)
    history = atk.history
    seconds = round(time.perf_counter() - start, 1)
    if history and all("seconds" in h for h in history):  # a resumed run: the epochs of earlier calls count too
        seconds = round(sum(h["seconds"] for h in history), 1)
    result = {"attack": attack, "victims": victim, "data": data, "split": split, "out": str(out), "seed": seed,
              "seconds": seconds, "history": history}
    if split == "fit":  # choosing: scored on the held-out training digits, never on test
        val = load_for(nets[0], data, "val")
        result["val"] = {spec: evaluate(atk, net, val).to_dict() for spec, net in zip(victim, nets, strict=True)}
    if name is not None:
        test = load_for(nets[0], data, "test")
        scores = {spec: evaluate(atk, net, test).to_dict() for spec, net in zip(victim, nets, strict=True)}
        record_artifact(name, {"attack": attack, "victims": victim, "data": data, "area": area,
                               "placement": placement, "seed": seed, "file": out.name,
                               "train_seconds": result["seconds"], "device": str(nets[0].device),
                               "torch": torch.__version__, "test": scores,
                               "command": "robust attack train " + " ".join(sys.argv[3:])})
        result["test"] = scores
    if as_json:
        _emit(result)
        return
    if history:  # whatever each record of the attack's training curve holds
        table = Table(*history[0], title=f"{attack} training")
        for h in history:
            table.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in h.values()))
        console.print(table)
    for scored in ("test", "val"):
        for spec, score in result.get(scored, {}).items():
            console.print(f"{spec}: TCS {score['tcs']:.3f} (n = {score['n']}), ASR {score['asr']:.3f} on "
                          f"{data}/{scored}")
    console.print(f"wrote {out} and {out.name}.json in {result['seconds']} s")
