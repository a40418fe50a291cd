"""Cells: one model x one task x one seed, keyed by a hash of everything that determines the result.

``execute(cell, device)`` runs a cell anywhere (this process, a worker process, a Ray task) and returns a plain
dict; the driver writes it to the store. Trained attacks (``robust.registry.trained()``) use, in this order: the
artifact shipped for that model (``robust/attacks/weights``), one cached by configuration hash under
``cache_dir("artifacts")``, or one trained now with the preset's ``[train]`` recipe and cached.
"""

from __future__ import annotations

import dataclasses
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from robust.checks import data_image_size
from robust.plots import gallery
from robust.presets import Task
from robust.runner.cache import load_dataset_cached, load_for_cached, load_model_cached

if TYPE_CHECKING:
    from robust.attacks.base import AttackResult
    from robust.attacks.trained import TrainedPatchAttack
    from robust.models.backbone import Backbone


@dataclasses.dataclass(frozen=True)
class Cell:
    """One model x one task x one seed: everything a worker needs to compute it (``execute(cell, device)``).

    ``plan`` builds them; ``key`` identifies the result in the store.

    Attributes:
        key: the hash of everything that determines the result (configuration, weights, images, artifact).
        model: the board's model name.
        spec: the model's load spec.
        task: the attack or evaluation.
        dataset: the dataset whose test split is evaluated.
        samples: the first N test images.
        batch_size: images per batch.
        seed: the seed of the draws (and of the attack).
        artifact: for a trained attack, ``{"source": "shipped" or "cache", "path": ..., "id": ...}``; else None.
        squares: keep a patch attack's detector crops in the store (a board's held-out detector).
        weights: the model's ``fingerprint_model`` (part of the key; recorded beside baselines), or None.
        detector: a patch attack's realism summary includes the detector's AUC (``Realism.summary``; the spec's
            ``detector``).

    Examples:
        >>> from robust.presets import load_preset
        >>> from robust.runner.cells import Cell
        >>> cell = Cell("k1", "resnet", "zoo:digits-m/resnet", load_preset("lavan-12pct"), "digits-m", 8, 100, 0)
        >>> sorted(cell.config()), cell.config()["artifact"]
        (['artifact', 'batch_size', 'dataset', 'model', 'samples', 'seed', 'task'], None)
    """

    key: str
    model: str  # the board's model name
    spec: str  # its load spec
    task: Task
    dataset: str
    samples: int
    batch_size: int
    seed: int
    artifact: dict | None = None  # for trained attacks: {"source": shipped|cache, "path": ..., "id": ...}
    squares: bool = False  # keep a patch attack's detector crops in the store (a board's held-out detector)
    weights: str | None = None  # keys.fingerprint_model of the model (part of the key; recorded beside baselines)
    detector: bool = True  # a patch attack's realism summary trains the detector (its AUC); the spec's detector

    @property
    def trains_first(self) -> bool:
        """Whether the cell must train its attack's artifact before it attacks: a trained attack with no shipped
        artifact for the model and none cached yet (the spec's ``train_missing``; tens of minutes on a CPU)."""
        return bool(self.artifact) and self.artifact["source"] == "cache" and not Path(self.artifact["path"]).exists()

    def config(self) -> dict:
        return {"model": self.spec, "dataset": self.dataset, "samples": self.samples, "batch_size": self.batch_size,
                "seed": self.seed, "task": self.task.config(), "artifact": self.artifact and self.artifact["id"],
                **({"squares": True} if self.squares else {}), **({} if self.detector else {"detector": False})}


def _trained_attack(cell: Cell, net: Backbone) -> TrainedPatchAttack:
    """The cell's trained attack: its shipped artifact (checked against its sha256), or its cached one, trained
    (resumably) and cached first when it does not exist."""
    from robust.attacks.artifacts import verify_shipped

    path = Path(cell.artifact["path"])
    if cell.artifact["source"] == "shipped":
        verify_shipped(cell.artifact["name"].removeprefix("zoo:"))
    else:
        cell.task.build_attack(cell.seed).train_cached(path, net, load_for_cached(cell.dataset, net, "train"),
                                                       dict(cell.task.train))
    return cell.task.build_attack(cell.seed, artifact=path, num_classes=net.num_classes)


def _per_image(outcomes: list, classes: int) -> dict:
    """Each image's label, clean and attacked prediction and target (None: untargeted), in the set's order: what
    the board's worst case combines across attacks."""
    y, clean, adv, target = (None if parts[0] is None else torch.cat(parts).tolist()
                             for parts in zip(*outcomes, strict=True))
    return {"classes": classes, "y": y, "clean": clean, "adv": adv, "target": target}


def _certifies(net: Backbone, atk: object) -> bool:
    """Whether the cell records each image's certificate: a certified defence (``certified_labels``, as
    PatchCleanser) under a patch attack whose patch is no larger than the one it certifies, so that the board can
    check that no certified image was flipped."""
    from robust.attacks.base import PatchAttack

    return (callable(getattr(net, "certified_labels", None)) and isinstance(atk, PatchAttack)
            and atk.side_for(tuple(net.input_size)) <= net.patch)  # any shape inside a covered square


def versions() -> dict:
    import robust

    out = {"python": platform.python_version(), "torch": torch.__version__, "robust": robust.__version__}
    for pkg in ("torchattacks", "timm", "kornia"):
        try:
            out[pkg] = __import__(pkg).__version__
        except Exception:
            out[pkg] = None
    return out


def execute(cell: Cell, device: str = "cpu", *, examples: int = 4) -> dict:
    """Run ``cell`` on ``device``; a dict with ``status`` done (``result``, ``seconds``, ``figure``: a gallery PNG
    of ``examples`` images of the first batch, successes then failures) or failed (``error``). Errors of the cell
    are caught and returned: one bad model must not stop a grid."""
    from safetensors.torch import save as save_tensors

    from robust.attacks import evaluate
    from robust.attacks.cost import Passes, inference
    from robust.data import label_source
    from robust.evaluations import run_evaluation
    from robust.realism import Realism
    from robust.registry import get

    base = {"key": cell.key, "model": cell.model, "task": cell.task.name, "kind": cell.task.kind, "seed": cell.seed,
            "config": cell.config(), "device": device, "versions": versions()}
    try:
        net = load_model_cached(cell.spec, device, data_image_size(load_dataset_cached(cell.dataset)))
        data = load_for_cached(cell.dataset, net)
        if cell.task.kind == "evaluation":
            start = time.perf_counter()
            curve = run_evaluation(cell.task.method, net, data, samples=cell.samples, batch_size=cell.batch_size,
                                   seed=cell.seed, **cell.task.params)
            return {**base, "status": "done", "result": {**curve.to_dict(), "labels": label_source(data)},
                    "seconds": time.perf_counter() - start}
        train_start = time.perf_counter()
        atk = _trained_attack(cell, net) if get(cell.task.method, "attack").trained else \
            cell.task.build_attack(cell.seed)
        train_seconds = time.perf_counter() - train_start
        first: list = []
        outcomes: list = []
        certified: list = []
        meter = Realism()
        certifies = _certifies(net, atk)

        def inspect(x: torch.Tensor, y: torch.Tensor, res: AttackResult) -> None:
            if not first:
                first.append((x, y, res))
            if res.boxes is not None:  # a patch attack: how natural its patches look
                meter.update(x, res.x_adv, res.boxes)
            if certifies:  # the label each image is certified for; compared with its clean prediction below
                with torch.no_grad():
                    certified.append(net.certified_labels(x).cpu())

        start, passes = time.perf_counter(), Passes()
        counts = evaluate(atk, net, data, samples=cell.samples, batch_size=cell.batch_size, inspect=inspect,
                          outcomes=outcomes, passes=passes)
        seconds = time.perf_counter() - start
        per_image = _per_image(outcomes, net.num_classes)
        if certifies:  # certified: no patch this size can change the defended prediction (evaluate's clean one)
            per_image["certified"] = (torch.cat(certified) == torch.tensor(per_image["clean"])).tolist()
        result = {**counts.to_dict(), "train_seconds": train_seconds, "passes": passes.to_dict(),
                  "per_image": per_image, "inference": inference(net, first[0][0]) if first else None,
                  "realism": meter.summary(cell.seed, detector=cell.detector) if len(meter) else None,
                  "labels": label_source(data),
                  "architecture": f"{type(net.net).__name__} ({net.family})",
                  "params": sum(t.numel() for t in net.net.parameters()),  # for the board's model card
                  "artifact": cell.artifact and {k: cell.artifact[k] for k in ("source", "name")}}
        figure = None
        if first and examples:
            figure, result["examples"] = gallery(net, *first[0], examples)
        squares = save_tensors(meter.squares()) if cell.squares and len(meter) else None  # held-out detectors
        return {**base, "status": "done", "result": result, "seconds": seconds, "figure": figure, "squares": squares}
    except Exception as e:
        return {**base, "status": "failed", "error": f"{type(e).__name__}: {e}"}
