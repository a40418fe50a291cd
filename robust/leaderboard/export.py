"""The board as data: strict JSON (non-finite figures listed as undefined) and formula-safe CSV."""

from __future__ import annotations

import csv
import io
import json
import math

from robust.leaderboard.build import AUCS, REALISM_FIELDS
from robust.leaderboard.rows import Board

CSV_FIELDS = ("name", "model", "architecture", "dataset", "clean_acc", "attack", "threat_model", "area", "eps",
              "asr", "asr_low", "asr_high", "control_asr", "tcs", "tcs_low", "tcs_high", "robust_acc", "n",
              "clean_correct", "asr_all", "tcs_all", "skipped", "seeds", "artifact", "labels", "passes", "seconds",
              *REALISM_FIELDS)


def json_text(board: Board) -> str:
    """The board as JSON: its facts, the attack rows, the evaluation rows and the failed cells."""
    doc = {"title": board.spec.title, "dataset": board.spec.dataset, "samples": board.samples,
           "seeds": list(board.spec.seeds), "versions": board.versions,
           "rows": [r.as_dict() for r in board.attacks], "evaluations": [r.as_dict() for r in board.evaluations],
           "worst_case": [{"name": w.name, "area": w.area, "attacks": w.attacks, "agreement": w.agreement,
                           "rows": [r.as_dict() for r in w.rows]} for w in board.worst],
           "defences": [r.as_dict() for r in board.defences],
           "failed": [r.as_dict() for r in board.failed], "pending": board.pending, "models": board.cards,
           "reproduction": board.reproduction}
    return json.dumps(finite(doc), indent=1, allow_nan=False) + "\n"


def finite(doc: object, where: str = "", undefined: list[str] | None = None) -> object:
    """``doc`` with every non-finite float replaced by None, its JSON path listed under ``undefined`` at the top:
    strict JSON parsers refuse NaN and Infinity, and a board says a figure is undefined rather than printing it."""
    top = undefined is None
    undefined = [] if top else undefined
    if isinstance(doc, float) and not math.isfinite(doc):
        undefined.append(where or "$")
        out: object = None
    elif isinstance(doc, dict):
        out = {k: finite(v, f"{where}.{k}" if where else str(k), undefined) for k, v in doc.items()}
    elif isinstance(doc, (list, tuple)):
        out = [finite(v, f"{where}[{i}]", undefined) for i, v in enumerate(doc)]
    else:
        out = doc
    if top and undefined and isinstance(out, dict):
        out["undefined"] = [f"{p}: not a finite number" for p in undefined]
    return out


def _csv_cell(value: object) -> object:
    """A text cell that a spreadsheet would run as a formula (leading ``= + - @``, tab or carriage return) gets a
    leading quote (OWASP's rule for CSV injection); numbers stay numbers."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def csv_text(board: Board) -> str:
    """The attack rows, then the worst-case rows, as CSV (``CSV_FIELDS``; intervals as low and high columns, the
    realism measures as their means), formula-safe."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in [*board.attacks, *(r for w in board.worst for r in w.rows)]:
        asr, tcs = r.asr_interval or (None, None), r.tcs_interval or (None, None)
        flat = {**r.as_dict(), "asr_low": asr[0], "asr_high": asr[1], "tcs_low": tcs[0], "tcs_high": tcs[1]}
        if r.realism:
            flat.update({k: (m := r.realism[k]["mean"]) and round(m, 4) for k in REALISM_FIELDS if k not in AUCS},
                        **{k: (auc := r.realism.get(k)) and round(auc["auc"], 4) for k in AUCS})
        writer.writerow({k: _csv_cell(v) for k, v in flat.items()})
    return buf.getvalue()
