"""``robust data``: list the datasets and look at samples."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from robust.checks import InputError
from robust.cli.base import JsonOpt, _check_options, _emit, _typer, console

data_app = _typer("Datasets: list them and look at samples.")


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
