"""``robust presets``: the named attacks and evaluations that specs, suites and ``attack run`` accept."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Column, Table

from robust import registry
from robust.checks import InputError
from robust.cli.base import JsonOpt, _emit, _typer, console

presets_app = _typer("Presets: the named attacks and evaluations that specs, suites and `attack run` accept.")


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
    table = Table(*(Column(col, no_wrap=True) for col in ("name", "kind", "method")), "description",
                  title="robust presets")
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

    from robust.attacks.artifacts import shipped_for
    from robust.presets import list_presets, load_preset

    task = load_preset(name, presets)
    method = registry.get(task.method, task.kind)
    defaults = {k: p.default for k, p in method.params().items()
                if p.default is not inspect.Parameter.empty and k not in task.params and k != "seed"}
    run = f"robust {'attack' if task.kind == 'attack' else 'occlusion'} run {name} --model SPEC"
    shipped = sorted("+".join(e["victims"]) for e in shipped_for(task).values()) if method.trained else None
    doc = {"name": name, "kind": task.kind, "method": task.method, "description": task.description,
           "targeted": task.targeted if task.kind == "attack" else None, "params": task.params,
           "method_defaults": defaults, "train": task.train, "file": str(list_presets(presets)[name]),
           "command": run, "shipped_for": shipped}
    if as_json:
        _emit(doc)
        return
    table = Table(Column("field", no_wrap=True), "value", title=f"preset {name}", show_header=False)
    show = lambda d: ", ".join(f"{k}={v!r}" for k, v in d.items()) or "-"
    for label, value in (("kind", task.kind), ("method", f"{task.method}: {method.description}"),
                         ("description", task.description or "-"),
                         ("targeted", {True: "yes (TCS is its headline)", False: "no (ASR is its headline)",
                                       None: "-"}[doc["targeted"]]),
                         ("parameters it sets", show(task.params)), ("method defaults for the rest", show(defaults)),
                         ("training recipe", show(task.train)),
                         ("shipped for", "-" if shipped is None else ", ".join(shipped) or
                          "no model yet: a board trains its artifact on first use"),
                         ("file", doc["file"]), ("run it", run)):
        table.add_row(label, str(value))
    console.print(table)
