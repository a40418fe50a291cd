"""Two result files compared cell by cell, for CI outside pytest (``robust compare BASELINE RESULTS``).

Each file is a board's ``results.json`` (its attack rows, worst cases and evaluation curves) or the JSON of
``robust attack run --json``. A cell is a (model, task) pair; its headline is TCS for a targeted attack, ASR for an
untargeted one and the curve's area for an evaluation, in the direction that is better for the model. Under
``rule="wilson"`` a cell regressed when its new 95 % interval lies wholly on the worse side of the baseline's
(beyond ``tolerance``); under ``rule="point"`` when its value moved to the worse side by more than ``tolerance``.
A baseline cell missing from the results counts against them. Files measured on other data, files with no cell and
files with a part that cannot be read are refused.

Two versions of a model: ``pairs={"mycnn-v1": "mycnn-v2"}`` compares the baseline's cells of model ``mycnn-v1`` with
the results' cells of ``mycnn-v2`` (``robust compare --pair OLD=NEW``; ``--as NAME`` when each file holds one
model). A new cell whose model would make any gate pass for the wrong reason fails as the pytest gates do:
``too-few`` (fewer than ``min_correct`` clean-correct images) or ``chance`` (clean accuracy whose Wilson lower bound
is at most 1 / classes; ``allow_chance`` opts out).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

from robust.checks import InputError, check_choice, check_int, check_number

RULES = ("wilson", "point")
FAILING = ("regression", "missing", "too-few", "chance")


@dataclasses.dataclass(frozen=True)
class Change:
    """One cell of the comparison: a (model, task) pair's headline in the baseline and in the results, and its verdict.

    Attributes:
        model: the baseline's model (the results' model when the cell is only in the results).
        task: the attack or evaluation (a worst case is ``NAME over A+B``; an ``attack run --json`` output's task is
            its attack followed by its params as JSON, less the seed).
        measure: ``"tcs"`` (a targeted attack), ``"asr"`` (an untargeted one) or ``"area"`` (an evaluation's curve).
        lower_is_better: a smaller value means a more robust model (true for attacks).
        baseline: the baseline's value, in [0, 1], or None (not in the baseline, or a measure the run could not
            define).
        baseline_interval: the baseline's 95 % interval ``[low, high]``, or None.
        value: the results' value, or None (missing from the results, or undefined).
        interval: the results' 95 % interval, or None.
        verdict: ``regression``, ``improved``, ``same``, ``missing`` (in the baseline only), ``new`` (in the results
            only), ``too-few`` or ``chance`` (the new model is too weak to judge: see ``weak_model``); the failing
            ones are ``FAILING``.
        against: the results' model compared with ``model`` when the two differ (a pair), else None.
        why: why the new model is too weak, for ``too-few`` and ``chance``; else None.

    Examples:
        >>> from robust.compare import Change
        >>> change = Change("cnn", "lavan-12pct", "tcs", True, 0.2, [0.15, 0.26], 0.5, [0.43, 0.57], "regression")
        >>> change.to_dict()["verdict"], change.against
        ('regression', None)
    """

    model: str
    task: str
    measure: str
    lower_is_better: bool
    baseline: float | None
    baseline_interval: list[float] | None
    value: float | None
    interval: list[float] | None
    verdict: str
    against: str | None = None
    why: str | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class _Unreadable(ValueError):
    """A part of a results file that is not what a board or ``attack run --json`` writes."""


def weak_model(clean_correct: int, n: int, classes: int | None, min_correct: int = 30,
               allow_chance: bool = False) -> str | None:
    """Why a model's attack results prove nothing about its robustness, or None.

    Either fewer than ``min_correct`` of its ``n`` images are correct (ASR and TCS count only those), or its clean
    accuracy is not above chance (its Wilson 95 % lower bound at most 1 / ``classes``) unless ``allow_chance``. The
    pytest gates and ``robust compare`` both ask this.

    Args:
        clean_correct: the images the model classifies correctly.
        n: the images measured (no chance test when 0).
        classes: the model's class count (None or 0: no chance test).
        min_correct: the fewest clean-correct images to judge on.
        allow_chance: skip the chance test.

    Returns:
        One sentence saying why (it contains ``min_correct`` for too few images), or None when the model is strong
        enough to judge.

    Examples:
        >>> from robust.compare import weak_model
        >>> weak_model(50, 500, 10)
        'clean accuracy 0.100 [0.077, 0.129] is not above chance (0.100, 10 classes)'
        >>> weak_model(12, 20, 10)
        '12 clean-correct images of 20, fewer than min_correct=30: too few to gate on'
        >>> weak_model(180, 200, 10) is None, weak_model(50, 500, 10, allow_chance=True) is None
        (True, True)
    """
    from robust.metrics import wilson_interval

    if clean_correct < min_correct:
        return f"{clean_correct} clean-correct images of {n}, fewer than min_correct={min_correct}: too few to gate on"
    if allow_chance or not classes or n <= 0:
        return None
    low, high = wilson_interval(clean_correct, n)
    if low <= 1 / classes:
        return (f"clean accuracy {clean_correct / n:.3f} [{low:.3f}, {high:.3f}] is not above chance "
                f"({1 / classes:.3f}, {classes} classes)")
    return None


def _number(v: object) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _value(v: object, where: str) -> float | None:
    """A headline: a finite number, or null (a measure the run could not define, e.g. TCS with no image
    correct)."""
    if v is None:
        return None
    if (x := _number(v)) is None:
        raise _Unreadable(f"{where} is {_short(v)}; expected a finite number or null")
    return x


def _interval(v: object, where: str) -> list[float] | None:
    if v is None:
        return None
    if isinstance(v, list) and len(v) == 2 and all(_number(b) is not None for b in v) and v[0] <= v[1]:
        return [float(v[0]), float(v[1])]
    raise _Unreadable(f"{where} is {_short(v)}; expected [low, high] (finite, low <= high) or null")


def _text(v: object, where: str) -> str:
    if not isinstance(v, str) or not v:
        raise _Unreadable(f"{where} is {_short(v)}; expected a non-empty string")
    return v


def _short(v: object) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _attack_cell(row: object, where: str) -> tuple[str, dict]:
    """(model name, cell) of an attack row (``where`` names it in errors)."""
    if not isinstance(row, dict):
        raise _Unreadable(f"{where} is {_short(row)}; expected an object")
    if not isinstance(row.get("targeted"), bool):
        raise _Unreadable(f"{where}.targeted is {_short(row.get('targeted'))}; expected true or false")
    measure = "tcs" if row["targeted"] else "asr"
    counts = {k: _count(row.get(k), f"{where}.{k}") for k in ("n", "clean_correct", "classes")}
    return _text(row.get("name", row.get("model")), f"{where}.name"), {
        "measure": measure, "value": _value(row.get(measure), f"{where}.{measure}"),
        "interval": _interval(row.get(f"{measure}_interval"), f"{where}.{measure}_interval"),
        "lower_is_better": True, **counts}


def _count(v: object, where: str) -> int | None:
    """A count a row may carry (older files lack ``classes``): a non-negative integer, or None when absent."""
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise _Unreadable(f"{where} is {_short(v)}; expected a non-negative integer or null")
    return v


def _list(doc: dict, key: str) -> list:
    v = doc.get(key)
    if v is None:
        return []
    if not isinstance(v, list):
        raise _Unreadable(f"{key} is {_short(v)}; expected a list")
    return v


def _board_cells(doc: dict) -> dict[tuple[str, str], dict]:
    cells: dict[tuple[str, str], dict] = {}

    def add(model: str, task: str, cell: dict, where: str) -> None:
        if (model, task) in cells:
            raise _Unreadable(f"{where} repeats the cell ({model!r}, {task!r})")
        cells[model, task] = cell

    for i, r in enumerate(_list(doc, "rows")):
        model, cell = _attack_cell(r, f"rows[{i}]")
        add(model, _text(r.get("attack"), f"rows[{i}].attack"), cell, f"rows[{i}]")
    for i, w in enumerate(_list(doc, "worst_case")):  # named with its attacks: a worst case over others is another
        if not isinstance(w, dict):
            raise _Unreadable(f"worst_case[{i}] is {_short(w)}; expected an object")
        attacks = [_text(a, f"worst_case[{i}].attacks[{j}]") for j, a in enumerate(_list(w, "attacks"))]
        task = f"{_text(w.get('name'), f'worst_case[{i}].name')} over {'+'.join(attacks)}"
        for j, r in enumerate(_list(w, "rows")):
            model, cell = _attack_cell(r, f"worst_case[{i}].rows[{j}]")
            add(model, task, cell, f"worst_case[{i}].rows[{j}]")
    for i, e in enumerate(_list(doc, "evaluations")):
        where = f"evaluations[{i}]"
        if not isinstance(e, dict):
            raise _Unreadable(f"{where} is {_short(e)}; expected an object")
        if not isinstance(e.get("lower_is_better"), bool):
            raise _Unreadable(f"{where}.lower_is_better is {_short(e.get('lower_is_better'))}; expected true or "
                              "false")
        add(_text(e.get("name"), f"{where}.name"), _text(e.get("evaluation"), f"{where}.evaluation"), {
            "measure": "area", "value": _value(e.get("area"), f"{where}.area"),
            "interval": _interval(e.get("area_interval"), f"{where}.area_interval"),
            "lower_is_better": e["lower_is_better"]}, where)
    return cells


def read_results(path: str | os.PathLike) -> tuple[dict, dict[tuple[str, str], dict]]:
    """What a results file measured, and its cells by (model, task).

    The file is a board's ``results.json`` (its attack ``rows``, ``worst_case`` rows and ``evaluations``) or the
    output of ``robust attack run --json``. An attack row carries ``name`` (or ``model``), ``attack``, ``targeted``,
    its headline (``tcs`` or ``asr``) and its ``_interval``, and may carry ``n``, ``clean_correct`` and ``classes``; an
    evaluation carries ``name``, ``evaluation``, ``area``, ``area_interval`` and ``lower_is_better``. A headline may
    be null (a measure the run could not define).

    Args:
        path: the JSON file.

    Returns:
        ``(what, cells)``: ``what`` holds ``dataset``, ``images`` and ``seeds``; each cell holds ``measure``,
        ``value``, ``interval`` and ``lower_is_better`` (an attack's also ``n``, ``clean_correct``, ``classes``).

    Raises:
        InputError: (a ``ValueError``) a missing file, invalid JSON, a file of neither kind, a part that cannot be
            read (named), a repeated cell, or a file with no cell at all.

    Examples:
        >>> import json
        >>> from robust.compare import read_results
        >>> row = {"name": "cnn", "attack": "lavan-12pct", "targeted": True, "tcs": 0.2, "tcs_interval": [0.15, 0.26],
        ...        "n": 200, "clean_correct": 180, "classes": 10}
        >>> _ = open("results.json", "w").write(json.dumps(
        ...     {"dataset": "digits-m/test", "samples": 200, "seeds": [0], "rows": [row]}))
        >>> what, cells = read_results("results.json")
        >>> what
        {'dataset': 'digits-m/test', 'images': 200, 'seeds': [0]}
        >>> cells["cnn", "lavan-12pct"]["measure"], cells["cnn", "lavan-12pct"]["value"]
        ('tcs', 0.2)
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"results {str(path)!r} is not a file; expected a board's results.json or the output of "
                         "`robust attack run --json`.")
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        reason = "nested too deeply" if isinstance(e, RecursionError) else str(e)
        raise InputError(f"results {str(path)!r} is not valid JSON ({reason}).") from None
    if not isinstance(doc, dict):
        raise InputError(f"results {str(path)!r} holds a JSON {type(doc).__name__}; expected an object.")
    try:
        if "rows" in doc:  # a board
            what = {"dataset": doc.get("dataset"), "images": doc.get("samples"), "seeds": doc.get("seeds")}
            cells = _board_cells(doc)
        elif isinstance(doc.get("attack"), str) and "n" in doc:  # robust attack run --json
            what = {"dataset": f"{doc.get('data')}/{doc.get('split')}", "images": doc.get("n"),
                    "seeds": [doc.get("seed")]}
            params = doc.get("params") or {}
            if not isinstance(params, dict):
                raise _Unreadable(f"params is {_short(params)}; expected an object")
            params = {k: v for k, v in params.items() if k != "seed"}
            model, cell = _attack_cell(doc, "the run")
            cells = {(model, doc["attack"] + (json.dumps(params, sort_keys=True) if params else "")): cell}
        else:
            raise InputError(f"results {str(path)!r} is neither a board's results.json (no 'rows') nor the output "
                             "of `robust attack run --json` (no 'attack' and 'n').")
    except _Unreadable as e:
        raise InputError(f"results {str(path)!r}: {e}; refusing to compare a file that cannot be read whole."
                         ) from None
    if not cells:
        raise InputError(f"results {str(path)!r} holds no cell (no attack row, worst case or evaluation); a "
                         "comparison of nothing proves nothing.")
    return what, cells


def _verdict(base: dict, new: dict, rule: str, tolerance: float) -> str:
    sign = 1.0 if base["lower_is_better"] else -1.0  # compare as "higher is worse"
    b, v = base["value"], new["value"]
    if b is None or v is None:
        return "same" if b == v else "regression" if b is not None else "improved"
    bi, vi = base["interval"], new["interval"]
    if rule == "wilson" and bi and vi:
        worse = min(sign * vi[0], sign * vi[1]) > max(sign * bi[0], sign * bi[1]) + tolerance
        better = max(sign * vi[0], sign * vi[1]) < min(sign * bi[0], sign * bi[1]) - tolerance
    else:
        worse, better = sign * v > sign * b + tolerance, sign * v < sign * b - tolerance
    return "regression" if worse else "improved" if better else "same"


def _pairs(pairs: dict[str, str] | None, base: dict, new: dict, baseline: object, results: object) -> dict[str, str]:
    """The results' model for each baseline model: itself, or its pair; every pair's names exist."""
    pairs = dict(pairs or {})
    base_models, new_models = sorted({m for m, _ in base}), sorted({m for m, _ in new})
    for old, now in pairs.items():
        for name, models, where in ((old, base_models, baseline), (now, new_models, results)):
            if name not in models:
                raise InputError(f"pair {old}={now}: model {name!r} is not in {str(where)!r}; expected one of "
                                 f"{models}.")
    return pairs


def compare_results(baseline: str | os.PathLike, results: str | os.PathLike, *, rule: str = "wilson",
                    tolerance: float = 0.0, pairs: dict[str, str] | None = None, min_correct: int = 30,
                    allow_chance: bool = False) -> list[Change]:
    """Every cell of ``baseline`` and ``results`` with its verdict, baseline cells first in their order, then the
    results' new cells.

    Both files are read by ``read_results`` and must have measured the same dataset, images and seeds. A cell's
    headline regressed under ``rule="wilson"`` when its new 95 % interval lies wholly on the worse side of the
    baseline's (beyond ``tolerance``; cells without intervals fall back to the point rule), under ``rule="point"``
    when its value moved to the worse side by more than ``tolerance``. A new attack cell whose model is too weak to
    judge (``weak_model``) is ``too-few`` or ``chance`` whatever its value.

    Args:
        baseline: the baseline's results file.
        results: the new results file.
        rule: ``"wilson"`` or ``"point"``.
        tolerance: how far to the worse side still counts as ``same``, in [0, 1].
        pairs: {baseline model: results model} to compare two models (two versions of one) cell by cell.
        min_correct: the fewest clean-correct images a new attack cell's model needs.
        allow_chance: do not fail a model whose clean accuracy is at chance.

    Returns:
        One ``Change`` per cell; the failing verdicts are those in ``FAILING``.

    Raises:
        InputError: a bad ``rule``, ``tolerance`` or ``min_correct``, a file ``read_results`` refuses, files
            measured on other data, or a pair naming a model its file lacks.

    Examples:
        >>> import json
        >>> from robust.compare import compare_results
        >>> def board(name, tcs, low, high):
        ...     row = {"name": name, "attack": "lavan-12pct", "targeted": True, "tcs": tcs, "tcs_interval": [low, high],
        ...            "n": 200, "clean_correct": 180, "classes": 10}
        ...     return json.dumps({"dataset": "digits-m/test", "samples": 200, "seeds": [0], "rows": [row]})
        >>> _ = open("v1.json", "w").write(board("mycnn-v1", 0.20, 0.15, 0.26))
        >>> _ = open("v2.json", "w").write(board("mycnn-v2", 0.50, 0.43, 0.57))
        >>> [(c.model, c.against, c.verdict) for c in compare_results("v1.json", "v2.json",
        ...                                                            pairs={"mycnn-v1": "mycnn-v2"})]
        [('mycnn-v1', 'mycnn-v2', 'regression')]
        >>> [c.verdict for c in compare_results("v1.json", "v2.json")]
        ['missing', 'new']
    """
    check_choice(rule, RULES, "rule")
    check_number(tolerance, "tolerance", low=0, high=1)
    check_int(min_correct, "min_correct", low=0, expected="a non-negative integer")
    base_what, base = read_results(baseline)
    new_what, new = read_results(results)
    for key in ("dataset", "images", "seeds"):
        if base_what[key] != new_what[key]:
            raise InputError(f"{str(baseline)!r} was measured with {key}={base_what[key]!r} and {str(results)!r} with "
                             f"{key}={new_what[key]!r}; refusing to compare different questions.")
    paired = _pairs(pairs, base, new, baseline, results)
    out, seen = [], set()
    for (model, task), b in base.items():
        other = paired.get(model, model)
        n = new.get((other, task))
        seen.add((other, task))
        verdict, why = ("missing", None) if n is None else _judged(b, n, rule, tolerance, min_correct, allow_chance)
        out.append(Change(model, task, b["measure"], b["lower_is_better"], b["value"], b["interval"],
                          n and n["value"], n and n["interval"], verdict, other if other != model else None, why))
    for (model, task), n in new.items():
        if (model, task) not in seen:
            verdict, why = _judged(None, n, rule, tolerance, min_correct, allow_chance)
            out.append(Change(model, task, n["measure"], n["lower_is_better"], None, None, n["value"], n["interval"],
                              verdict, None, why))
    return out


def _judged(base: dict | None, new: dict, rule: str, tolerance: float, min_correct: int,
            allow_chance: bool) -> tuple[str, str | None]:
    """(verdict, why) of a new cell: too weak a model first, then the comparison (``new`` without a baseline)."""
    if new["measure"] != "area" and new.get("clean_correct") is not None:
        why = weak_model(new["clean_correct"], new.get("n") or 0, new.get("classes"), min_correct, allow_chance)
        if why is not None:
            return ("too-few" if "min_correct" in why else "chance"), why
    return ("new", None) if base is None else (_verdict(base, new, rule, tolerance), None)


__all__ = ["FAILING", "RULES", "Change", "compare_results", "read_results", "weak_model"]
