"""What a published board may say about the machine it ran on: no absolute path of the user's.

A board is made to be committed and published, and a spec names files (``file:/home/ana/models/mycnn.pt``,
``?checkpoint=``, ``?model_dir=``, an ``imagenet-val:`` or ImageFolder path) that say where a user keeps things.
What a render shows is redacted before it is escaped for Markdown or HTML (``public_spec``, and the failed cells'
errors and the spec's text), and every text it writes again (``redact``): a path the spec names is shown relative
to the spec's folder when it lies inside it, else as ``…/NAME`` (its file name only); then the spec's folder, the
working folder and the home folder are replaced wherever else they appear (an error message of a failed cell, say)
by ``.``, ``.`` and ``~``. The store keeps the real specs; only what is published is redacted.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qsl

from robust.runner.spec import Spec

#: query keys of model specs whose values are paths
PATH_KEYS = ("checkpoint", "model_dir")


def named_paths(spec: Spec) -> list[str]:
    """The paths the spec names, as written: ``file:`` bodies, ``checkpoint`` / ``model_dir`` options (also inside
    ``?arch=``) and a path-like dataset (an ``imagenet-val:`` or ImageFolder path).

    Args:
        spec: the spec.

    Returns:
        The paths (empty ones dropped) in the order found: the models' (the last model first), then the dataset's.

    Examples:
        >>> from robust.leaderboard.public import named_paths
        >>> from robust.runner import parse_spec
        >>> spec = parse_spec({"dataset": "digits-m", "evaluations": ["patch-drop"],
        ...                    "models": ["file:/home/ana/models/mycnn.pt?arch=mymodel:net&checkpoint=ck/best.pt"]})
        >>> named_paths(spec)
        ['/home/ana/models/mycnn.pt', 'ck/best.pt']
    """
    found = []
    texts = [m.spec for m in spec.models]
    while texts:
        text = texts.pop()
        head, _, query = text.partition("?")
        if head.startswith("file:"):
            found.append(head.removeprefix("file:"))
        for key, value in parse_qsl(query, keep_blank_values=True):
            if key in PATH_KEYS:
                found.append(value)
            elif key == "arch":
                texts.append(value)
    dataset = spec.dataset.removeprefix("imagenet-val:").partition("?")[0]
    if dataset != spec.dataset or os.sep in dataset or dataset.startswith("~"):
        found.append(dataset)
    return [p for p in found if p]


def shown(path: str, base: Path | None) -> str:
    """``path`` as a board shows it: as written when it is relative and stays inside ``base`` (the spec's folder), else
    relative to ``base`` when it lies inside it, else ``…/NAME`` (its file name only).

    Args:
        path: a path as the spec writes it (``~`` is expanded).
        base: the spec's folder (None: only relative paths are shown as written).

    Returns:
        The path to show.

    Examples:
        >>> from pathlib import Path
        >>> from robust.leaderboard.public import shown
        >>> shown("/home/ana/models/mycnn.pt", Path("/home/ana/boards")), shown("models/mycnn.pt", Path("/b"))
        ('…/mycnn.pt', 'models/mycnn.pt')
        >>> shown("/home/ana/boards/models/mycnn.pt", Path("/home/ana/boards"))
        'models/mycnn.pt'
    """
    p = Path(path)
    if not p.is_absolute() and not path.startswith("~") and ".." not in p.parts:
        return path
    if base is not None:
        try:
            return Path(os.path.expanduser(path)).resolve().relative_to(base.resolve()).as_posix()
        except ValueError:
            pass
    return f"…/{p.name}"


def redactor(spec: Spec) -> dict[str, str]:
    """What a board of ``spec`` must redact: {text to replace: what to show}, longest first.

    The spec's named paths that ``shown`` changes (by what it shows), then the spec's folder and the working folder
    (by ``.``) and the home folder (by ``~``).

    Args:
        spec: the real spec (its ``path`` gives the spec's folder).

    Returns:
        The mapping ``redact`` and ``public_spec`` take, its keys longest first.

    Examples:
        >>> from robust.leaderboard.public import redactor
        >>> from robust.runner import parse_spec
        >>> spec = parse_spec({"dataset": "digits-m", "evaluations": ["patch-drop"],
        ...                    "models": ["file:/home/ana/models/mycnn.pt"]}, "/home/ana/boards/spec.toml")
        >>> hidden = redactor(spec)
        >>> hidden["/home/ana/models/mycnn.pt"], hidden["/home/ana/boards"]
        ('…/mycnn.pt', '.')
    """
    base = spec.path.parent.resolve() if spec.path is not None else None
    mapping = {p: shown(p, base) for p in named_paths(spec)}
    mapping = {k: v for k, v in mapping.items() if k != v}
    for folder, name in ((base, "."), (Path.cwd().resolve(), "."), (Path.home(), "~")):
        if folder is not None and str(folder) not in ("/", "") and str(folder) not in mapping:
            mapping[str(folder)] = name
    return dict(sorted(mapping.items(), key=lambda kv: -len(kv[0])))


def public_spec(spec: Spec, mapping: dict[str, str]) -> Spec:
    """``spec`` as a board shows it: its dataset and model specs redacted (names, tasks and seeds unchanged).

    Only for rendering: the store's keys and the plan are the real spec's.

    Args:
        spec: the real spec.
        mapping: {text to replace: what to show} (``redactor``).

    Returns:
        A copy of ``spec`` with redacted ``dataset`` and model specs.

    Examples:
        >>> from robust.leaderboard.public import public_spec, redactor
        >>> from robust.runner import parse_spec
        >>> spec = parse_spec({"dataset": "digits-m", "evaluations": ["patch-drop"],
        ...                    "models": [{"spec": "file:/home/ana/models/mycnn.pt", "name": "mine"}]})
        >>> shown = public_spec(spec, redactor(spec))
        >>> shown.models[0].spec, shown.models[0].name, spec.models[0].spec
        ('file:…/mycnn.pt', 'mine', 'file:/home/ana/models/mycnn.pt')
    """
    import dataclasses

    models = tuple(dataclasses.replace(m, spec=redact(m.spec, mapping)) for m in spec.models)
    return dataclasses.replace(spec, dataset=redact(spec.dataset, mapping), models=models)


def redact(text: str, mapping: dict[str, str]) -> str:
    """``text`` with every key of ``mapping`` replaced by its value, in the mapping's order (``redactor`` gives it
    longest first, so a path is replaced before the folder it lies in).

    Args:
        text: what a board is about to show.
        mapping: {text to replace: what to show} (``redactor``).

    Returns:
        The redacted text.

    Examples:
        >>> from robust.leaderboard.public import redact
        >>> hidden = {"/home/ana/models/mycnn.pt": "…/mycnn.pt", "/home/ana": "~"}
        >>> redact("cannot open /home/ana/models/mycnn.pt (see /home/ana/log.txt)", hidden)
        'cannot open …/mycnn.pt (see ~/log.txt)'
    """
    for old, new in mapping.items():
        text = text.replace(old, new)
    return text


__all__ = ["PATH_KEYS", "named_paths", "public_spec", "redact", "redactor", "shown"]
