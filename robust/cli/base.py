"""The root app and what every command group shares: the app class that turns bad input into one line, the console,
the common options, progress, and the parsing of KEY=VALUE and integer options."""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from robust.checks import InputError

if TYPE_CHECKING:
    from typing import Any

    from robust.models.backbone import Backbone


class _App(typer.Typer):
    """A Typer app whose commands turn bad input (``robust.checks.InputError``) and unwritable paths (``OSError``)
    into one line on stderr and exit code 2. Any other exception is a bug and keeps its traceback."""

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable], Callable]:
        register = super().command(*args, **kwargs)

        def decorator(fn: Callable) -> Callable:
            @functools.wraps(fn)
            def wrapped(*a: Any, **kw: Any) -> Any:
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


# markup off: model names, task names, descriptions and paths come from users and files, and '[exp1]' or '[/]'
# in them must print as written (robust's own output uses styles, never markup)
console = Console(markup=False)


DeviceOpt = typer.Option("auto", "--device", help="auto, cpu, mps or cuda[:n].")


SplitOpt = typer.Option("test", "--split", help="test (reported figures) or, on digits-m, val (training digits "
                        "held out of 'fit': for choosing budgets and recipes against models trained on fit; the "
                        "shipped zoo trained on them).")


ModelOpt = typer.Option(..., "--model", help="Model spec, e.g. zoo:digits-m/resnet.")
DataOpt = typer.Option("digits-m", "--data", help="Dataset name.")
SamplesOpt = typer.Option(500, "--samples", help="How many images of the split (from the start).")
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


def _load_victim(spec: str, data: str, split: str, device: str, input_size: str | None) -> Backbone:
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


def _params(texts: list[str], option: str = "--param", **options: object) -> dict[str, object]:
    """The KEY=VALUE ``texts`` of ``option`` as a dict. A key that has its own option, given as well (``options``, in
    the order to name them; None: not given), is refused: two values."""
    from robust.models.specs import parse_value

    params = {}
    for text in texts:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise InputError(f"{option} {text!r} is not valid; expected KEY=VALUE, e.g. steps=50.")
        params[key.replace("-", "_")] = parse_value(value)
    if twice := [k for k, v in options.items() if v is not None and k in params]:
        raise InputError(f"{option} {twice[0]}=... is not valid; expected the option --{twice[0].replace('_', '-')} "
                         "instead.")
    return params
