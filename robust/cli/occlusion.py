"""``robust occlusion``: occlusion robustness and patch selectivity curves over a dataset."""

from __future__ import annotations

import contextlib
from pathlib import Path

import typer
from rich.table import Table

from robust import registry
from robust.checks import InputError
from robust.cli.base import (
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
    _load_victim,
    _params,
    _typer,
    console,
)

occlusion_app = _typer("Occlusion robustness and patch selectivity: curves over a dataset.")


@occlusion_app.command("run")
def occlusion_run(evaluation: str = typer.Argument(..., help="{evaluations}."),
                  model: str = ModelOpt,
                  data: str = DataOpt,
                  split: str = SplitOpt,
                  samples: int = SamplesOpt,
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
    preset_seeds = preset_params.pop("seeds", 3)  # --seeds over the preset's
    seeds = seeds if seeds is not None else int(preset_seeds)
    _check_options(seed, samples=samples, seeds=seeds, grid=grid, batch_size=batch_size)
    if seed + seeds > SEED_LIMIT:  # the seeds used are seed, ..., seed + seeds - 1
        raise InputError(f"--seed {seed} is not valid with --seeds {seeds}; expected seed + seeds <= 2**64.")
    plot = plot or Path(f"{evaluation}-{model.replace(':', '-').replace('/', '-')}.png")
    if plot.suffix.lower() != ".png":
        raise InputError(f"--plot {str(plot)!r} is not valid; expected a .png path.")
    check_writable(plot, "--plot")  # now, not after the sweep
    params = _params(param, seeds=seeds, grid=grid)
    if grid is not None:
        params["grid"] = grid
    params = {**preset_params, **params, "seeds": seeds}
    try:  # every parameter checked now, before the model loads
        sweep = registry.get(method, "evaluation").make(**params)
    except InputError as e:
        named = str(e).startswith(f"evaluation {method!r}")  # the message names the evaluation already
        raise InputError(f"{'preset' if preset else 'evaluation'} {evaluation!r}: {e}" if preset or not named
                         else str(e)) from None
    params.pop("seeds")
    _check_split(split)
    net = _load_victim(model, data, split, device, input_size)
    ds = load_for(net, data, split)
    start = time.perf_counter()

    with console.status(f"{evaluation} on {model}") if not as_json else contextlib.nullcontext():
        curve = sweep(net, ds, samples=samples, seed=seed, batch_size=batch_size)
    seconds = round(time.perf_counter() - start, 2)
    save_curves([curve], plot, labels=[model], title=f"{evaluation} ({data}, n={curve.n}, {curve.seeds} seeds)")
    out = {"evaluation": evaluation, "method": method, "params": params, "model": model, "data": data, "split": split,
           "seconds": seconds, "plot": str(plot), **curve.to_dict()}
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
