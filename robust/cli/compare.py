"""``robust compare``: this version of a model (or board) against a recorded baseline, in CI."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from robust.checks import InputError
from robust.cli.base import JsonOpt, _emit, app, console

if TYPE_CHECKING:
    from robust.compare import Change


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
        if as_json:
            _emit({"recorded": str(baseline), "cells": len(cells), "failed": 0})
        else:
            typer.echo(f"baseline {str(baseline)!r} did not exist: recorded {str(results)!r} ({len(cells)} cells) as "
                       "it; commit it so that later runs compare with it.")
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

        def measure(c: Change) -> str:
            return f"{c.measure} ({'lower' if c.lower_is_better else 'higher'} is better)"

        def model(c: Change) -> str:
            return label if label is not None else f"{c.model} -> {c.against}" if c.against else c.model

        def verdict(c: Change) -> str:
            return f"{c.verdict} ({c.why})" if c.why else c.verdict

        if console.is_terminal:
            table = Table("model", "task", "measure", "baseline", "now", "verdict",
                          title=f"{results} against {baseline} (rule {rule}, tolerance {tolerance:g})")
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
