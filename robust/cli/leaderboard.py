"""``robust leaderboard``: run a spec's grid into a resumable SQLite store, render the board."""

from __future__ import annotations

from pathlib import Path

import typer

from robust.cli.base import JsonOpt, _emit, _typer, console

board_app = _typer("Leaderboards: run a spec's grid into a resumable SQLite store, render the board.")


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
