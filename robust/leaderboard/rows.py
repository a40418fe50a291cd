"""A board's typed rows: one per model and attack (seeds merged by summing counts), one per model and evaluation
(curves averaged over seeds), one per failed cell, the worst case over attacks, and the ``Board`` every writer takes;
ranks that only separate what differs.

JSON rows extend RobustBench's model-card fields (``name``, ``architecture``, ``dataset``, ``clean_acc``) with
``attack``, ``area``, ``asr``, ``tcs``, their intervals and ``n``. Which way a figure is better is the method's
own (``Counts.headline`` for attacks, ``registry`` for evaluations), never a list here.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

from robust.presets import Task
from robust.runner.spec import Spec

_INTERNAL = {"internal": True}  # a field the writers use that the JSON and CSV rows leave out


class _Row:
    def as_dict(self) -> dict:
        """The row as JSON and CSV write it."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if not f.metadata.get("internal")}


class _Scored(_Row):
    @property
    def score(self) -> float | None:
        """The headline figure (the field named by ``headline``) that the board ranks by."""
        return getattr(self, self.headline)


@dataclasses.dataclass(frozen=True)
class AttackRow(_Scored):
    """One model under one attack, seeds merged; ``headline``: ``tcs`` or ``asr`` (``Counts.headline``)."""

    name: str
    model: str
    architecture: str | None
    dataset: str
    clean_acc: float | None
    attack: str
    threat_model: str
    targeted: bool
    area: float | None
    eps: float | None
    asr: float | None
    asr_interval: list[float] | None
    tcs: float | None
    tcs_interval: list[float] | None
    robust_acc: float | None
    n: int
    clean_correct: int  # |C|: the denominator of ASR and (less the skipped ones in it) of TCS
    asr_all: float | None  # ASR and TCS over all n (the protocol reports both)
    tcs_all: float | None
    skipped: int  # images whose target was their own class: left out of TCS only
    control_asr: float | None  # the highest ASR of the board's controls at this patch area on this model
    seeds: list[int]
    artifact: str | None
    seconds: float
    headline: str = dataclasses.field(metadata=_INTERNAL)
    realism: dict | None = None  # a patch attack's realism summary (robust.realism), seeds pooled
    labels: str = "ground truth"  # or "decision": the model's own clean top-1 (robust.data.label_source)
    passes: float | None = None  # victim passes (forward + backward) the attack spent per image (robust.attacks.cost)
    classes: int | None = None  # the model's class count: chance accuracy is 1 / classes (robust compare's guard)
    params: int | None = dataclasses.field(default=None, metadata=_INTERNAL)  # the model's, for its card

    task = property(lambda self: self.attack)
    lower_is_better: ClassVar[bool] = True  # a lower ASR or TCS is a more robust model

    def rank_key(self) -> tuple:
        """Most robust first: the lowest headline rate, then the highest clean accuracy."""
        return (1.0 if self.score is None else self.score, -(self.clean_acc or 0.0), self.name)

    @property
    def interval(self) -> list[float] | None:
        """The Wilson interval of the headline rate."""
        return getattr(self, f"{self.headline}_interval")


#: what a rank from ``ranks`` does and does not say, under every ranked table
RANK_CAVEAT = ("Rows that no row separates share a rank, but two rows whose intervals overlap can still have "
               "different ranks (a third row may lie beyond one of them and not the other); only intervals that do "
               "not overlap tell two rows apart.")


def ranks(rows: list) -> list[int]:
    """Ranks that only separate what differs: a row's rank is 1 + the number of rows whose interval lies wholly on
    the better side of its own (more robust beyond doubt: below it where lower is better, above it otherwise), so
    rows with overlapping intervals can share a rank. Rows without an interval are ranked by position."""
    intervals = [o.interval for o in rows if o.interval]
    out = []
    for i, r in enumerate(rows):
        if (iv := r.interval) is None:
            out.append(i + 1)
        else:
            out.append(1 + sum(1 for lo, hi in intervals if (hi < iv[0] if r.lower_is_better else lo > iv[1])))
    return out


@dataclasses.dataclass(frozen=True)
class EvaluationRow(_Scored):
    """One model under one evaluation: its curve (mean over seeds) and area; ``lower_is_better`` is the
    registered evaluation's direction."""

    name: str
    model: str
    dataset: str
    evaluation: str
    method: str
    description: str
    x: list[float]
    mean: list[float]
    std: list[float]
    area: float
    n: int
    curve_seeds: int
    xlabel: str
    ylabel: str
    lower_is_better: bool
    seeds: list[int]
    area_interval: list[float] | None  # bootstrap over images (the mean of the cells' bounds over seeds)
    labels: str = "ground truth"  # or "decision" (as AttackRow's)
    headline: ClassVar[str] = "area"
    interval = property(lambda self: self.area_interval)

    task = property(lambda self: self.evaluation)
    better = property(lambda self: "lower" if self.lower_is_better else "higher")

    def rank_key(self) -> float:
        """Most robust first, in the evaluation's own direction."""
        return self.score if self.lower_is_better else -self.score


@dataclasses.dataclass(frozen=True)
class FailedRow(_Row):
    """The cells of one model that failed with one error."""

    name: str
    error: str
    tasks: str


@dataclasses.dataclass(frozen=True)
class WorstCase:
    """The worst case over a board's targeted patch attacks at one area (RobustBench's rule: report the strongest
    attack): per image, a hit if any of ``attacks`` hit it, and a success if any succeeded. ``rows`` (one per
    model, most robust first, ``attack`` named ``name``) rank the board; ``agreement`` is, per attack, the
    Spearman correlation between its ranking of the models and the worst case's (None with under 3 models)."""

    area: float
    attacks: list[str]
    rows: list[AttackRow]
    agreement: dict[str, float | None]
    bound: float = 1.0  # the attacks' L-inf bound on the change to the window (1: free patches)

    @property
    def name(self) -> str:
        return f"worst-case-{100 * self.area:g}pct" + ("" if self.bound >= 1 else f"-bound{255 * self.bound:.3g}")

    @property
    def threat_model(self) -> str:
        bounded = "" if self.bound >= 1 else f", bound {255 * self.bound:.3g}/255"
        return f"worst case at {100 * self.area:g} %{bounded}"

    @property
    def description(self) -> str:
        bounded = "" if self.bound >= 1 else f", patches within {255 * self.bound:.3g}/255 of the window,"
        return (f"Worst case at {100 * self.area:g} % area{bounded} over {', '.join(self.attacks)}: an image counts as "
                "hit if any of them hit its target (the same target for every attack), as a success if any changed "
                "its class.")


@dataclasses.dataclass(frozen=True)
class Board:
    """Everything a writer needs: the spec (title, dataset, seeds, the order of models and tasks), the number of
    images, the versions that computed the cells, the rows, the figures written (``heatmap`` and one per
    evaluation, by task name) and the gallery ((caption, path) per attack cell)."""

    spec: Spec
    samples: int
    versions: dict
    attacks: list[AttackRow]
    evaluations: list[EvaluationRow]
    failed: list[FailedRow]
    worst: list[WorstCase] = dataclasses.field(default_factory=list)
    figures: dict[str, Path] = dataclasses.field(default_factory=dict)
    gallery: list[tuple[str, Path]] = dataclasses.field(default_factory=list)
    pending: list[str] = dataclasses.field(default_factory=list)  # "model / task" of cells not finished yet
    cards: list[dict] = dataclasses.field(default_factory=list)  # cards.model_cards
    reproduction: dict = dataclasses.field(default_factory=dict)  # cards.reproduction
    defences: list = dataclasses.field(default_factory=list)  # defences.DefenceRow, one per defended model

    def tables(self, kind: str | None = None) -> list[tuple[Task, list]]:
        """(task, its rows, most robust first) for each task (of ``kind``) that has rows, in spec order."""
        out = []
        for t in self.spec.tasks:
            if kind not in (None, t.kind):
                continue
            rows = self.attacks if t.kind == "attack" else self.evaluations
            if group := sorted((r for r in rows if r.task == t.name), key=lambda r: r.rank_key()):
                out.append((t, group))
        return out


def pct(v: float | None) -> str:
    """A rate as a percentage with one decimal ("–" when undefined)."""
    return "–" if v is None else f"{100 * v:.1f}"


def ci(iv: list | None) -> str:
    """An interval as "[lo, hi]" in percent ("" when undefined)."""
    return "" if not iv else f"[{100 * iv[0]:.1f}, {100 * iv[1]:.1f}]"
