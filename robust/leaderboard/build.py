"""A board's rows built from the store's cells (seeds merged, the worst case over attacks, realism with its held-out
detector, the budget and refinement families), and the sentences that say how to read them, shared by the
Markdown and HTML writers."""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from collections.abc import Callable, Iterator

import torch

from robust import registry
from robust.checks import InputError
from robust.leaderboard.cards import parameter_count
from robust.leaderboard.defences import DEFENCES_TEXT, attack_sets
from robust.leaderboard.rows import RANK_CAVEAT, AttackRow, Board, EvaluationRow, FailedRow, WorstCase, ci, pct, ranks
from robust.metrics import MEANINGS, Counts
from robust.presets import Task
from robust.realism import pool
from robust.runner.spec import ModelEntry, Spec

_COUNT_FIELDS = tuple(f.name for f in dataclasses.fields(Counts))
REALISM_FIELDS = ("ssim", "psnr", "tv", "hist", "detector_auc", "heldout_auc")  # the CSV's realism columns (means)
AUCS = ("detector_auc", "heldout_auc")

#: what ASR and TCS are, and which one ranks, above every board
MEASURES_NOTE = (f"ASR = {MEANINGS['asr']}; TCS = {MEANINGS['tcs']} (each image's target drawn from the seed and "
                 "the image, uniformly over the other classes, unless an attack's description says otherwise); "
                 "targeted attacks rank by TCS, untargeted ones by ASR, lower is more robust.")


def _groups(spec: Spec, cells: list[dict], kind: str) -> Iterator[tuple[ModelEntry, Task, list[dict]]]:
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
            # undefined with under 3 models or a constant side (every model at 0 %: scipy would warn, then NaN)
            ranked = len(pairs) >= 3 and all(len(set(side)) > 1 for side in zip(*pairs, strict=True))
            rho = spearmanr(*zip(*pairs, strict=True)).statistic if ranked else None
            agreement[name] = None if rho is None else float(rho)
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


REALISM_TEXT = ("How natural each patch attack's patches look, on the same images: SSIM and PSNR (dB) of the patched "
                "window to the window it replaced (higher: closer to what was there), the patched window's total "
                "variation TV (lower: smoother), the colour-histogram distance hist between the window and the clean "
                "ring of context around it (0 to 1, lower: its colours match its surroundings){detector}. "
                "Brackets: 95 % intervals (the means' normal approximation{auc}). TCS (ASR for an untargeted attack) "
                "is repeated to read the trade-off.")
DETECTOR_TEXT = (", and a detector's AUC: a small CNN trained (seeded) on half of the images to tell the attacked "
                 "context squares from the clean ones, scored on the other half (0.5: it cannot tell them apart; 1: it "
                 "always can)")
NO_DETECTOR_TEXT = (". The spec sets detector = false: its cells train no detector, so this table has no detector "
                    "AUC")


def realism_text(detector: bool, heldout: bool) -> str:
    """The sentences above a board's realism table: its measures, the detector's AUC when the board trains it
    (``detector``; else a note that it does not) and the held-out detector's (``heldout``).

    Examples:
        >>> from robust.leaderboard.build import realism_text
        >>> "detector's AUC" in realism_text(True, False), "detector = false" in realism_text(False, False)
        (True, True)
        >>> "a small CNN (seeded) trained on the other attacks" in realism_text(False, True)
        True
    """
    text = REALISM_TEXT.format(detector=DETECTOR_TEXT if detector else NO_DETECTOR_TEXT,
                               auc="; the AUC's Hanley-McNeil" if detector or heldout else "")
    held = HELDOUT_TEXT.format(detector="the same detector" if detector else "a small CNN (seeded)")
    return text + (" " + held if heldout else "")


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


def realism_cells(r: AttackRow, aucs: tuple[str, ...] = AUCS[:1]) -> dict[str, tuple[str, str]]:
    """A row's realism figures as (value, interval) strings, keyed by ``REALISM_FIELDS``: the measures, then the
    AUCs of ``aucs`` (the board's detector's, the held-out detector's; those its realism table shows)."""
    out = {}
    for key, fmt in (("ssim", "{:.3f}"), ("psnr", "{:.1f}"), ("tv", "{:.3f}"), ("hist", "{:.3f}")):
        m = r.realism[key]
        out[key] = ("–", "undefined") if m["mean"] is None else (
            fmt.format(m["mean"]), "[" + ", ".join(fmt.format(v) for v in m["interval"]) + "]")
    for key in aucs:
        auc = r.realism.get(key)
        out[key] = ("–", "") if not auc else (f"{auc['auc']:.3f}", f"[{auc['interval'][0]:.3f}, "
                                                                    f"{auc['interval'][1]:.3f}]")
    return out


HELDOUT_TEXT = ("Held-out AUC: {detector} trained on the other attacks' patches at the same model, area and "
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


def shared_context(board: Board) -> dict:
    """What both page templates (Markdown and HTML) are given alike: the worst-case, attack and evaluation tables,
    the realism table, the frontier, the sentences that say how to read them, the cards, the pending and failed
    cells, the reproduction."""
    realism = realism_rows(board.spec, board.attacks)
    heldout = has_heldout(realism)
    aucs = tuple(k for k, shown in zip(AUCS, (board.spec.detector, heldout), strict=True) if shown)
    evaluations = []
    for t, rows in board.tables("evaluation"):
        ranked = registry.get(t.method, "evaluation").chance != "diagonal"  # a share at chance is not ranked
        evaluations.append({"task": t, "rows": rows, "ranked": ranked, "ranks": ranks(rows) if ranked else
                            ["–"] * len(rows), "chance": chance_note(t, rows), "notes": task_notes(board.spec, t)})
    return {"worst_tables": [{"name": w.name, "description": w.description, "rows": w.rows, "ranks": ranks(w.rows),
                              "agreement": w.agreement} for w in board.worst],
            "attack_tables": [{"task": t, "rows": rows, "ranks": ranks(rows), "notes": task_notes(board.spec, t),
                               "control": any(r.control_asr is not None for r in rows),
                               "skipped": sum(r.skipped for r in rows)} for t, rows in board.tables("attack")],
            "evaluations": evaluations,
            "realism": [{"row": r, "cells": realism_cells(r, aucs)} for r in realism], "aucs": aucs,
            "realism_text": realism_text(board.spec.detector, heldout),
            "frontier": frontier_rows(board), "frontier_text": FRONTIER_TEXT, "measures_note": MEASURES_NOTE,
            "rank_caveat": RANK_CAVEAT, "robust_scope": robust_accuracy_scope(board), "labels_note": labels_note(board),
            "defences": board.defences, "defences_text": DEFENCES_TEXT, "defence_attacks": attack_sets(board.defences),
            "cards": board.cards, "pending": board.pending, "failed": board.failed,
            "reproduction": board.reproduction, "pct": pct, "ci": ci, "parameter_count": parameter_count}
