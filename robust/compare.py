"""Two result files compared cell by cell, for CI outside pytest (``robust compare BASELINE RESULTS``).

Each file is a board's ``results.json`` (its attack rows, worst cases and evaluation curves) or the JSON of
``robust attack run --json``. A cell is a (model, task) pair; its headline is TCS for a targeted attack, ASR for an
untargeted one and the curve's area for an evaluation, in the direction that is better for the model. Under
``rule="wilson"`` a cell regressed when its new 95 % interval lies wholly on the worse side of the baseline's
(beyond ``tolerance``); under ``rule="point"`` when its value moved to the worse side by more than ``tolerance``.
A baseline cell missing from the results counts against them. Files measured on other data are refused.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

RULES = ("wilson", "point")
FAILING = ("regression", "missing")


@dataclasses.dataclass(frozen=True)
class Change:
    """One cell of the comparison; ``verdict``: regression, improved, same, missing (in the baseline only) or new
    (in the results only)."""

    model: str
    task: str
    measure: str
    lower_is_better: bool
    baseline: float | None
    baseline_interval: list[float] | None
    value: float | None
    interval: list[float] | None
    verdict: str

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _number(v: object) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _interval(v: object) -> list[float] | None:
    if isinstance(v, list) and len(v) == 2 and all(_number(b) is not None for b in v):
        return [float(v[0]), float(v[1])]
    return None


def _attack_cell(row: dict) -> dict:
    measure = "tcs" if row.get("targeted") else "asr"
    return {"measure": measure, "value": _number(row.get(measure)),
            "interval": _interval(row.get(f"{measure}_interval")), "lower_is_better": True}


def read_results(path: str | os.PathLike) -> tuple[dict, dict[tuple[str, str], dict]]:
    """(what the file measured: dataset, images, seeds; its cells by (model, task)) of a board's results.json or
    an ``attack run --json`` output. Anything else is a ValueError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"results {str(path)!r} is not a file; expected a board's results.json or the output of "
                         "`robust attack run --json`.")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"results {str(path)!r} is not valid JSON ({e}).") from None
    if not isinstance(doc, dict):
        raise ValueError(f"results {str(path)!r} holds a JSON {type(doc).__name__}; expected an object.")
    cells: dict[tuple[str, str], dict] = {}
    if isinstance(doc.get("rows"), list):  # a board
        what = {"dataset": doc.get("dataset"), "images": doc.get("samples"), "seeds": doc.get("seeds")}
        for r in doc["rows"]:
            if isinstance(r, dict):
                cells[str(r.get("name")), str(r.get("attack"))] = _attack_cell(r)
        for w in doc.get("worst_case") or []:  # named with its attacks: a worst case over others is another cell
            if isinstance(w, dict):
                task = f"{w.get('name')} over {'+'.join(map(str, w.get('attacks') or []))}"
                for r in w.get("rows") or []:
                    if isinstance(r, dict):
                        cells[str(r.get("name")), task] = _attack_cell(r)
        for e in doc.get("evaluations") or []:
            if isinstance(e, dict):
                cells[str(e.get("name")), str(e.get("evaluation"))] = {
                    "measure": "area", "value": _number(e.get("area")), "interval": _interval(e.get("area_interval")),
                    "lower_is_better": bool(e.get("lower_is_better"))}
    elif isinstance(doc.get("attack"), str) and "n" in doc:  # robust attack run --json
        what = {"dataset": f"{doc.get('data')}/{doc.get('split')}", "images": doc.get("n"), "seeds": [doc.get("seed")]}
        params = {k: v for k, v in (doc.get("params") or {}).items() if k != "seed"}
        task = doc["attack"] + (json.dumps(params, sort_keys=True) if params else "")
        cells[str(doc.get("model")), task] = _attack_cell(doc)
    else:
        raise ValueError(f"results {str(path)!r} is neither a board's results.json (no 'rows') nor the output of "
                         "`robust attack run --json` (no 'attack' and 'n').")
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


def compare_results(baseline: str | os.PathLike, results: str | os.PathLike, *, rule: str = "wilson",
                    tolerance: float = 0.0) -> list[Change]:
    """Every cell of ``baseline`` and ``results`` with its verdict, baseline cells first in their order."""
    if rule not in RULES:
        raise ValueError(f"rule={rule!r} is not valid; expected one of {RULES}.")
    if _number(tolerance) is None or not 0 <= tolerance <= 1:
        raise ValueError(f"tolerance={tolerance!r} is not valid; expected a number in [0, 1].")
    base_what, base = read_results(baseline)
    new_what, new = read_results(results)
    for key in ("dataset", "images", "seeds"):
        if base_what[key] != new_what[key]:
            raise ValueError(f"{str(baseline)!r} was measured with {key}={base_what[key]!r} and {str(results)!r} with "
                             f"{key}={new_what[key]!r}; refusing to compare different questions.")
    out = []
    for (model, task), b in base.items():
        n = new.get((model, task))
        verdict = "missing" if n is None else _verdict(b, n, rule, tolerance)
        out.append(Change(model, task, b["measure"], b["lower_is_better"], b["value"], b["interval"],
                          n and n["value"], n and n["interval"], verdict))
    for (model, task), n in new.items():
        if (model, task) not in base:
            out.append(Change(model, task, n["measure"], n["lower_is_better"], None, None, n["value"], n["interval"],
                              "new"))
    return out


__all__ = ["FAILING", "RULES", "Change", "compare_results", "read_results"]
