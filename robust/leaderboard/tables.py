"""Board rows from the store, typed: one per model and attack (seeds merged by summing counts), one per model and
evaluation (curves averaged over seeds), one per failed cell; the ``Board`` that every writer takes; and the
board's Markdown, JSON and CSV forms.

JSON rows extend RobustBench's model-card fields (``name``, ``architecture``, ``dataset``, ``clean_acc``) with
``attack``, ``area``, ``asr``, ``tcs``, their intervals and ``n``. Which way a figure is better is the method's
own (``Counts.headline`` for attacks, ``registry`` for evaluations), never a list here.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import torch

from robust import registry
from robust.checks import InputError
from robust.leaderboard import cards
from robust.metrics import MEANINGS, Counts
from robust.presets import Task
from robust.realism import pool
from robust.runner.spec import Spec

_COUNT_FIELDS = tuple(f.name for f in dataclasses.fields(Counts))
REALISM_FIELDS = ("ssim", "psnr", "tv", "hist", "detector_auc", "heldout_auc")  # the CSV's realism columns (means)
_AUCS = ("detector_auc", "heldout_auc")
CSV_FIELDS = ("name", "model", "architecture", "dataset", "clean_acc", "attack", "threat_model", "area", "eps",
              "asr", "asr_low", "asr_high", "control_asr", "tcs", "tcs_low", "tcs_high", "robust_acc", "n",
              "clean_correct", "asr_all", "tcs_all", "skipped", "seeds", "artifact", "labels", "passes", "seconds",
              *REALISM_FIELDS)
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
MEASURES_NOTE = (f"ASR = {MEANINGS['asr']}; TCS = {MEANINGS['tcs']} (each image's target drawn from the seed and "
                 "the image, uniformly over the other classes, unless an attack's description says otherwise); "
                 "targeted attacks rank by TCS, untargeted ones by ASR, lower is more robust.")
RANK_CAVEAT = ("Rows that no row separates share a rank, but two rows whose intervals overlap can still have "
               "different ranks (a third row may lie beyond one of them and not the other); only intervals that do "
               "not overlap tell two rows apart.")


def ranks(rows: list) -> list[int]:
    """Ranks that only separate what differs: a row's rank is 1 + the number of rows whose interval lies wholly on
    the better side of its own (more robust beyond doubt: below it where lower is better, above it otherwise), so
    rows with overlapping intervals can share a rank. Rows without an interval are ranked by position."""
    out = []
    for i, r in enumerate(rows):
        iv = r.interval
        if iv is None:
            out.append(i + 1)
            continue
        lower = r.lower_is_better
        beyond = [o.interval for o in rows if o.interval]
        out.append(1 + sum(1 for lo, hi in beyond if (hi < iv[0] if lower else lo > iv[1])))
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


def _groups(spec: Spec, cells: list[dict], kind: str):
    """(model entry, task, finished cells of every seed) for each model and task of ``kind``, in spec order."""
    merged: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for c in cells:
        if c["kind"] == kind and c["status"] == "done":
            merged[c["model"], c["task"]].append(c)
    for m in spec.models:
        for t in spec.tasks:
            if t.kind == kind and merged.get((m.name, t.name)):
                yield m, t, merged[m.name, t.name]


def attack_rows(spec: Spec, cells: list[dict]) -> list[AttackRow]:
    """One row per model and attack, in spec order, seeds merged. A patch attack's row carries the highest ASR of
    the board's controls (``Method.control``) at its area on its model: untargeted success that a patch of noise
    or of another image reaches too is occlusion, not attack."""
    merged = [(m, t, group, registry.get(t.method, "attack").control,
               sum((Counts(**{f: g["result"][f] for f in _COUNT_FIELDS}) for g in group), Counts()))
              for m, t, group in _groups(spec, cells, "attack")]
    controls: dict[tuple[str, float | None], float] = {}
    for m, t, _, control, counts in merged:
        if control and counts.asr is not None:
            key = (m.name, t.params.get("area"))
            controls[key] = max(controls.get(key, 0.0), counts.asr)
    rows = []
    for m, t, group, control, counts in merged:
        first = group[0]["result"]
        asr, tcs = counts.interval("asr"), counts.interval("tcs")
        rows.append(AttackRow(
            name=m.name, model=m.spec, architecture=first.get("architecture"), dataset=spec.dataset,
            clean_acc=counts.clean_accuracy, attack=t.name, threat_model=t.description or t.name,
            targeted=counts.targeted, area=t.params.get("area"), eps=t.params.get("eps"), asr=counts.asr,
            asr_interval=asr and list(asr), tcs=counts.tcs,
            tcs_interval=tcs and list(tcs), robust_acc=counts.robust_accuracy, n=counts.n,
            clean_correct=counts.clean_correct, asr_all=counts.asr_all, tcs_all=counts.tcs_all,
            skipped=counts.skipped, seeds=sorted(g["seed"] for g in group),
            control_asr=None if control else controls.get((m.name, t.params.get("area"))),
            artifact=(first.get("artifact") or {}).get("name"),
            seconds=sum(g["seconds"] or 0 for g in group), headline=counts.headline,
            realism=pool([g["result"]["realism"] for g in group])
            if all(g["result"].get("realism") for g in group) else None, labels=first.get("labels", "ground truth"),
            passes=_passes(group), classes=(first.get("per_image") or {}).get("classes"), params=first.get("params")))
    return rows


def _passes(group: list[dict]) -> float | None:
    """The victim passes per image of one model's cells of one attack, seeds pooled (None for cells that did not
    count them)."""
    if not all(g["result"].get("passes") for g in group):
        return None
    spent = sum(g["result"]["passes"]["forward"] + g["result"]["passes"]["backward"] for g in group)
    return spent / max(1, sum(g["result"]["passes"]["images"] for g in group))


def _worst_images(cells: list[dict], where: str) -> tuple[dict, torch.Tensor]:
    """(the first cell's per-image record, the attacked prediction under the union of ``cells``, one model's attacks
    on one seed): a target some attack reached, else a wrong class some attack caused, else the label."""
    runs = [c["result"]["per_image"] for c in cells]
    first = runs[0]
    if any(r["target"] != first["target"] or r["y"] != first["y"] or r["clean"] != first["clean"] for r in runs):
        raise InputError(f"{where}: the attacks drew different targets (or saw other images): their worst case "
                         "would mix different questions.")
    y, target = torch.tensor(first["y"]), torch.tensor(first["target"])
    adv = torch.stack([torch.tensor(r["adv"]) for r in runs])  # attacks x images
    wrong = torch.where(adv != y, adv, -1).amax(0)  # some attack's wrong class (-1: none)
    return first, torch.where((adv == target).any(0), target, torch.where(wrong >= 0, wrong, y))


def _worst_counts(cells: list[dict], where: str) -> Counts:
    """The Counts of one model and seed under the union of ``cells`` (its attacks)."""
    from robust.metrics import count

    first, worst = _worst_images(cells, where)
    y = torch.tensor(first["y"])
    return count(torch.tensor(first["clean"]), worst, y, torch.tensor(first["target"]), num_classes=first["classes"])


def class_tcs(spec: Spec, cells: list[dict], worst: WorstCase) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per model, the worst case's hits and counts by (target, true class) over its clean-correct images whose
    target is another class, seeds pooled: K x K tensors (TCS of a pair = hits / counts)."""
    done = {(c["model"], c["task"], c["seed"]): c for c in cells
            if c["kind"] == "attack" and c["status"] == "done" and "per_image" in c["result"]}
    out = {}
    for m in spec.models:
        hits = n = None
        for seed in spec.seeds:
            group = [done.get((m.name, t, seed)) for t in worst.attacks]
            if not all(group):
                break
            first, adv = _worst_images(group, f"model {m.name!r}, seed {seed}")
            y, target, k = torch.tensor(first["y"]), torch.tensor(first["target"]), first["classes"]
            keep = (torch.tensor(first["clean"]) == y) & (target != y)
            pair = target[keep] * k + y[keep]
            hits = (0 if hits is None else hits) + torch.bincount(pair[adv[keep] == target[keep]], minlength=k * k)
            n = (0 if n is None else n) + torch.bincount(pair, minlength=k * k)
        else:
            if hits is not None:
                out[m.name] = (hits.view(k, k), n.view(k, k))
    return out


def worst_cases(spec: Spec, cells: list[dict], rows: list[AttackRow]) -> list[WorstCase]:
    """One ``WorstCase`` per patch area of the board's targeted attacks (random targets, run on every model) with two
    or more of them; a model's row needs every one of those attacks finished for each seed, with per-image
    outcomes."""
    import math

    from scipy.stats import spearmanr

    done = {(c["model"], c["task"], c["seed"]): c for c in cells
            if c["kind"] == "attack" and c["status"] == "done" and "per_image" in c["result"]}
    areas: dict[tuple[float, float], list[Task]] = defaultdict(list)  # threat models: (area, -bound)
    for t in spec.tasks:  # those run on every model: a variant run on some models only would drop the others
        if t.targeted and t.params.get("area") is not None and t.params.get("target", "random") == "random" \
                and t.name not in spec.only:
            areas[t.params["area"], -t.params.get("bound", 1.0)].append(t)
    out = []
    for (area, bound), tasks in sorted(areas.items()):
        if len(tasks) < 2:
            continue
        names = [t.name for t in tasks]
        threat = WorstCase(area, names, [], {}, -bound)
        worst_rows = []
        for m in spec.models:
            groups = [[done.get((m.name, t.name, seed)) for t in tasks] for seed in spec.seeds]
            if not all(all(g) for g in groups):
                continue
            counts = sum((_worst_counts(g, f"model {m.name!r}, seed {g[0]['seed']}") for g in groups), Counts())
            base = next(r for r in rows if r.name == m.name and r.attack in names)
            asr, tcs = counts.interval("asr"), counts.interval("tcs")
            worst_rows.append(dataclasses.replace(
                base, attack=threat.name, threat_model=threat.threat_model,
                asr=counts.asr, asr_interval=asr and list(asr), tcs=counts.tcs,
                tcs_interval=tcs and list(tcs), robust_acc=counts.robust_accuracy,
                asr_all=counts.asr_all, tcs_all=counts.tcs_all, skipped=counts.skipped,
                control_asr=None, artifact=None, realism=None, passes=None,
                seconds=sum(r.seconds for r in rows if r.name == m.name and r.attack in names)))
        if not worst_rows:
            continue
        worst_rows.sort(key=lambda r: r.rank_key())
        agreement: dict[str, float | None] = {}
        for name in names:
            scores = {r.name: r.tcs for r in rows if r.attack == name}
            pairs = [(scores[w.name], w.tcs) for w in worst_rows if scores.get(w.name) is not None]
            rho = spearmanr(*zip(*pairs, strict=True)).statistic if len(pairs) >= 3 else None
            agreement[name] = None if rho is None or math.isnan(rho) else float(rho)
        out.append(dataclasses.replace(threat, rows=worst_rows, agreement=agreement))
    return out


def evaluation_rows(spec: Spec, cells: list[dict]) -> list[EvaluationRow]:
    """One row per model and evaluation: the curve (mean over the cells' seeds) and its area."""
    rows = []
    for m, t, group in _groups(spec, cells, "evaluation"):
        curves = [g["result"] for g in group]
        first = curves[0]
        # the direction the curve was stored with; rows stored before curves carried it ask the registry
        higher = first["higher_is_better"] if "higher_is_better" in first else \
            registry.get(t.method, "evaluation").higher_is_better
        mean = [sum(v) / len(curves) for v in zip(*(c["mean"] for c in curves), strict=True)]
        std = [max(v) for v in zip(*(c["std"] for c in curves), strict=True)]  # the largest seed std
        rows.append(EvaluationRow(
            name=m.name, model=m.spec, dataset=spec.dataset, evaluation=t.name, method=t.method,
            description=t.description, x=first["x"], mean=mean, std=std,
            area=sum(c["area"] for c in curves) / len(curves), n=first["n"], curve_seeds=first["seeds"],
            xlabel=first["xlabel"], ylabel=first["ylabel"], lower_is_better=not higher,
            seeds=sorted(g["seed"] for g in group),
            area_interval=[sum(v) / len(curves) for v in zip(*(c["area_interval"] for c in curves), strict=True)]
            if all(c.get("area_interval") for c in curves) else None, labels=first.get("labels", "ground truth")))
    return rows


def failed_rows(cells: list[dict]) -> list[FailedRow]:
    """Failed cells grouped by model and error (a model that does not load fails every task the same way)."""
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for c in cells:
        if c["status"] == "failed":
            groups[c["model"], c["error"]].append(f"{c['task']} (seed {c['seed']})")
    return [FailedRow(name, error, ", ".join(tasks)) for (name, error), tasks in groups.items()]


def pct(v: float | None) -> str:
    """A rate as a percentage with one decimal ("–" when undefined)."""
    return "–" if v is None else f"{100 * v:.1f}"


def ci(iv: list | None) -> str:
    """An interval as "[lo, hi]" in percent ("" when undefined)."""
    return "" if not iv else f"[{100 * iv[0]:.1f}, {100 * iv[1]:.1f}]"


_MD_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~&$])")


def _md(text: object) -> str:
    """User text as literal GitHub Markdown, inline: line breaks (``\\r`` too) would split a table row, and every
    character that could start markup, a link, an HTML tag or an entity is backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", _MD_CONTROL.sub(" ", str(text)))


def _attack_table(rows: list[AttackRow]) -> list[str]:
    """The Markdown table of attack rows (ranked, most robust first), with a control ASR column where any has one."""
    control = any(r.control_asr is not None for r in rows)
    lines = ["| # | model | architecture | clean acc | ASR | " + ("control ASR | " if control else "")
             + "TCS | correct / n |", "|---|---|---|---|---|" + ("---|" if control else "") + "---|---|"]
    for i, r in zip(ranks(rows), rows, strict=True):
        tcs = f"{pct(r.tcs)} {ci(r.tcs_interval)}" if r.targeted else "–"
        lines.append(f"| {i} | {_md(r.name)} | {_md(r.architecture or '')} | {pct(r.clean_acc)} | "
                     f"{pct(r.asr)} {ci(r.asr_interval)} | " + (f"{pct(r.control_asr)} | " if control else "")
                     + f"{tcs} | {r.clean_correct} / {r.n} |")
    return lines


REALISM_TEXT = ("How natural each patch attack's patches look, on the same images: SSIM and PSNR (dB) of the patched "
                "window to the window it replaced (higher: closer to what was there), the patched window's total "
                "variation TV (lower: smoother), the colour-histogram distance hist between the window and the clean "
                "ring of context around it (0 to 1, lower: its colours match its surroundings), and a detector's "
                "AUC: a small CNN trained (seeded) on half of the images to tell the attacked context squares from "
                "the clean ones, scored on the other half (0.5: it cannot tell them apart; 1: it always can). "
                "Brackets: 95 % intervals (the means' normal approximation; the AUC's Hanley-McNeil). TCS (ASR for an "
                "untargeted attack) is repeated to read the trade-off.")


def _families(spec: Spec, param: Callable[[Task], str | None]) -> dict[str, dict[str, object]]:
    """The board's attacks that differ only in the value of one parameter (``param(task)`` names it; None: the task is
    in no family; a task that does not set it has the attack's default), grouped into families (method, training
    recipe and every other parameter equal) that take two values or more: {family name: {task name: its value}}.
    A family is named after its method and whatever sets it apart from the board's other families of that method."""
    families: dict[str, dict[str, object]] = defaultdict(dict)
    rests: dict[str, tuple[str, dict]] = {}
    for t in spec.tasks:
        if t.kind != "attack" or (name := param(t)) is None:
            continue
        value = t.params.get(name, registry.get(t.method, "attack").params()[name].default)
        rest = {k: v for k, v in t.params.items() if k != name}
        key = json.dumps([t.method, rest, t.train], sort_keys=True, default=str)
        families[key][t.name] = value
        rests[key] = (t.method, rest)
    out = {}
    for key, members in families.items():
        if len(set(members.values())) < 2:
            continue
        method, rest = rests[key]
        defaults = {k: p.default for k, p in registry.get(method, "attack").params().items()}
        rest = {**defaults, **rest}
        others = [{**defaults, **r} for m, r in rests.values() if m == method]
        differ = sorted({k for o in others for k in {*o, *rest} if o.get(k) != rest.get(k)})
        shown = (f"{k}={v:.4g}" if isinstance(v := rest.get(k), float) else f"{k}={v}" for k in differ)
        out[method + (f" ({', '.join(shown)})" if differ else "")] = members
    return out


def budget_series(spec: Spec, rows: list[AttackRow]) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """The board's attacks that differ only in their area, grouped into families (method and every other
    parameter equal) with two areas or more: {family: {model: [(area, headline), ...]}}."""
    out: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for name, members in _families(spec, lambda t: "area" if "area" in t.params else None).items():
        lines: dict[str, list[tuple[float, float]]] = {}
        for r in rows:
            if r.attack in members and r.score is not None:
                lines.setdefault(r.name, []).append((members[r.attack], r.score))
        lines = {m: points for m, points in lines.items() if len(points) > 1}  # a model run at one area has no curve
        if lines:
            out[name] = lines
    return out


def step_family(task: Task) -> str:
    """A task's method with its per-image steps when the method has them (``gan-patch (refine=10)``): the variants
    of one method that the realism figure joins into a line (critic weights, bounds) share it."""
    method = registry.get(task.method, "attack") if task.kind == "attack" else None
    if method is None or method.steps is None:
        return task.method
    return f"{task.method} ({method.steps}={task.params.get(method.steps, method.params()[method.steps].default)})"


def frontier_series(spec: Spec, rows: list[AttackRow]) -> dict[str, dict[str, list[tuple[int, AttackRow]]]]:
    """The refinement frontier (protocols section 7): the board's attacks that differ only in their per-image steps
    (the option the attack registers as ``steps``: LaVAN's ``steps``, gan-patch's ``refine``), grouped into families
    run at two step counts or more: {model: {family: [(steps, row), ...] by steps}}, for the models with a line
    (there, a family the model ran at one step count is a point beside it: LaVAN-100 beside gan + k). Each row has the
    headline, its interval, the victim passes per image and the seconds the cells took, measured in the same run."""
    out: dict[str, dict[str, list[tuple[int, AttackRow]]]] = {}
    for name, members in _families(spec, lambda t: registry.get(t.method, "attack").steps).items():
        for r in rows:
            if r.attack in members and r.score is not None:
                out.setdefault(r.name, {}).setdefault(name, []).append((members[r.attack], r))
    return {m: {f: sorted(pts, key=lambda p: p[0]) for f, pts in fams.items()}
            for m, fams in out.items() if any(len(pts) > 1 for pts in fams.values())}


FRONTIER_TEXT = ("Each attack family that the board runs at several per-image step counts (LaVAN's steps, gan-patch's "
                 "refinement steps from its generator's patch; the same method and parameters otherwise): its TCS "
                 "(ASR if untargeted) against what it cost per image, measured in the same run: the victim's forward "
                 "and backward passes (Grad-CAM placement included; each image stops at its first success, so most "
                 "spend fewer than their steps) and the cells' seconds per image (scoring included; comparable "
                 "within one board's run only).")


def frontier_rows(board: Board) -> list[dict]:
    """The frontier table's rows: model, family, steps, passes and seconds per image, headline and interval."""
    out = []
    for model, families in frontier_series(board.spec, board.attacks).items():
        for family, pts in families.items():
            for k, r in pts:
                out.append({"model": model, "family": family, "steps": k, "attack": r.attack,
                            "passes": "–" if r.passes is None else f"{r.passes:.1f}",
                            "seconds": f"{r.seconds / r.n:.4f}" if r.n else "–",
                            "score": f"{pct(r.score)} {ci(r.interval)}" + ("" if r.headline == "tcs" else " (ASR)")})
    return out


def chance_note(task: Task, rows: list[EvaluationRow]) -> str | None:
    """For an evaluation with a chance line (y = x): its area over the curves' range and the rows whose area
    interval contains it (a score a model without any selectivity would get)."""
    if registry.get(task.method, "evaluation").chance != "diagonal":
        return None
    level = (rows[0].x[0] + rows[0].x[-1]) / 2  # the mean height of y = x over [x0, xn]
    sides = {"lie wholly below it": [], "contain it": [], "lie wholly above it": []}
    for r in rows:
        if r.area_interval:
            lo, hi = r.area_interval
            sides["lie wholly below it" if hi < level else "lie wholly above it" if lo > level else "contain it"
                  ].append(r.name)
    told = "; ".join(f"{len(names)} of {len(rows)} models' intervals {side} ({', '.join(names)})"
                     for side, names in sides.items() if names) or "no model has an interval"
    return (f"Chance is y = x (the dashed line: a map that does not tell the original class from the donor's), area "
            f"{100 * level:.1f}: {told}. A rank between models near chance ranks noise, so this share is not ranked.")


def task_notes(spec: Spec, task: Task) -> list[str]:
    """What a board prints under a task's table: the note its method carries, then the spec's ``[notes]`` entry."""
    method = registry.get(task.method, task.kind).note
    return [n for n in (method, spec.notes.get(task.name)) if n]


def realism_rows(spec: Spec, rows: list[AttackRow]) -> list[AttackRow]:
    """The attack rows with a realism summary, attacks in spec order, then models in spec order."""
    tasks = {t.name: i for i, t in enumerate(spec.tasks)}
    models = {m.name: i for i, m in enumerate(spec.models)}
    return sorted((r for r in rows if r.realism), key=lambda r: (tasks.get(r.attack, 0), models.get(r.name, 0)))


def has_heldout(rows: list[AttackRow]) -> bool:
    """Whether any of the realism ``rows`` carries a held-out detector's AUC (its column and text are shown)."""
    return any(r.realism.get("heldout_auc") for r in rows)


def realism_cells(r: AttackRow, heldout: bool = False) -> dict[str, tuple[str, str]]:
    """A row's realism figures as (value, interval) strings, keyed by ``REALISM_FIELDS`` (the held-out detector's
    only with ``heldout``)."""
    out = {}
    for key, fmt in (("ssim", "{:.3f}"), ("psnr", "{:.1f}"), ("tv", "{:.3f}"), ("hist", "{:.3f}")):
        m = r.realism[key]
        out[key] = ("–", "undefined") if m["mean"] is None else (
            fmt.format(m["mean"]), "[" + ", ".join(fmt.format(v) for v in m["interval"]) + "]")
    for key in _AUCS[:2 if heldout else 1]:
        auc = r.realism.get(key)
        out[key] = ("–", "") if not auc else (f"{auc['auc']:.3f}", f"[{auc['interval'][0]:.3f}, "
                                                                    f"{auc['interval'][1]:.3f}]")
    return out


HELDOUT_TEXT = ("Held-out AUC: the same detector trained on the other attacks' patches at the same model, area and "
                "bound (every other method of this board, controls included, in turn over the training images), "
                "never on this attack's, and scored on this attack's patches: a defender who does not know the "
                "attack.")


def with_heldout(spec: Spec, cells: list[dict], rows: list[AttackRow], squares: dict[str, dict]
                 ) -> list[AttackRow]:
    """``rows`` with the held-out detector's AUC in their realism summaries (``realism.heldout_auc``; protocols
    section 7): per model, seed, area and bound, each patch attack's cell is scored by a detector trained on the
    board's other methods' cells (``squares``: each cell's detector crops, by key); seeds pooled as the realism
    summaries are. A row with no other method beside it keeps none."""
    from robust.realism import heldout_auc, pool_aucs

    tasks = {t.name: t for t in spec.tasks}
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for c in cells:
        t = tasks.get(c["task"])
        if c["kind"] == "attack" and c["status"] == "done" and c["key"] in squares and t is not None:
            shape = tuple(squares[c["key"]]["clean"].shape)
            groups[c["model"], c["seed"], t.params.get("area"), t.params.get("bound", 1.0), shape].append(c)
    found: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for group in groups.values():
        for c in group:
            others = [(squares[o["key"]]["clean"], squares[o["key"]]["attacked"]) for o in group
                      if tasks[o["task"]].method != tasks[c["task"]].method]
            if others:
                own = (squares[c["key"]]["clean"], squares[c["key"]]["attacked"])
                found[c["model"], c["task"]].append(heldout_auc(own, others, seed=c["seed"]))
    out = []
    for r in rows:
        aucs = found.get((r.name, r.attack))
        if aucs and r.realism:
            r = dataclasses.replace(r, realism={**r.realism, "heldout_auc": pool_aucs(aucs)})
        out.append(r)
    return out


def labels_note(board: Board) -> str | None:
    """A sentence for a board whose rows use decision labels (which rows, what that means); None when every row
    uses the dataset's ground truth."""
    rows = [*board.attacks, *board.evaluations]
    decision = [r for r in rows if r.labels == "decision"]
    if not decision:
        return None
    which = "every row" if len(decision) == len(rows) else f"{len(decision)} of {len(rows)} rows (results.json's " \
        "labels field says which)"
    return (f"Labels: decision labels in {which}: each model's own clean top-1 on the unattacked image (the images "
            "have no ImageNet ground truth), so clean accuracy is 100 % by construction and ASR and TCS ask whether "
            "the patch hijacks the model's decision.")


def robust_accuracy_scope(board: Board) -> str:
    """What the clean-against-robust figure's robust accuracy is measured under, naming the worst case it uses."""
    under = f"the worst case {board.worst[0].name} and " if board.worst else ""
    return f"the share of images still classified correctly under {under}each untargeted attack"


def markdown(board: Board) -> str:
    """The board as GitHub Markdown: one table per threat model, best first, with Wilson 95 % intervals."""
    spec, figures = board.spec, {k: f"figures/{p.name}" for k, p in board.figures.items()}
    seeds = ", ".join(map(str, spec.seeds))
    lines = [f"# {_md(spec.title)}", "",
             f"Dataset `{_md(spec.dataset)}`, first {board.samples} test images, seeds {seeds}. Percentages; "
             f"brackets: Wilson 95 % intervals. {MEASURES_NOTE} ASR and TCS are over the correctly classified "
             "images (correct / n); results.json and results.csv also give them over all n. Ranked most robust "
             "first; a rank is 1 + the number of rows whose interval lies "
             f"wholly below the row's own (more robust beyond doubt). {RANK_CAVEAT} Each image's "
             "target and random draws depend on the seed and the image only, so every model faces the same targets; "
             + ("a single seed is one draw per image: a claim from it is a one-draw claim." if len(spec.seeds) == 1
                else f"the {len(spec.seeds)} seeds are pooled into each row's counts.")
             + (" The board is ranked by the worst case over its patch attacks (first tables): one attack's weakness "
                "cannot make a model look robust." if board.worst else ""), "",
             "Data: [results.json](results.json) (every row, interval and realism summary), "
             "[results.csv](results.csv) (one line per row); how to reproduce this board is at the end.", ""]
    if note := labels_note(board):
        lines += [note, ""]
    lines += ["## Models", "", "| model | spec | architecture | parameters | training | reported accuracy | clean acc "
              "here |", "|---|---|---|---|---|---|---|"]
    for c in board.cards:
        reported = "–" if c["reported"] is None else f"{pct(c['reported']['accuracy'])} (n={c['reported']['n']})"
        params = "–" if c["params"] is None else f"{c['params'] / 1e6:.2f} M"
        lines.append(f"| {_md(c['name'])} | {_md(c['spec'])} | {_md(c['architecture'] or '–')} | {params} | "
                     f"{_md(c['training'] or '–')} | {reported} | {pct(c['clean_acc'])} |")
    lines.append("")
    for worst in board.worst:
        lines += [f"## {_md(worst.name)} (ranks the board)", "", f"{_md(worst.description)}", ""]
        lines += _attack_table(worst.rows)
        agree = ", ".join(f"{_md(name)} {'–' if rho is None else f'{rho:+.2f}'}"
                          for name, rho in worst.agreement.items())
        lines += ["", "Rank agreement with the worst case (Spearman's rho between each attack's ranking of the models "
                  f"and this one's; 1: the same order): {agree}.", ""]
    for task, rows in board.tables("attack"):
        lines += [f"## {_md(task.name)}", "", f"{_md(task.description)}", ""]
        lines += [line for n in task_notes(spec, task) for line in (_md(n), "")]
        control = any(r.control_asr is not None for r in rows)
        lines += _attack_table(rows)
        if control:
            lines += ["", "control ASR: the highest ASR of this board's controls (a noise patch, a patch of another "
                      "image) at the same area on the same model: the success that occlusion alone reaches."]
        if skipped := sum(r.skipped for r in rows):
            lines += ["", f"TCS leaves out the {skipped} images whose target was their own class (they stay in "
                      "ASR and n)."]
        lines.append("")
    if realism := realism_rows(spec, board.attacks):
        heldout = has_heldout(realism)
        lines += ["## Realism of the patches", "", REALISM_TEXT + (" " + HELDOUT_TEXT if heldout else ""), "",
                  "| attack | model | TCS / ASR | SSIM | PSNR | TV | hist | detector AUC |"
                  + (" held-out AUC |" if heldout else ""), "|---" * (9 if heldout else 8) + "|"]
        for r in realism:
            cells = realism_cells(r, heldout)
            rate = f"{pct(r.score)} {ci(r.interval)}" + ("" if r.headline == "tcs" else " (ASR)")
            lines.append(f"| {_md(r.attack)} | {_md(r.name)} | {rate} | "
                         + " | ".join(f"{v} {iv}".strip() for v, iv in cells.values()) + " |")
        lines.append("")
        if "realism" in figures:
            lines += [f"![realism against success]({figures['realism']})", ""]
    for task, rows in board.tables("evaluation"):
        xs = rows[0].x
        ranked = registry.get(task.method, "evaluation").chance != "diagonal"  # a share at chance is not ranked
        lines += [f"## {_md(task.name)}", "", f"{_md(task.description)} ({rows[0].better} is better). Columns: "
                  f"{_md(rows[0].xlabel)} (the fractions actually applied); area: the curve's mean height over "
                  f"[{xs[0]:.3g}, {xs[-1]:.3g}], brackets: its 95 % bootstrap interval over the images; ±: the "
                  f"largest standard deviation over the {rows[0].curve_seeds} random seeds of the cell (the same "
                  "images, other random cells)." + (f" A rank is 1 + the number of rows whose area interval lies "
                                                    f"wholly on the better side of the row's own. {RANK_CAVEAT}"
                                                    if ranked else " Not ranked (below)."), ""]
        lines += ["| # | model | area | " + " | ".join(f"{x:.3g}" for x in xs) + " |",
                  "|---|---|---|" + "---|" * len(xs)]
        for i, r in zip(ranks(rows) if ranked else ["–"] * len(rows), rows, strict=True):
            pts = " | ".join(f"{100 * m:.1f} ± {100 * s:.1f}" for m, s in zip(r.mean, r.std, strict=True))
            lines.append(f"| {i} | {_md(r.name)} | {100 * r.area:.1f} {ci(r.area_interval)} | {pts} |")
        lines.append("")
        if note := chance_note(task, rows):
            lines += [note, ""]
        lines += [line for n in task_notes(spec, task) for line in (_md(n), "")]
        if task.name in figures:
            lines += [f"![{_md(task.name)}]({figures[task.name]})", ""]
    if "heatmap" in figures:
        lines += ["## Heatmap", "", "TCS of the targeted attacks and ASR of the untargeted ones, each on its own "
                  "scale.", "", f"![TCS and ASR heatmap]({figures['heatmap']})", ""]
    if "clean-vs-robust" in figures:
        lines += ["## Clean against robust accuracy", "", f"Robust accuracy: {robust_accuracy_scope(board)}.", "",
                  f"![clean against robust accuracy]({figures['clean-vs-robust']})", ""]
    if "budget" in figures:
        lines += ["## Robustness against budget", "", "Each attack family that the board runs at several patch areas "
                  "(the same method and parameters otherwise): its TCS (ASR if untargeted) per model as the patch "
                  "grows.", "", f"![robustness against budget]({figures['budget']})", ""]
    if frontier := frontier_rows(board):
        lines += ["## The refinement frontier", "", FRONTIER_TEXT, "",
                  "| model | attack family | steps | attack | victim passes / image | s / image | TCS |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {_md(f['model'])} | {_md(f['family'])} | {f['steps']} | {_md(f['attack'])} | {f['passes']} | "
                  f"{f['seconds']} | {f['score']} |" for f in frontier]
        lines.append("")
        if "frontier" in figures:
            lines += [f"![the refinement frontier]({figures['frontier']})", ""]
    if "class-tcs" in figures:
        lines += ["## TCS by target and true class", "", f"Under the worst case {_md(board.worst[0].name)}, per "
                  "model: which targets are easy to reach from which classes (a few images per pair on this board: "
                  "read patterns, not cells).",
                  "", f"![TCS by target and true class]({figures['class-tcs']})", ""]
    if board.pending:
        lines += ["## Pending cells", "", f"Not finished yet ({len(board.pending)}; the run was interrupted or is "
                  "still going, and the same command resumes it): " + ", ".join(_md(p) for p in board.pending) + ".",
                  ""]
    repro = board.reproduction
    lines += ["## Reproduce", ""]
    if repro["command"]:
        lines += [f"From the folder it was run in: `{_md(repro['command'])}` (finished cells are kept in the store; a "
                  "second run only re-renders).", ""]
    lines += [f"Computed {repro['date'] or 'at an unknown time'} on {_md(', '.join(repro['devices']) or 'unknown')}"
              f" with {_md(', '.join(f'{k} {v}' for k, v in sorted(repro['versions'].items())) or 'unknown versions')}"
              ".", ""]
    if repro["spec"] is not None:
        fence = cards.fence(repro["spec"])
        lines += ["The spec:", "", f"{fence}toml", repro["spec"].rstrip("\n"), fence, ""]
    if board.failed:
        lines += ["## Failed cells", "", "| model | tasks | error |", "|---|---|---|"]
        lines += [f"| {_md(f.name)} | {_md(f.tasks)} | {_md(f.error)} |" for f in board.failed]
        lines.append("")
    return "\n".join(lines)


def json_text(board: Board) -> str:
    """The board as JSON: its facts, the attack rows, the evaluation rows and the failed cells."""
    doc = {"title": board.spec.title, "dataset": board.spec.dataset, "samples": board.samples,
           "seeds": list(board.spec.seeds), "versions": board.versions,
           "rows": [r.as_dict() for r in board.attacks], "evaluations": [r.as_dict() for r in board.evaluations],
           "worst_case": [{"name": w.name, "area": w.area, "attacks": w.attacks, "agreement": w.agreement,
                           "rows": [r.as_dict() for r in w.rows]} for w in board.worst],
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
            flat.update({k: (m := r.realism[k]["mean"]) and round(m, 4) for k in REALISM_FIELDS if k not in _AUCS},
                        **{k: (auc := r.realism.get(k)) and round(auc["auc"], 4) for k in _AUCS})
        writer.writerow({k: _csv_cell(v) for k, v in flat.items()})
    return buf.getvalue()
