"""A board's "Defences" section: per defended model (a ``defense:`` spec), beside its undefended base, its clean
accuracy, its certified accuracy (a certified defence: the board's ``certified`` evaluation at its area and masks),
its robust accuracy under the worst case of every attack run on it and under the non-adaptive ones alone (crafted on
the base, ``adaptive = false``), the certificate checked against every attack within its size, and the price of one
prediction. Read from the store's per-image records; nothing is recomputed."""

from __future__ import annotations

import dataclasses
from collections import defaultdict

from robust import registry
from robust.leaderboard.rows import EvaluationRow, _Row
from robust.metrics import wilson_interval
from robust.runner.spec import Spec


@dataclasses.dataclass(frozen=True)
class Rate:
    """``hits`` of ``n`` images, with the rate and its Wilson 95 % interval.

    Attributes:
        hits: the images counted.
        n: the images seen.

    Examples:
        >>> from robust.leaderboard.defences import Rate
        >>> Rate(3, 4).value, [round(v, 3) for v in Rate(3, 4).interval]
        (0.75, [0.301, 0.954])
    """

    hits: int
    n: int

    @property
    def value(self) -> float | None:
        return self.hits / self.n if self.n else None

    @property
    def interval(self) -> list[float] | None:
        return list(wilson_interval(self.hits, self.n)) if self.n else None

    def as_dict(self) -> dict:
        return {"value": self.value, "interval": self.interval, "hits": self.hits, "n": self.n}


@dataclasses.dataclass(frozen=True)
class DefenceRow(_Row):
    """One defended model of a board at one patch area, beside its base (None where the base is not on the board).
    ``robust``: the share of images classified correctly clean and under every attack of that area run on the model
    (its worst case there); ``nonadaptive``: the same over those attacks crafted on the base (``adaptive = false``);
    ``certified``: at the area the defence certifies only; ``violations`` of ``checked``: certified (image, attack)
    pairs whose prediction an attack within the certified size changed (any is a bug); ``forward`` and ``seconds``:
    one prediction's network passes and seconds per image.

    Attributes:
        name: the defended model's name on the board.
        model: its spec.
        defence: the defence's registered name.
        options: the defence's options in the spec.
        base: the base model's name on the board (None: not on it).
        area: the patch area of the attacks (None: attacks without one).
        clean: clean accuracy.
        certified: certified accuracy at the defence's own area (None: not certified, or not evaluated).
        robust: accuracy under every attack of the area.
        attacks: those attacks.
        nonadaptive: accuracy under the non-adaptive ones (None: none ran).
        nonadaptive_attacks: those attacks.
        base_clean: the base's clean accuracy.
        base_robust: the base's accuracy under its attacks of the area.
        violations: certified (image, attack) pairs flipped (None: nothing checked).
        checked: certified (image, attack) pairs checked.
        forward: network forward passes per image of one prediction.
        seconds: seconds per image of one prediction.
        base_forward: the same for the base.
        base_seconds: the same for the base.

    Examples:
        >>> from robust.leaderboard.defences import DefenceRow, Rate
        >>> row = DefenceRow("r+pc", "defense:patchcleanser?base=zoo:digits-m/resnet", "patchcleanser", {}, "r", 0.02,
        ...                  Rate(6, 10), Rate(1, 10), Rate(2, 10), ["a"], None, [], Rate(9, 10), Rate(3, 10), 0, 1,
        ...                  48.0, 0.03, 1.0, 0.001)
        >>> row.as_dict()["robust"]["value"]
        0.2
    """

    name: str
    model: str
    defence: str
    options: dict
    base: str | None
    area: float | None
    clean: Rate
    certified: Rate | None
    robust: Rate
    attacks: list[str]
    nonadaptive: Rate | None
    nonadaptive_attacks: list[str]
    base_clean: Rate | None
    base_robust: Rate | None
    violations: int | None
    checked: int
    forward: float | None
    seconds: float | None
    base_forward: float | None
    base_seconds: float | None

    def as_dict(self) -> dict:
        return {k: v.as_dict() if isinstance(v, Rate) else v for k, v in super().as_dict().items()}


def _robust(runs: list[dict]) -> Rate:
    """Images (pooled over seeds) classified correctly, clean and under every one of ``runs`` (per-image records of
    one model's attacks on one seed each, grouped by seed)."""
    hits = n = 0
    for seed_runs in _by_seed(runs).values():
        y, clean = seed_runs[0]["y"], seed_runs[0]["clean"]
        hits += sum(c == t and all(r["adv"][i] == t for r in seed_runs)
                    for i, (c, t) in enumerate(zip(clean, y, strict=True)))
        n += len(y)
    return Rate(hits, n)


def _by_seed(runs: list[dict]) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = defaultdict(list)
    for r in runs:
        out[r["seed"]].append(r["per_image"])
    return out


def _clean(runs: list[dict]) -> Rate:
    per_seed = [seed_runs[0] for seed_runs in _by_seed(runs).values()]
    return Rate(sum(sum(c == t for c, t in zip(p["clean"], p["y"], strict=True)) for p in per_seed),
                sum(len(p["y"]) for p in per_seed))


def _mean(runs: list[dict], key: str) -> float | None:
    values = [r["inference"][key] for r in runs if r.get("inference")]
    return sum(values) / len(values) if values else None


def _certified(defence: str, options: dict, area: float | None, names: list[str],
               evaluations: list[EvaluationRow], spec: Spec) -> Rate | None:
    """The certified accuracy of a certified defence at its own ``area`` from the board's ``certified`` evaluation
    run on one of ``names`` (the defended model or its base) with the defence's masks per axis; None otherwise."""
    method = registry.defenses()[defence]
    if not callable(getattr(method.build, "certified_labels", None)):  # an empirical defence
        return None
    defaults = method.params()
    own, k = options.get("area", defaults["area"].default), options.get("k", defaults["k"].default)
    if area != own:
        return None
    tasks = {t.name: t for t in spec.tasks}
    evaluation_k = registry.get("certified", "evaluation").params()["k"].default
    for e in evaluations:
        task = tasks.get(e.evaluation)
        if (e.method == "certified" and e.name in names and task is not None
                and task.params.get("k", evaluation_k) == k and own in e.x):
            return Rate(round(e.mean[e.x.index(own)] * e.n), e.n)
    return None


def defence_rows(spec: Spec, cells: list[dict], evaluations: list[EvaluationRow]) -> list[DefenceRow]:
    """One ``DefenceRow`` per defended model of ``spec`` and patch area of the attacks run on it, in spec order.

    Args:
        spec: the board's spec.
        cells: the store's cells of the board's plan.
        evaluations: the board's evaluation rows (the certified accuracy comes from them).

    Returns:
        The rows; empty for a board without a defended model.

    Examples:
        >>> from robust.leaderboard.defences import defence_rows
        >>> from robust.runner import parse_spec
        >>> defence_rows(parse_spec({"dataset": "digits-m", "models": ["zoo:digits-m/resnet"],
        ...                          "attacks": ["lavan-12pct"]}), [], [])
        []
    """
    from robust.models.specs import defended_parts

    tasks = {t.name: t for t in spec.tasks}
    done: dict[str, list[dict]] = defaultdict(list)
    for c in cells:
        if c["kind"] == "attack" and c["status"] == "done" and "per_image" in c["result"] and c["task"] in tasks:
            done[c["model"]].append({"seed": c["seed"], "task": c["task"], **c["result"]})
    by_spec = {m.spec: m.name for m in spec.models}
    area = lambda run: tasks[run["task"]].params.get("area")
    out = []
    for m in spec.models:
        runs = done.get(m.name)
        if not m.spec.startswith("defense:") or not runs:
            continue
        defence, options, base_spec = defended_parts(m.spec)
        base = by_spec.get(base_spec)
        base_runs = done.get(base, []) if base else []
        per_model = {"clean": _clean(runs), "base_clean": _clean(base_runs) if base_runs else None,
                     "forward": _mean(runs, "forward"), "seconds": _mean(runs, "seconds"),
                     "base_forward": _mean(base_runs, "forward"), "base_seconds": _mean(base_runs, "seconds")}
        for a in sorted({area(r) for r in runs}, key=lambda v: (v is None, v or 0.0)):
            here = [r for r in runs if area(r) == a]
            nonadaptive = [r for r in here if tasks[r["task"]].params.get("adaptive") is False]
            base_here = [r for r in base_runs if area(r) == a]
            checks = [r for r in here if "certified" in r["per_image"]]
            pairs = [(r["per_image"], i) for r in checks for i, ok in enumerate(r["per_image"]["certified"]) if ok]
            out.append(DefenceRow(
                name=m.name, model=m.spec, defence=defence, options=options, base=base, area=a,
                certified=_certified(defence, options, a, [m.name, base], evaluations, spec),
                robust=_robust(here), attacks=sorted({r["task"] for r in here}),
                nonadaptive=_robust(nonadaptive) if nonadaptive else None,
                nonadaptive_attacks=sorted({r["task"] for r in nonadaptive}),
                base_robust=_robust(base_here) if base_here else None,
                violations=sum(p["adv"][i] != p["clean"][i] for p, i in pairs) if checks else None,
                checked=len(pairs), **per_model))
    return out


def attack_sets(rows: list[DefenceRow]) -> list[dict]:
    """The attacks behind the section's robust figures, once per distinct set.

    Args:
        rows: the section's rows (``defence_rows``).

    Returns:
        One dict per distinct (area, attacks, non-adaptive attacks): ``area``, ``attacks``, ``nonadaptive`` and
        ``models`` (the defended models that ran that set at that area; None: every one).

    Examples:
        >>> from robust.leaderboard.defences import attack_sets
        >>> attack_sets([])
        []
    """
    sets: dict[tuple, list[str]] = {}
    for r in rows:
        sets.setdefault((r.area, tuple(r.attacks), tuple(r.nonadaptive_attacks)), []).append(r.name)
    everyone = {r.name for r in rows}
    return [{"area": area, "attacks": list(attacks), "nonadaptive": list(nonadaptive),
             "models": None if set(models) == everyone else models}
            for (area, attacks, nonadaptive), models in sets.items()]


DEFENCES_TEXT = ("Each defended model beside its undefended base, on the same images, per patch area of the attacks "
                 "run on it. Clean: top-1 accuracy. Certified: the share whose true label no patch of the certified "
                 "size, anywhere, can change (the board's certified evaluation at the defence's area and masks; "
                 "shown at that area only; empirical defences have none). Robust: the share classified correctly "
                 "clean and under every attack of that area run on the model (its worst case there, adaptive attacks "
                 "included); non-adaptive: the same over the attacks crafted on the base and only scored through the "
                 "defence, what an evaluation without an adaptive attacker reports. "
                 "Violations: (certified image, attack within the certified size) pairs whose prediction the attack "
                 "changed; anything but 0 is a bug in the defence or its certificate. Cost: network forward passes "
                 "and milliseconds per image of one clean prediction, measured in the board's run (comparable "
                 "within it only).")


__all__ = ["DEFENCES_TEXT", "DefenceRow", "Rate", "attack_sets", "defence_rows"]
