"""Trained attack artifacts shipped with the package (gan-patch generators, universal patches for the zoo).

Each lives in ``robust/attacks/weights`` as ``NAME.safetensors`` + ``.json`` with an entry in ``manifest.json``
(victims, data, area, the command that made it, the TCS measured on the test split, and the sha256 of both files,
checked whenever one is used). They are named ``zoo:DATASET/MODEL/ATTACK-Npct`` wherever a checkpoint is accepted,
e.g. ``robust attack run gan-patch --model zoo:digits-m/resnet --checkpoint zoo:digits-m/resnet/gan-patch-8pct``.
Artifacts trained into robust's cache get the same two digests in a ``.sha256`` file beside them. Any artifact's
files are read as untrusted input (``read_config``, ``check_config``): a missing, truncated or foreign file, or a
configuration with missing or wrong-typed keys, is one ValueError naming the file; nothing in them is imported or
called.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from robust.checks import InputError
from robust.io import atomic_write_text, cache_dir, digest, publish_dir, sha256_file
from robust.models.zoo.manifest import read_manifest, update_manifest

if TYPE_CHECKING:
    from robust.presets import Task

WEIGHTS_DIR = Path(__file__).parent / "weights"
ARTIFACT_VERSION = 2  # bump when a change alters how trained artifacts are trained, so caches retrain (2: the
# universal patch draws its training windows with torch.rand)


def artifact_name(data: str, victims: list[str], attack: str, area: float, variant: str | None = None) -> str:
    """``DATASET/MODEL/ATTACK[-VARIANT]-Npct`` for zoo victims (models joined by ``+`` for an ensemble; a zoo model
    of another dataset keeps its zoo folder: ``imagenet-crops/imagenet-efficientnet-lite0/...``); a variant names a
    recipe other than the preset's (``critic2``: the same attack trained with another critic weight; ``n8``: for a
    target protocol)."""
    if variant is not None and not re.fullmatch(r"[a-z0-9][a-z0-9.-]*[a-z0-9]|[a-z0-9]", variant):
        raise InputError(f"variant {variant!r} is not valid; expected lower-case letters, digits, '.' and '-' (not "
                         "at either end).")
    models = []
    for spec in victims:
        folder, _, model = spec.removeprefix("zoo:").partition("/")
        if not spec.startswith("zoo:") or not model:
            raise InputError(f"victim {spec!r} is not a zoo model; expected zoo:DATASET/MODEL to publish.")
        models.append(model if folder == data else f"{folder}-{model}")
    return f"{data}/{'+'.join(models)}/{attack}{'-' + variant if variant else ''}-{round(area * 100):g}pct"


def artifact_path(name: str) -> Path:
    return WEIGHTS_DIR / (name.replace("/", "-") + ".safetensors")


def config_path(path: str | Path) -> Path:
    """The JSON configuration beside an artifact's weights."""
    path = Path(path)
    return path.with_suffix(path.suffix + ".json")


def read_config(path: Path, attack: str, key: str, value: str) -> dict:
    """The JSON beside ``path`` (``path`` + ``.json``), required to be a table whose ``key`` is ``value``."""
    meta = config_path(path)
    if not path.is_file() or not meta.is_file():
        raise InputError(f"{attack} checkpoint {str(path)!r} (and its .json) does not exist.")
    try:
        cfg = json.loads(meta.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{str(meta)!r} is not valid JSON ({e}); expected the configuration {attack} saved.") from None
    if not isinstance(cfg, dict) or cfg.get(key) != value:
        found = cfg.get(key) if isinstance(cfg, dict) else type(cfg).__name__
        raise InputError(f"{str(meta)!r} has {key} {found!r}; expected {value!r}.")
    return cfg


def check_config(cfg: dict, types: dict[str, tuple[type, ...]], path: Path) -> None:
    """Every key of ``types`` present in ``cfg`` with a value of one of its types (bool is not a number)."""
    for k, allowed in types.items():
        v = cfg.get(k)
        if k not in cfg or (isinstance(v, bool) and bool not in allowed) or not isinstance(v, allowed):
            raise InputError(f"the configuration of {str(path)!r} has {k}={v!r}; expected a value of type "
                             f"{' or '.join(t.__name__ for t in allowed)} (re-save it or train it again).")


def digests(path: str | Path) -> dict[str, str]:
    """sha256 of an artifact's weights and of its configuration."""
    return {"sha256": sha256_file(path), "config_sha256": sha256_file(config_path(path))}


def artifact_id(recorded: dict) -> str:
    """What identifies an artifact in a cell's key: its two digests (a replaced artifact is another artifact)."""
    return recorded["sha256"][:16] + recorded["config_sha256"][:16]


def _check(path: Path, recorded: dict, label: str, remedy: str) -> None:
    if not path.is_file() or not config_path(path).is_file():
        raise InputError(f"{label}: {str(path)!r} or its .json is missing; {remedy}.")
    if not isinstance(recorded, dict) or not {"sha256", "config_sha256"} <= set(recorded):
        raise InputError(f"{label} has no recorded sha256 to check {str(path)!r} against; {remedy}.")
    actual = digests(path)
    if bad := [k for k in ("sha256", "config_sha256") if actual[k] != recorded[k]]:
        raise InputError(f"{label}: {str(config_path(path) if bad[0] == 'config_sha256' else path)!r} does not match "
                         f"its recorded sha256 (truncated, damaged or replaced); {remedy}.")


def verify_shipped(name: str) -> Path:
    """The weights path of the shipped artifact ``name``, after checking both files against the manifest."""
    entry = list_artifacts().get(name)
    if entry is None:
        raise InputError(f"artifact {name!r} is not shipped; expected one of {sorted(list_artifacts())}.")
    path = artifact_path(name)
    _check(path, entry, f"shipped artifact zoo:{name}", "reinstall robust")
    return path


def record_cached(path: Path) -> None:
    """Write the digests of an artifact just trained into the cache, beside it."""
    atomic_write_text(Path(path).with_suffix(".sha256"), json.dumps(digests(path)) + "\n")


def verify_cached(path: Path) -> None:
    """Check a cached artifact against the digests written when it was trained. One cached before digests were
    recorded gets them now (trusted on first use, as it was before)."""
    path = Path(path)
    sums = path.with_suffix(".sha256")
    if not sums.is_file() and path.is_file() and config_path(path).is_file():
        record_cached(path)
    try:
        recorded = json.loads(sums.read_text())
    except (OSError, json.JSONDecodeError):
        recorded = None
    _check(path, recorded, "cached artifact", f"delete {str(path)!r} (and its .json and .sha256) to train it again")


def list_artifacts() -> dict[str, dict]:
    return read_manifest(WEIGHTS_DIR)


def resolve_checkpoint(text: str | Path) -> Path:
    """A checkpoint path, or ``zoo:NAME`` of a shipped artifact."""
    text = str(text)
    if not text.startswith("zoo:"):
        return Path(text)
    name = text.removeprefix("zoo:")
    known = list_artifacts()
    if name not in known:
        raise InputError(f"checkpoint {text!r} is not a shipped artifact; expected one of "
                         f"{sorted('zoo:' + k for k in known)} or a file path.")
    return verify_shipped(name)


def record_artifact(name: str, entry: dict) -> None:
    """Add the artifact ``name`` (already written at ``artifact_path(name)``) to the manifest with its digests;
    only from a source checkout."""
    publish_dir(WEIGHTS_DIR)
    update_manifest(WEIGHTS_DIR, name, {**entry, **digests(artifact_path(name))})


def artifact_victim(spec: str, model: object) -> str:
    """The model spec whose trained artifacts attack ``model`` (loaded from ``spec``): its own, or for a defended
    model its base's (``Backbone.undefended``): a generator or universal patch trained on the base and run against
    the defence is the non-adaptive transfer attack, and refining its patch through the defence the adaptive one."""
    base = getattr(model, "undefended", model)
    return spec if base is model else base.spec


def shipped_for(task: Task, seed: int = 0, victims: list[str] | None = None, data: str | None = None
                ) -> dict[str, dict]:
    """The shipped artifacts (name -> manifest entry) trained as ``task``'s attack would train them under ``seed``:
    its method, every option it fixes and its ``[train]`` recipe (each checked against its sha256 first); only those
    for ``victims`` and ``data`` when given. Empty for a task that is not a trained attack.

    >>> from robust.presets import load_preset
    >>> sorted(e["victims"][0] for e in shipped_for(load_preset("gan-patch-stream-12pct")).values())
    ['zoo:digits-m/resnet']
    """
    from robust.registry import get

    if task.kind != "attack" or not get(task.method, "attack").trained:
        return {}
    attack, found = task.build_attack(seed), {}
    for name, entry in list_artifacts().items():
        if entry.get("attack") != task.method or (victims is not None and entry.get("victims") != victims) or (
                data is not None and entry.get("data") != data):
            continue
        path = verify_shipped(name)
        if attack.matches(json.loads(config_path(path).read_text()), dict(task.train)):  # trained as this task would
            found[name] = entry
    return found


def artifact_for(task: Task, spec: str, weights: str, data: str, seed: int, train_data: Callable[[], str]
                 ) -> dict | None:
    """Which trained artifact a task's attack uses on model ``spec`` (whose weights hash to ``weights``) with
    ``data`` and ``seed`` (None for a task that is not a trained attack): a shipped one recorded for this model,
    dataset, area, placement and seed, trained as the task would train it (checked against its sha256 first), else
    the cache path of its configuration hash, which includes ``train_data()``: the hash of the images it trains on
    (through the model's preprocessing), asked only then. One answer for a board's cells and ``robust attack run``.
    """
    from robust.registry import get

    if task.kind != "attack" or not get(task.method, "attack").trained:
        return None
    if shipped := shipped_for(task, seed, victims=[spec], data=data):
        name, entry = next(iter(shipped.items()))
        return {"source": "shipped", "name": f"zoo:{name}", "path": str(artifact_path(name)), "id": artifact_id(entry)}
    ident = digest({"method": task.method, "params": task.params, "train": task.train, "weights": weights,
                    "data": data, "train_data": train_data(), "seed": seed, "version": ARTIFACT_VERSION})
    path = cache_dir("artifacts") / f"{task.method}-{ident}.safetensors"
    return {"source": "cache", "name": path.name, "path": str(path), "id": ident}
