"""``robust zoo``: list, train and check the model zoo."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Column, Table

from robust.cli.base import DeviceOpt, JsonOpt, _emit, _typer, console

zoo_app = _typer("The model zoo: list and train models.")


@zoo_app.command("list")
def zoo_list(as_json: bool = JsonOpt) -> None:
    """The zoo's models with their parameter counts and measured test accuracies."""
    from robust.models import zoo

    models = zoo.list_models()
    if as_json:
        _emit(models)
        return
    table = Table(Column("spec", no_wrap=True), Column("family", no_wrap=True),
                  *(Column(col, justify="right", no_wrap=True) for col in ("params", "test acc", "train")),
                  title="robust zoo (test accuracy: the 1,000 digits-m test images)")
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
                                          "ARCH-pm; masking: train for PatchCleanser, named ARCH-mask."),
              name: str = typer.Option(None, "--name", help="The zoo name (default ARCH, ARCH-pm or ARCH-mask), e.g. "
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
    table = Table(Column("zoo model", no_wrap=True),
                  *(Column(col, justify="right", no_wrap=True) for col in ("accuracy", "interval", "n", "manifest")),
                  title="zoo clean accuracy, measured now (95 % Wilson interval)")
    for r in rows:
        lo, hi = r["interval"]
        table.add_row(r["spec"].removeprefix("zoo:"), f"{r['accuracy']:.1%}", f"{lo:.1%}-{hi:.1%}", str(r["n"]),
                      f"{r['manifest']:.1%}" if r["manifest"] is not None else "-")
    console.print(table)
