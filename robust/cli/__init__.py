"""The ``robust`` command: one module per command group (attack, occlusion, leaderboard, presets, zoo, data) and the
top-level ``compare`` and ``info``, on the root app of ``robust.cli.base``. Bad input prints one line to stderr and
exits with code 2, never a traceback; a bug keeps its traceback."""

from __future__ import annotations

from pathlib import Path

import typer

from robust import registry

# importing a group's module registers its commands (compare and info on the root app)
from robust.cli import attack, compare, data, info, leaderboard, occlusion, presets, zoo  # noqa: F401
from robust.cli.base import app

app.add_typer(attack.attack_app, name="attack")
app.add_typer(presets.presets_app, name="presets")
app.add_typer(occlusion.occlusion_app, name="occlusion")
app.add_typer(leaderboard.board_app, name="leaderboard")
app.add_typer(zoo.zoo_app, name="zoo")
app.add_typer(data.data_app, name="data")


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

    for group in (attack.attack_app, occlusion.occlusion_app, leaderboard.board_app):
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
    """Entry point of the ``robust`` console script: run the commands on ``argv`` and end the process with their exit
    code.

    The current folder is appended to ``sys.path`` (as under ``python -m robust``), so that a model factory of the
    user's (``mymodel:small_cnn``) imports. Bad input and click's usage errors print one line to stderr and exit with
    code 2, never a traceback; ``--help`` and a bare group print their help; a bug keeps its traceback.

    Args:
        argv: the command line without the program's name (default ``sys.argv[1:]``).

    Raises:
        SystemExit: always, with the commands' exit code (0 on success, 2 on bad input).

    Examples:
        >>> from robust.cli import main
        >>> try:
        ...     main(["--version"])
        ... except SystemExit as done:
        ...     print("exit code", done.code)
        robust-suite ...
        exit code 0
        >>> try:
        ...     main(["presets", "show", "no-such-preset"])
        ... except SystemExit as done:
        ...     print("exit code", done.code)
        exit code 2
    """
    import sys

    # a model factory of the user's ('mymodel:small_cnn') is importable from the current folder, as under
    # `python -m robust` (appended, so a local folder never shadows an installed package)
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.append(str(Path.cwd()))
    from robust.device import quiet_known_warnings

    quiet_known_warnings()
    sys.exit(_invoke(argv))


__all__ = ["app", "main"]
