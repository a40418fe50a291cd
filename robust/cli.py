"""The ``robust`` command. Bad input prints one line to stderr and exits with code 2, never a traceback; a bug keeps
its traceback."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import platform
from collections.abc import Callable, Iterator
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from robust import registry
from robust.checks import InputError


class _App(typer.Typer):
    """A Typer app whose commands turn bad input (``robust.checks.InputError``) and unwritable paths (``OSError``)
    into one line on stderr and exit code 2. Any other exception is a bug and keeps its traceback."""

    def command(self, *args, **kwargs):
        register = super().command(*args, **kwargs)

        def decorator(fn: Callable) -> Callable:
            @functools.wraps(fn)
            def wrapped(*a, **kw):
                try:
                    return fn(*a, **kw)
                except InputError as e:
                    typer.echo(f"error: {e}", err=True)
                    raise typer.Exit(2) from None
                except OSError as e:  # an output path that cannot be written, a disk that is full
                    typer.echo(f"error: {e.strerror or e}: {e.filename!r}" if e.filename else f"error: {e}", err=True)
                    raise typer.Exit(2) from None

            register(wrapped)
            return fn

        return decorator


def _typer(help: str) -> typer.Typer:
    return _App(help=help, no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)


app = _typer("Adversarial-robustness evaluation for vision backbones.")
zoo_app = _typer("The model zoo: list and train models.")
data_app = _typer("Datasets: list them and look at samples.")
attack_app = _typer("Attacks: train the generative ones, run any against a model on a dataset.")
occlusion_app = _typer("Occlusion robustness and patch selectivity: curves over a dataset.")
board_app = _typer("Leaderboards: run a spec's grid into a resumable SQLite store, render the board.")
presets_app = _typer("Presets: the named attacks and evaluations that specs, suites and `attack run` accept.")
app.add_typer(attack_app, name="attack")
app.add_typer(presets_app, name="presets")
app.add_typer(occlusion_app, name="occlusion")
app.add_typer(board_app, name="leaderboard")
app.add_typer(zoo_app, name="zoo")
app.add_typer(data_app, name="data")
# markup off: model names, task names, descriptions and paths come from users and files, and '[exp1]' or '[/]'
# in them must print as written (robust's own output uses styles, never markup)
console = Console(markup=False)

DeviceOpt = typer.Option("auto", "--device", help="auto, cpu, mps or cuda[:n].")
SplitOpt = typer.Option("test", "--split", help="test (reported figures) or, on digits-m, val (training digits "
                        "held out of 'fit': for choosing budgets and recipes against models trained on fit; the "
                        "shipped zoo trained on them).")
JsonOpt = typer.Option(False, "--json", help="Print one JSON object instead of a table.")
InputSizeOpt = typer.Option(None, "--input-size", help="The images the model takes, e.g. 3x32x32 (the same as "
                            "?input_size= in its spec): for a model whose source does not say. Without it such a "
                            "model takes the data's size.")


@contextlib.contextmanager
def _image_progress(label: str, total: int, quiet: bool, every: float = 5.0) -> Iterator[Callable[[int], None]]:
    """``advance(k)`` for ``k`` more images done: a bar of images with its ETA in a terminal; outside one (a CI log),
    a line on stderr when it starts, then at most every ``every`` seconds and at the end; nothing when ``quiet``."""
    import sys
    import time

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    start, state = time.perf_counter(), {"done": 0, "said": 0.0}
    lines = not quiet and not sys.stderr.isatty()

    def say() -> None:
        done, spent = state["done"], time.perf_counter() - start
        left = f", about {spent / done * (total - done):.0f} s left" if 0 < done < total else ""
        typer.echo(f"[{label}] {done}/{total} images, {spent:.0f} s{left}", err=True)
        state["said"] = time.perf_counter()

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("images"),
               TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn()]
    with Progress(*columns, console=console, disable=quiet or lines, transient=True) as bar:
        task = bar.add_task(label, total=total)
        if lines:
            say()

        def advance(k: int) -> None:
            state["done"] += k
            bar.advance(task, k)
            if lines and (time.perf_counter() - state["said"] >= every or state["done"] >= total):
                say()

        yield advance


#: how a text table names each rate (robust.metrics.MEANINGS says what it is)
_RATE_LABELS = {"clean_accuracy": "clean accuracy", "robust_accuracy": "robust accuracy", "asr": "ASR", "tcs": "TCS",
                "asr_all": "ASR over all n", "tcs_all": "TCS over all n"}


def _load_victim(spec: str, data: str, split: str, device: str, input_size: str | None):
    """The Backbone of ``spec``: at ``input_size`` when given, else a source that does not say its size (a factory's
    plain module, a ``.pt`` file) takes the size of ``data``'s ``split`` as loaded by default, as in a board."""
    from robust.checks import data_image_size
    from robust.data import load_dataset
    from robust.models import load_model, parse_input_size, with_input_size

    if input_size is not None:
        spec = with_input_size(spec, parse_input_size(input_size, "--input-size"))
    return load_model(spec, device=device, input_size=data_image_size(load_dataset(data, split)))


def _emit(obj: object) -> None:
    typer.echo(json.dumps(obj, indent=None, default=str))


def _print_version(value: bool) -> None:
    if value:
        import robust

        typer.echo(f"robust-suite {robust.__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                          help="Print robust's version and exit.")) -> None:
    """Adversarial-robustness evaluation for vision backbones."""


@presets_app.command("list")
def presets_list(presets: list[Path] = typer.Option([], "--presets", help="A folder of your own presets, searched "
                                                   "first (repeat for several; $ROBUST_PRESETS too)."),
                 as_json: bool = JsonOpt) -> None:
    """Every preset on the search path: name, kind, method, description and the file it comes from."""
    from robust.presets import list_presets, load_preset

    for folder in presets:
        if not folder.is_dir():
            raise InputError(f"--presets {str(folder)!r} is not a folder; expected a folder of preset .toml files.")
    rows = []
    for name, path in list_presets(presets).items():
        task = load_preset(name, presets)
        rows.append({"name": name, "kind": task.kind, "method": task.method, "description": task.description,
                     "params": task.params, "file": str(path)})
    if as_json:
        _emit(rows)
        return
    table = Table(title="robust presets")
    for col in ("name", "kind", "method"):
        table.add_column(col, no_wrap=True)
    table.add_column("description")
    for r in rows:
        table.add_row(r["name"], r["kind"], r["method"], r["description"])
    console.print(table)


@presets_app.command("show")
def presets_show(name: str = typer.Argument(..., help="A preset's name (robust presets list)."),
                 presets: list[Path] = typer.Option([], "--presets", help="A folder of your own presets, searched "
                                                    "first."),
                 as_json: bool = JsonOpt) -> None:
    """One preset in full: what it is, its method, every parameter it sets and the method's defaults for the rest,
    its training recipe, its file and the command that runs it."""
    import inspect

    from robust.presets import list_presets, load_preset

    task = load_preset(name, presets)
    method = registry.get(task.method, task.kind)
    defaults = {k: p.default for k, p in method.params().items()
                if p.default is not inspect.Parameter.empty and k not in task.params and k != "seed"}
    run = f"robust {'attack' if task.kind == 'attack' else 'occlusion'} run {name} --model SPEC"
    doc = {"name": name, "kind": task.kind, "method": task.method, "description": task.description,
           "targeted": task.targeted if task.kind == "attack" else None, "params": task.params,
           "method_defaults": defaults, "train": task.train, "file": str(list_presets(presets)[name]),
           "command": run}
    if as_json:
        _emit(doc)
        return
    table = Table(title=f"preset {name}", show_header=False)
    table.add_column("field", no_wrap=True)
    table.add_column("value")
    show = lambda d: ", ".join(f"{k}={v!r}" for k, v in d.items()) or "-"
    for label, value in (("kind", task.kind), ("method", f"{task.method}: {method.description}"),
                         ("description", task.description or "-"),
                         ("targeted", {True: "yes (TCS is its headline)", False: "no (ASR is its headline)",
                                       None: "-"}[doc["targeted"]]),
                         ("parameters it sets", show(task.params)), ("method defaults for the rest", show(defaults)),
                         ("training recipe", show(task.train)), ("file", doc["file"]), ("run it", run)):
        table.add_row(label, str(value))
    console.print(table)


@app.command("compare")
def compare(baseline: Path = typer.Argument(..., help="The baseline: a board's results.json or `attack run --json`. "
                                            "Missing: the results are recorded as it (exit 0; see "
                                            "--require-baseline)."),
            results: Path = typer.Argument(..., help="The new results, of the same kind and data."),
            rule: str = typer.Option("wilson", "--rule", help="wilson: a regression is a 95 % interval wholly on "
                                     "the worse side of the baseline's; point: a value on the worse side."),
            tolerance: float = typer.Option(0.0, "--tolerance", help="How much worse still passes."),
            pair: list[str] = typer.Option([], "--pair", help="OLD=NEW: compare the baseline's model OLD with the "
                                           "results' model NEW (two versions of a model); repeatable."),
            label: str = typer.Option(None, "--as", help="NAME: each file holds one model; compare them as one, "
                                      "shown as NAME."),
            min_correct: int = typer.Option(30, "--min-correct", help="A new model with fewer clean-correct images "
                                            "fails (too-few): its ASR and TCS prove nothing."),
            allow_chance: bool = typer.Option(False, "--allow-chance", help="Do not fail a new model whose clean "
                                              "accuracy is not above chance."),
            require_baseline: bool = typer.Option(False, "--require-baseline", help="A missing baseline fails "
                                                  "(exit 1) instead of being recorded."),
            as_json: bool = JsonOpt) -> None:
    """Compare two result files cell by cell; exit 1 on a regression, a baseline cell the results lack, or a new
    model too weak to judge (too-few clean-correct images, or at chance)."""
    from robust.compare import FAILING, compare_results, read_results
    from robust.io import atomic_write_text

    if not baseline.exists():
        _, cells = read_results(results)  # what would be recorded is a readable results file
        if require_baseline:
            typer.echo(f"error: baseline {str(baseline)!r} does not exist (--require-baseline); record it with "
                       f"`robust compare {baseline} {results}` (without the flag) and commit it.", err=True)
            raise typer.Exit(1)
        baseline.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(baseline, results.read_text())
        message = (f"baseline {str(baseline)!r} did not exist: recorded {str(results)!r} ({len(cells)} cells) as it; "
                   "commit it so that later runs compare with it.")
        if as_json:
            _emit({"recorded": str(baseline), "cells": len(cells), "failed": 0})
        else:
            typer.echo(message)
        return
    pairs = dict(_pair(p, baseline, results) for p in pair)
    if label is not None:
        if pairs:
            raise InputError("--as and --pair are not valid together; expected one of them.")
        pairs = {_only_model(baseline, "--as"): _only_model(results, "--as")}
    changes = compare_results(baseline, results, rule=rule, tolerance=tolerance, pairs=pairs,
                              min_correct=min_correct, allow_chance=allow_chance)
    failing = [c for c in changes if c.verdict in FAILING]
    if as_json:
        _emit({"rule": rule, "tolerance": tolerance, "failed": len(failing), "cells": [c.to_dict() for c in changes]})
    else:
        def show(v: float | None, iv: list[float] | None) -> str:
            return "-" if v is None else f"{v:.3f}" + (f" [{iv[0]:.3f}, {iv[1]:.3f}]" if iv else "")

        def measure(c) -> str:
            return f"{c.measure} ({'lower' if c.lower_is_better else 'higher'} is better)"

        def model(c) -> str:
            return label if label is not None else f"{c.model} -> {c.against}" if c.against else c.model

        def verdict(c) -> str:
            return f"{c.verdict} ({c.why})" if c.why else c.verdict

        if console.is_terminal:
            table = Table(title=f"{results} against {baseline} (rule {rule}, tolerance {tolerance:g})")
            for col in ("model", "task", "measure", "baseline", "now", "verdict"):
                table.add_column(col)
            for c in changes:
                style = "bold red" if c.verdict in FAILING else "green" if c.verdict == "improved" else ""
                table.add_row(model(c), c.task, measure(c), show(c.baseline, c.baseline_interval),
                              show(c.value, c.interval), verdict(c), style=style)
            console.print(table)
        else:  # a CI log: one line per cell, nothing wrapped
            typer.echo(f"{results} against {baseline} (rule {rule}, tolerance {tolerance:g})")
            for c in changes:
                typer.echo(f"{verdict(c)}: {model(c)} / {c.task}, {measure(c)}: "
                           f"{show(c.baseline, c.baseline_interval)} -> {show(c.value, c.interval)}")
        from robust.metrics import MEANINGS

        for m in sorted({c.measure for c in changes} & set(MEANINGS)):
            console.print(f"{m.upper()}: {MEANINGS[m]}.")
        console.print(f"{len(failing)} of {len(changes)} cells regressed, are missing or are too weak to judge."
                      if failing else f"no regression in {len(changes)} cells.")
    if failing:
        raise typer.Exit(1)


def _models_in(path: Path) -> list[str]:
    from robust.compare import read_results

    return sorted({m for m, _ in read_results(path)[1]})


def _pair(text: str, baseline: Path, results: Path) -> tuple[str, str]:
    """``--pair OLD=NEW`` as (OLD, NEW), split at the '=' that leaves a model of each file on its side (a spec may
    hold '=' itself: 'file:m.pt?arch=x')."""
    old_models, new_models = _models_in(baseline), _models_in(results)
    splits = [(text[:i], text[i + 1:]) for i, ch in enumerate(text) if ch == "="]
    found = [(a, b) for a, b in splits if a in old_models and b in new_models]
    if len(found) != 1:
        raise InputError(f"--pair {text!r} is not valid; expected OLD=NEW with OLD a model of {str(baseline)!r} "
                         f"({old_models}) and NEW one of {str(results)!r} ({new_models}).")
    return found[0]


def _only_model(path: Path, option: str) -> str:
    models = _models_in(path)
    if len(models) != 1:
        raise InputError(f"{option} needs one model in each file; {str(path)!r} holds {len(models)} ({models}); "
                         "expected --pair OLD=NEW instead.")
    return models[0]


@app.command()
def info(device: str = DeviceOpt, as_json: bool = JsonOpt) -> None:
    """Versions of robust and its main dependencies, and the device that would be used."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    from robust.device import resolve_device

    packages = {}
    for pkg in ("robust-suite", "torch", "torchvision", "timm", "torchattacks", "robustbench", "grad-cam", "kornia",
                "scikit-learn", "safetensors"):
        try:
            packages[pkg] = version(pkg)
        except PackageNotFoundError:
            packages[pkg] = None
    dev = resolve_device(device)
    out = {"python": platform.python_version(), "platform": platform.platform(), "packages": packages,
           "device": str(dev), "cuda_available": torch.cuda.is_available(),
           "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
           "threads": torch.get_num_threads()}
    if as_json:
        _emit(out)
        return
    table = Table("what", "value", title="robust info")
    table.add_row("python", out["python"])
    table.add_row("platform", out["platform"])
    for pkg, v in packages.items():
        table.add_row(pkg, v or "not installed")
    table.add_row("device", out["device"])
    table.add_row("cuda devices", ", ".join(out["cuda_devices"]) or "none")
    console.print(table)


@zoo_app.command("list")
def zoo_list(as_json: bool = JsonOpt) -> None:
    """The zoo's models with their parameter counts and measured test accuracies."""
    from robust.models import zoo

    models = zoo.list_models()
    if as_json:
        _emit(models)
        return
    table = Table(title="robust zoo (test accuracy: the 1,000 digits-m test images)")
    table.add_column("spec", no_wrap=True)
    table.add_column("family", no_wrap=True)
    for col in ("params", "test acc", "train"):
        table.add_column(col, justify="right", no_wrap=True)
    for key, e in models.items():
        acc = f"{e['test_accuracy']:.1%}" if "test_accuracy" in e else "-"
        secs = f"{e['train_seconds']:.0f} s" if "train_seconds" in e else "-"
        table.add_row(f"zoo:{key}", e.get("family", "-"), f"{e['params'] / 1e6:.2f} M", acc, secs)
    console.print(table)


@zoo_app.command("train")
def zoo_train(arch: str = typer.Argument(..., help="Zoo architecture, e.g. resnet, vit, mixer."),
              epochs: int = typer.Option(None, help="Epochs (default: the architecture's recipe)."),
              lr: float = typer.Option(None, help="Peak learning rate (default: the architecture's recipe)."),
              split: str = typer.Option("train", help="train: all training digits, scored on test (what ships); "
                                        "fit: without the validation digits, scored on val (to choose a recipe)."),
              seed: int = typer.Option(0, help="Seed of initialisation, data order and augmentation."),
              device: str = DeviceOpt,
              out_dir: Path = typer.Option(None, help="Where to write weights and manifest (default: robust's "
                                           "cache, zoo/)."),
              publish: bool = typer.Option(False, "--publish", help="Write into the package's zoo (a source "
                                           "checkout only) so that zoo:digits-m/ARCH loads it."),
              augment: str = typer.Option(None, "--augment", help="patch-mixing: train with Patch Mixing, named "
                                          "ARCH-pm."),
              name: str = typer.Option(None, "--name", help="The zoo name (default ARCH, or ARCH-pm), e.g. "
                                       "resnet-8ep for a control trained longer than its recipe."),
              stream: bool = typer.Option(False, "--stream", help="Train on fresh composites of the split's "
                                          "digits (new positions and backgrounds every step) instead of the "
                                          "stored images."),
              as_json: bool = JsonOpt) -> None:
    """Train a digits-m zoo model and record it in the manifest of its folder."""
    from robust.zoo_training import train

    entry = train(arch, epochs=epochs, lr=lr, seed=seed, device=device, out_dir=out_dir, publish=publish,
                  augment=augment, name=name, split=split, stream=stream, progress=not as_json)
    if as_json:
        _emit(entry)
    else:
        key = entry["file"].removeprefix("digits-m-").removesuffix(".safetensors")
        spec = f"zoo:digits-m/{key}" if publish else f"file:{entry['path']}"
        scored = "test" if split == "train" else "val"
        console.print(f"{spec}: {scored} accuracy {entry[f'{scored}_accuracy']:.2%} on {entry[f'{scored}_n']} "
                      f"images, {entry['params']:,} parameters, trained in {entry['train_seconds']:.0f} s")


@zoo_app.command("eval")
def zoo_eval(device: str = DeviceOpt, as_json: bool = JsonOpt) -> None:
    """Measure every zoo model's clean accuracy on its dataset's test split, next to the manifest's figure."""
    import time

    from rich.progress import track

    from robust.metrics import clean_accuracy
    from robust.model_data import load_for
    from robust.models import load_model, zoo

    rows = []
    models = zoo.list_models()
    for key, entry in track(models.items(), description="evaluating", total=len(models), disable=as_json,
                            console=console, transient=True):
        start = time.perf_counter()
        model = load_model(f"zoo:{key}", device=device)
        res = clean_accuracy(model, load_for(model, "digits-m" if key.startswith("digits-m/") else "imagenet-photos"))
        rows.append({"spec": f"zoo:{key}", "family": model.family, **res, "manifest": entry.get("test_accuracy"),
                     "seconds": round(time.perf_counter() - start, 2)})
    if as_json:
        _emit({"models": rows, "device": device})
        return
    table = Table(title="zoo clean accuracy, measured now (95 % Wilson interval)")
    table.add_column("zoo model", no_wrap=True)
    for col in ("accuracy", "interval", "n", "manifest"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in rows:
        lo, hi = r["interval"]
        table.add_row(r["spec"].removeprefix("zoo:"), f"{r['accuracy']:.1%}", f"{lo:.1%}-{hi:.1%}", str(r["n"]),
                      f"{r['manifest']:.1%}" if r["manifest"] is not None else "-")
    console.print(table)


def _check_options(seed: object = None, **counts: object) -> None:
    """Integer options, before anything is loaded: ``counts`` positive (None: not given), ``seed`` in [0, 2**64)."""
    from robust.checks import SEED_LIMIT

    for key, value in counts.items():
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise InputError(f"--{key.replace('_', '-')} {value!r} is not valid; expected a positive integer.")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < SEED_LIMIT):
        raise InputError(f"--seed {seed!r} is not valid; expected an integer in [0, 2**64).")


def _check_split(split: str) -> None:
    if split not in ("test", "val"):
        raise InputError(f"--split {split!r} is not valid; expected 'test' or 'val' (digits-m).")


def _param(text: str, option: str = "--param") -> tuple[str, object]:
    from robust.models.specs import parse_value

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise InputError(f"{option} {text!r} is not valid; expected KEY=VALUE, e.g. steps=50.")
    return key.replace("-", "_"), parse_value(value)


@attack_app.command("run")
def attack_run(attack: str = typer.Argument(..., help="{attacks}."),
               model: str = typer.Option(..., "--model", help="Model spec, e.g. zoo:digits-m/resnet."),
               data: str = typer.Option("digits-m", "--data", help="Dataset name."),
               split: str = SplitOpt,
               samples: int = typer.Option(500, "--samples", help="How many images of the split (from the start)."),
               area: float = typer.Option(None, "--area", help="Patch area as a fraction of the image."),
               placement: str = typer.Option(None, "--placement", help="{placements}."),
               param: list[str] = typer.Option([], "--param", help="Further attack parameters, KEY=VALUE."),
               checkpoint: str = typer.Option(None, "--checkpoint",
                                              help="A trained attack's artefact ({trained}): a path, or "
                                                   "zoo:DATA/MODEL/ATTACK-Npct for a shipped one."),
               seed: int = typer.Option(0, "--seed"), batch_size: int = typer.Option(100, "--batch-size"),
               input_size: str = InputSizeOpt, device: str = DeviceOpt, as_json: bool = JsonOpt) -> None:
    """Attack a model on the first N images of the test (or val) split; print clean accuracy, ASR and TCS with
    Wilson intervals."""
    import time

    from robust.attacks import evaluate, make_attack
    from robust.attacks.artifacts import digests, list_artifacts, resolve_checkpoint
    from robust.attacks.cost import Passes
    from robust.data import label_source
    from robust.metrics import MEANINGS, RATES, describe_targets
    from robust.model_data import load_for
    from robust.presets import method_preset
    from robust.runner.cells import versions

    _check_options(seed, samples=samples, batch_size=batch_size)
    params = dict(_param(p) for p in param)
    options = {"seed": seed, "area": area, "placement": placement}
    if given := sorted(k for k in params if k in options and options[k] is not None):  # two values: refuse both
        raise InputError(f"--param {given[0]}=... is not valid; expected the option --{given[0]} instead.")
    preset = method_preset(attack, "attack")  # a preset: its method and parameters
    if preset is not None:
        params = {**preset.params, **params}
    method = registry.get(preset.method if preset else attack, "attack")
    params.update({k: v for k, v in (("area", area), ("placement", placement)) if v is not None}, seed=seed)
    _check_split(split)
    net = _load_victim(model, data, split, device, input_size)
    if checkpoint is None and method.trained and preset is not None:  # the artefact a board would use
        from robust.runner.cells import artifact_for
        from robust.runner.keys import fingerprint_model

        task = dataclasses.replace(preset, params={k: v for k, v in params.items() if k != "seed"})
        art = artifact_for(task, model, fingerprint_model(net), data, seed)
        if not Path(art["path"]).is_file():
            raise InputError(f"preset {attack!r} has no shipped or cached artefact for {model} on {data}; train one "
                             f"(robust attack train {method.name} --victim {model} --area {params.get('area')}) or "
                             "pass --checkpoint.")
        checkpoint = art["name"] if art["source"] == "shipped" else art["path"]
    recorded = None
    if checkpoint is not None:
        if not method.trained:
            raise InputError(f"--checkpoint is for trained attacks ({registry.names('attack', True)}); {attack!r} "
                             "takes none.")
        path = resolve_checkpoint(checkpoint)
        atk = method.build.load(path, **params)
        recorded = {"checkpoint": str(checkpoint), **digests(path)}
    elif method.trained:
        raise InputError(f"{attack!r} needs --checkpoint (a file from `robust attack train {attack}`, or a shipped "
                         f"one: {', '.join('zoo:' + k for k in list_artifacts()) or 'none'}), or name a preset "
                         "(robust presets list).")
    else:
        atk = make_attack(method.name, **params)
    ds = load_for(net, data, split)
    start, passes = time.perf_counter(), Passes()
    from robust.checks import check_matches, check_samples

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
    table = Table(title=f"{attack} on {model} ({data}/{split}, n={total.n}, seed {seed}){decided}\n{targets}")
    for col in ("measure", "value", "95 % interval", "count"):
        table.add_column(col)
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
def attack_train(attack: str = typer.Argument(..., help="{trained}."),
                 victim: list[str] = typer.Option(..., "--victim", help="Victim model spec; repeat for an ensemble."),
                 out: Path = typer.Option(None, "--out", help="The .safetensors to write (its .json goes beside it)."),
                 publish: bool = typer.Option(False, "--publish", help="Ship it with the package (zoo victims; a "
                                              "source checkout only): write it under robust/attacks/weights with "
                                              "its sha256 and the TCS measured on the test split in the manifest."),
                 variant: str = typer.Option(None, "--variant", help="With --publish: ship a recipe other than the "
                                             "preset's under its own name, ATTACK-VARIANT-Npct (e.g. critic2)."),
                 data: str = typer.Option("digits-m", "--data", help="Dataset name."),
                 split: str = typer.Option("train", "--split", help="train: all training images (what ships, "
                                           "scored on test with --publish); fit: digits-m without its validation "
                                           "digits, scored on val afterwards (to choose a recipe)."),
                 area: float = typer.Option(0.08, "--area", help="Patch area as a fraction of the image."),
                 placement: str = typer.Option("gradcam", "--placement", help="{placements}."),
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

    _check_options(seed, train_samples=train_samples, epochs=epochs, steps=steps, batch_size=batch_size)
    method = registry.get(attack, "attack")
    if not method.trained:
        raise InputError(f"attack {attack!r} is not trained; expected one of {sorted(registry.trained())}.")
    if split not in ("train", "fit"):
        raise InputError(f"--split {split!r} is not valid; expected 'train' or 'fit'.")
    if publish and split != "train":
        raise InputError(f"--split {split} and --publish: a shipped artefact trains on 'train' (a recipe chosen "
                         "on fit / val is then trained on all of train).")
    if variant is not None and not publish:
        raise InputError(f"--variant {variant!r} without --publish: a variant names a shipped artefact; expected "
                         "--publish too (or --out PATH alone).")
    name = artifact_name(data, victim, attack, area, variant) if publish else None
    if (out is None) == (name is None):
        raise InputError("expected exactly one of --out PATH and --publish.")
    out = out or publish_dir(artifact_path(name))  # into the source tree: only from a source checkout
    if out.suffix != ".safetensors":
        raise InputError(f"--out {str(out)!r} is not valid; expected a .safetensors path.")
    fit = {k: v for k, v in (("epochs", epochs), ("steps", steps), ("batch_size", batch_size), ("lr", lr),
                              ("precision", precision), ("train_samples", train_samples)) if v is not None}
    extra = dict(_param(t, "--train") for t in train)
    if given := sorted(set(extra) & set(fit)):  # two values: refuse both
        raise InputError(f"--train {given[0]}=... is not valid; expected the option --{given[0].replace('_', '-')} "
                         "instead.")
    fit.update(extra)
    allowed = method.train_options()
    if bad := sorted(set(fit) - set(allowed)):
        raise InputError(f"{attack} does not take --{bad[0].replace('_', '-')} (training option {bad[0]!r}); its "
                         f"training options are {sorted(allowed)} (--train KEY=VALUE).")
    atk = make_attack(attack, area=area, placement=placement, seed=seed, **dict(_param(p) for p in param))
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
    if "steps" not in fit or not method.resumable:  # a schedule in steps keeps it: more --steps continue the run
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


@occlusion_app.command("run")
def occlusion_run(evaluation: str = typer.Argument(..., help="{evaluations}."),
                  model: str = typer.Option(..., "--model", help="Model spec, e.g. zoo:digits-m/resnet."),
                  data: str = typer.Option("digits-m", "--data", help="Dataset name."),
                  split: str = SplitOpt,
                  samples: int = typer.Option(500, "--samples", help="How many images of the split (from the start)."),
                  seeds: int = typer.Option(None, "--seeds", help="Seeds per point (mean and std over them; default: "
                                            "the preset's, else 3)."),
                  grid: int = typer.Option(None, "--grid", help="Cells per side (default: 8 at 32 px, 14 at 224)."),
                  param: list[str] = typer.Option([], "--param", help="Further parameters, KEY=VALUE."),
                  plot: Path = typer.Option(None, "--plot", help="PNG of the curve (default: EVAL-MODEL.png)."),
                  seed: int = typer.Option(0, "--seed"), batch_size: int = typer.Option(250, "--batch-size"),
                  input_size: str = InputSizeOpt, device: str = DeviceOpt, as_json: bool = JsonOpt) -> None:
    """Sweep an occlusion or selectivity evaluation; print the curve (mean, std over seeds, n) and its
    normalised area, and write a PNG plot."""
    import time

    from robust.checks import SEED_LIMIT
    from robust.io import check_writable
    from robust.model_data import load_for
    from robust.plots import save_curves
    from robust.presets import method_preset

    preset = method_preset(evaluation, "evaluation")  # a preset: its method and parameters (--seeds over its own)
    method = preset.method if preset else evaluation
    preset_params = dict(preset.params) if preset else {}
    seeds = seeds if seeds is not None else int(preset_params.pop("seeds", 3))
    preset_params.pop("seeds", None)
    _check_options(seed, samples=samples, seeds=seeds, grid=grid, batch_size=batch_size)
    if seed + seeds > SEED_LIMIT:  # the seeds used are seed, ..., seed + seeds - 1
        raise InputError(f"--seed {seed} is not valid with --seeds {seeds}; expected seed + seeds <= 2**64.")
    plot = plot or Path(f"{evaluation}-{model.replace(':', '-').replace('/', '-')}.png")
    if plot.suffix.lower() != ".png":
        raise InputError(f"--plot {str(plot)!r} is not valid; expected a .png path.")
    check_writable(plot, "--plot")  # now, not after the sweep
    params = dict(_param(p) for p in param)
    if "seeds" in params or ("grid" in params and grid is not None):
        key = "seeds" if "seeds" in params else "grid"
        raise InputError(f"--param {key}=... is not valid; expected the option --{key} instead.")
    if grid is not None:
        params["grid"] = grid
    params = {**preset_params, **params, "seeds": seeds}
    try:  # every parameter checked now, before the model loads
        sweep = registry.get(method, "evaluation").make(**params)
    except InputError as e:
        raise InputError(f"{f'preset {evaluation!r}: ' if preset else ''}{e}") from None
    params.pop("seeds")
    _check_split(split)
    net = _load_victim(model, data, split, device, input_size)
    ds = load_for(net, data, split)
    start = time.perf_counter()
    import contextlib

    with console.status(f"{evaluation} on {model}") if not as_json else contextlib.nullcontext():
        curve = sweep(net, ds, samples=samples, seed=seed, batch_size=batch_size)
    seconds = round(time.perf_counter() - start, 2)
    save_curves([curve], plot, labels=[model], title=f"{evaluation} ({data}, n={curve.n}, {curve.seeds} seeds)")
    out = {"evaluation": evaluation, "method": method, "params": params, "model": model, "data": data, "split": split,
           "seconds": seconds, "plot": str(plot),
           **curve.to_dict()}
    if as_json:
        _emit(out)
        return
    table = Table(curve.xlabel, f"{curve.ylabel} (mean over seeds)", "std", title=f"{evaluation} on {model} ({data}, "
                  f"n={curve.n}, {curve.seeds} seeds, {seconds} s)\n{registry.get(method, 'evaluation').description}")
    for x, m, s in zip(curve.x, curve.mean, curve.std, strict=True):
        table.add_row(f"{x:.4g}", f"{100 * m:.1f} %", f"{100 * s:.1f} %")
    console.print(table)
    ci = f" [{100 * curve.area_interval[0]:.1f}, {100 * curve.area_interval[1]:.1f}] (95 % bootstrap over images)" \
        if curve.area_interval else ""
    console.print(f"normalised area {100 * curve.area:.1f} %{ci}, {'higher' if curve.higher_is_better else 'lower'} "
                  f"is better: the mean {curve.ylabel} across the {curve.xlabel}. Plot written to {plot}")


OutOpt = typer.Option(None, "--out", help="Board directory (default: beside the spec, named after it).")


@board_app.command("run")
def board_run(spec: Path = typer.Argument(..., help="Leaderboard spec (.toml), e.g. leaderboards/demo.toml."),
              out: Path = OutOpt,
              executor: str = typer.Option("local", "--executor", help="local, ray (a local Ray instance) or "
                                           "ray://HOST:PORT."),
              device: str = typer.Option(None, "--device", help="Overrides the spec's device (auto, cpu, cuda[:n])."),
              workers: int = typer.Option(None, "--workers", help="Processes that run cells on a CPU, the cores "
                                          "shared out as threads (default: $ROBUST_WORKERS, else one per core, at "
                                          "most 4)."),
              render: bool = typer.Option(True, "--render/--no-render", help="Render the board after the run."),
              as_json: bool = JsonOpt) -> None:
    """Run every cell of the spec not yet in the store (an interrupted run resumes), then render the board. Outside
    a terminal (CI logs), each finished cell is one line on stderr."""
    import sys
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from robust.leaderboard import render as render_board
    from robust.runner import STORE_NAME, WAITING, Store, load_spec, plan_id, run_board

    board = load_spec(spec)
    target = out if out is not None else board.default_out
    lines, start = not as_json and not sys.stderr.isatty(), time.perf_counter()
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=console, disable=as_json, transient=True) as bar:
        task = bar.add_task(f"{board.title}: planning", total=None)

        said = {"waiting": ""}

        def progress(label: str, done: int, total: int) -> None:
            bar.update(task, description=label, completed=done, total=total)
            waiting = label.startswith(WAITING)  # said once (not every poll), and under --json too
            if (lines and not waiting) or (waiting and label != said["waiting"] and (lines or as_json)):
                typer.echo(f"[{done}/{total}, {time.perf_counter() - start:.0f} s] {label}", err=True)
            said["waiting"] = label if waiting else ""

        try:
            report = run_board(board, out, executor=executor, device=device, workers=workers, progress=progress)
        except KeyboardInterrupt:
            kept = 0
            if (target / STORE_NAME).is_file():
                with Store(target / STORE_NAME) as store:
                    kept = len((store.plan(plan_id(board)) or {}).keys() & store.done())
            typer.echo(f"interrupted: {kept} finished cells of this board are kept in {target / STORE_NAME}; run "
                       "the same command again to resume (finished cells are skipped).", err=True)
            raise typer.Exit(130) from None
    written = render_board(board, report.out) if render else {}
    result = {**report.to_dict(), "written": {k: str(v) for k, v in written.items()}}
    if as_json:
        _emit(result)
        return
    console.print(f"{report.ran} cells run ({report.failed} failed), {report.skipped} already done, "
                  f"{report.wall:.1f} s; store {report.out / 'results.sqlite'}")
    if written:
        console.print("board: " + ", ".join(str(p) for kind, p in written.items() if kind != "figures"))


@board_app.command("render")
def board_render(spec: Path = typer.Argument(..., help="Leaderboard spec (.toml)."), out: Path = OutOpt,
                 fmt: list[str] = typer.Option(None, "--format", help="A board format to write: {formats} (repeat for "
                                               "several; default: all)."),
                 as_json: bool = JsonOpt) -> None:
    """Render the board (its formats and figures) from the store of an earlier run, without computing or loading
    anything."""
    from robust import leaderboard

    written = leaderboard.render(spec, out, formats=tuple(fmt or leaderboard.FORMATS))
    if as_json:
        _emit({k: str(v) for k, v in written.items()})
        return
    for kind, path in written.items():
        console.print(f"{kind}: {path}")


@data_app.command("list")
def data_list(as_json: bool = JsonOpt) -> None:
    """The embedded datasets and the other names ``load_dataset`` accepts."""
    from robust.data import EMBEDDED

    other = {"torchvision:NAME": "any torchvision classification dataset (e.g. torchvision:CIFAR10)",
             "PATH": "an ImageFolder directory (one sub-directory per class; PATH/train and PATH/test if present)"}
    if as_json:
        _emit({"embedded": EMBEDDED, "other": other})
        return
    table = Table("name", "what", title="robust data")
    for name, what in {**EMBEDDED, **other}.items():
        table.add_row(name, what)
    console.print(table)


@data_app.command("show")
def data_show(name: str = typer.Argument(..., help="Dataset name, e.g. digits-m."),
              split: str = typer.Option("test", help="train or test."),
              n: int = typer.Option(64, "-n", help="How many samples to draw."),
              seed: int = typer.Option(0, help="Seed of the sample choice."),
              out: Path = typer.Option(None, "--out", help="PNG to write (default: NAME-SPLIT.png here)."),
              as_json: bool = JsonOpt) -> None:
    """Write a PNG grid of random samples of a dataset."""
    import torch
    from torchvision.utils import save_image

    from robust.data import load_dataset
    from robust.io import atomic_path, check_writable

    if n < 1:
        raise InputError(f"n={n!r} is not valid; expected a positive number of samples.")
    _check_options(seed)
    out = out or Path(f"{name.replace(':', '-').replace('/', '-')}-{split}.png")
    if out.suffix.lower() != ".png":
        raise InputError(f"--out {str(out)!r} is not valid; expected a .png path.")
    check_writable(out, "--out")
    with console.status(f"loading {name} (the first use of digits-m builds it, a few seconds)"):
        ds = load_dataset(name, split)
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(ds), generator=gen)[: min(n, len(ds))].tolist()
    items = [ds[i] for i in idx]
    x = torch.stack([im for im, _ in items])
    with atomic_path(out) as tmp:
        save_image(x, tmp, format="png", nrow=min(16, len(items)), padding=1)
    labels = [ds.class_names[y] for _, y in items]
    if as_json:
        _emit({"path": str(out), "n": len(items), "labels": labels, "seed": seed})
    else:
        console.print(f"wrote {out} ({len(items)} samples of {name}/{split})")


def _describe_methods() -> None:
    """Fill the help texts that name registered methods (``{attacks}``, ``{trained}``, ``{train_options}``,
    ``{evaluations}``), the placements and the board formats from the code that defines them: only when help is
    shown, since that imports torch."""
    import inspect

    from robust.attacks.base import PLACEMENTS
    from robust.leaderboard import FORMATS

    names = {"{formats}": ", ".join(FORMATS), "{placements}": ", ".join(PLACEMENTS),
             "{attacks}": registry.names("attack"),
             "{trained}": registry.names("attack", True), "{evaluations}": registry.names("evaluation"),
             "{train_options}": "; ".join(f"{name}: {', '.join(m.train_options())}"
                                          for name, m in sorted(registry.trained().items()))}

    def fill(text: str | None) -> str | None:
        for key, value in names.items():
            text = text.replace(key, value) if text else text
        return text

    for group in (attack_app, occlusion_app, board_app):
        for cmd in group.registered_commands:
            cmd.help = fill(cmd.help)
            for p in inspect.signature(cmd.callback).parameters.values():
                if isinstance(p.default, typer.models.ParameterInfo):
                    p.default.help = fill(p.default.help)


def _invoke(argv: list[str] | None) -> int:
    """Run the app on ``argv`` and return its exit code. Click's usage errors (a value of the wrong type, an
    unknown option, a missing argument) become one line on stderr and code 2, like bad input; ``--help``, a
    group's help when called bare, and every other exit keep their output and code. Typer vendors click: its
    exceptions are ``typer.TyperException`` (click's ``ClickException``, ``UsageError``, ``BadParameter``, ...),
    ``typer.Exit`` and ``typer.Abort``."""
    import sys

    words = sys.argv[1:] if argv is None else list(argv)
    if words[:1] in (["attack"], ["occlusion"], ["leaderboard"]) and (len(words) == 1 or {"--help", "-h"} & set(words)):
        _describe_methods()
    try:
        rv = app(args=argv, standalone_mode=False)
    except typer.TyperException as e:  # UsageError, BadParameter, NoSuchOption, MissingParameter, ...
        if type(e).__name__ == "NoArgsIsHelpError":  # a bare group: its help is printed already (stdout), code 2
            return 2
        typer.echo(f"error: {' '.join(e.format_message().split())}", err=True)
        return e.exit_code
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:  # end of input at a prompt; typer printed "Aborted!" and exited with 1
        typer.echo("error: aborted.", err=True)
        return 1
    except KeyboardInterrupt:  # one outside a command (typer turns those inside into code 130 quietly)
        typer.echo("error: interrupted.", err=True)
        return 130
    # without standalone mode an explicit exit comes back as its code; a command's own return value means 0
    return rv if isinstance(rv, int) and not isinstance(rv, bool) else 0


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``robust`` console script: run the commands on ``argv`` (default ``sys.argv[1:]``) and
    end the process with their exit code."""
    import sys

    # a model factory of the user's ('mymodel:small_cnn') is importable from the current folder, as under
    # `python -m robust` (appended, so a local folder never shadows an installed package)
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.append(str(Path.cwd()))
    from robust.device import quiet_known_warnings

    quiet_known_warnings()
    sys.exit(_invoke(argv))
