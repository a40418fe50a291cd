"""Cells: one model x one task x one seed, keyed by a hash of everything that determines the result.

``execute(cell, device)`` runs a cell anywhere (this process, a worker process, a Ray task) and returns a plain
dict; the driver writes it to the store. Trained attacks (``robust.registry.trained()``) use, in this order: the
artefact shipped for that model (``robust/attacks/weights``), one cached by configuration hash under
``cache_dir("artifacts")``, or one trained now with the preset's ``[train]`` recipe and cached.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
import platform
import time
import weakref
from collections import OrderedDict
from pathlib import Path

import torch

from robust.checks import data_image_size
from robust.presets import Task

CELL_VERSION = 6  # bump when a change to robust alters results, so stores recompute (2: protocol-exact counts;
# 3: per-image draws, donors from the whole set, PGD with restarts and early stop, LaVAN early stop, bootstrap areas;
# 4: per-image outcomes for the worst case, LaVAN keeps each image's best patch; 5: patch attacks' realism;
# 6: the victim passes each attack spent, gan-patch refines with LaVAN's optimiser)
ARTIFACT_VERSION = 2  # bump when a change alters how trained artefacts are trained, so caches retrain (2: the
# universal patch draws its training windows with torch.rand)
#: per-process caches: (spec, device, input size) -> Backbone, least recently used first, and its weights' fingerprint
_MODELS: OrderedDict[tuple, object] = OrderedDict()
_WEIGHTS: dict[tuple, str] = {}
MODEL_CACHE_BYTES = 2 * 2**30  # parameters and buffers kept loaded: a board's models load once per run
_DATA: dict[tuple, object] = {}
#: a model's decision-labelled copies of the cached sets, by the set's id (held while the model is)
_DECIDED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclasses.dataclass(frozen=True)
class Cell:
    """Everything a worker needs; ``key`` identifies the result."""

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
    weights: str | None = None  # fingerprint_model of the model (part of the key; recorded beside baselines)

    def config(self) -> dict:
        return {"model": self.spec, "dataset": self.dataset, "samples": self.samples, "batch_size": self.batch_size,
                "seed": self.seed, "task": self.task.config(), "artifact": self.artifact and self.artifact["id"],
                **({"squares": True} if self.squares else {})}


def digest(obj: object, size: int = 16) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:size]


def fingerprint_model(model: torch.nn.Module) -> str:
    """sha256 of the model's parameters and buffers (names, dtypes, shapes and bytes)."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def fingerprint_data(data: object, samples: int | None = None, batch_size: int = 256) -> str:
    """sha256 of the first ``samples`` images and labels and of the class names: the same for the same content
    wherever it is loaded from (an ImageFolder or torchvision set is read through its transform, once)."""
    from robust.data.base import ImageSet, iterate

    h = hashlib.sha256()
    if isinstance(data, ImageSet):  # (the class names are not hashed here, so that existing keys stay valid)
        h.update(data.images[:samples].contiguous().numpy().tobytes())
        h.update(data.labels[:samples].contiguous().numpy().tobytes())
    else:
        h.update(json.dumps(list(getattr(data, "class_names", []))).encode())
        for x, y in iterate(data, batch_size, "cpu", limit=samples):
            h.update(x.float().contiguous().numpy().tobytes())
            h.update(y.long().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _nbytes(net: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in net.state_dict().values())


#: in-memory models handed to measure(), by the spec that names them (held while the caller holds them)
_MODULES: weakref.WeakValueDictionary[str, torch.nn.Module] = weakref.WeakValueDictionary()


def module_spec(module: torch.nn.Module) -> str:
    """A spec naming an in-memory module for this process's cells: ``module:CLASS@WEIGHTS`` (its class's qualified
    name and ``fingerprint_model``), so that the same weights give the same cells in any session."""
    cls = type(module)
    spec = f"module:{cls.__module__}.{cls.__qualname__}@{fingerprint_model(module)}"
    _MODULES[spec] = module
    return spec


def model(spec: str, device: str, input_size: tuple[int, ...] | None = None):
    """The Backbone of ``spec`` on ``device``, loaded once per process while it fits the cache (planning loads it,
    the cells reuse it). ``input_size``: the data's, for a source that does not say (a factory, a module); an
    in-memory module (``module_spec``) stays on its own device and is not copied."""
    from robust.models import load_model

    key = (spec, str(device), input_size)
    if key not in _MODELS:
        if spec in _MODULES:
            _MODELS[key] = load_model(_MODULES[spec], input_size=input_size)
        else:
            _MODELS[key] = load_model(spec, device=device, input_size=input_size)
        while len(_MODELS) > 1 and sum(_nbytes(m) for m in _MODELS.values()) > MODEL_CACHE_BYTES:
            _WEIGHTS.pop(_MODELS.popitem(last=False)[0], None)
    _MODELS.move_to_end(key)
    return _MODELS[key]


def forget_models() -> None:
    """Empty the model cache: each run loads its models afresh (a file may have changed since the last run)."""
    _MODELS.clear()
    _WEIGHTS.clear()


def weights(spec: str, device: str, input_size: tuple[int, ...] | None = None) -> str:
    """``fingerprint_model`` of ``model(spec, device, input_size)``, computed once while the model stays cached."""
    key = (spec, str(device), input_size)
    net = model(spec, device, input_size)
    if key not in _WEIGHTS:
        _WEIGHTS[key] = fingerprint_model(net)
    return _WEIGHTS[key]


def dataset(name: str, split: str = "test", preprocess=None):
    """Dataset ``name``'s ``split`` through ``preprocess`` (a model's: ``Backbone.preprocess``; ignored by a dataset
    of one size), loaded once per process."""
    from robust.data import load_dataset, resizable

    key = (name, split, preprocess if resizable(name) else None)
    if key not in _DATA:
        _DATA[key] = load_dataset(name, split, preprocess=key[2])
    return _DATA[key]


def model_data(name: str, net, split: str = "test"):
    """The ``split`` of dataset ``name`` as model ``net`` takes it (``robust.model_data.load_for``, cached per process:
    its preprocessing, and its own decisions as labels where the dataset has decision labels)."""
    from robust.data import label_source
    from robust.model_data import decision_labels

    data = dataset(name, split, getattr(net, "preprocess", None))
    if label_source(data) != "decision":
        return data
    decided = _DECIDED.setdefault(net, {})
    if id(data) not in decided:
        decided[id(data)] = decision_labels(net, data)
    return decided[id(data)]


@functools.cache
def _train_fingerprint(name: str, preprocess) -> str:
    """The training split's hash, once per process (planning asks for it for every trained-attack cell)."""
    return fingerprint_data(dataset(name, "train", preprocess))


def artifact_for(task: Task, spec: str, weights: str, data: str, seed: int, preprocess=None) -> dict | None:
    """Which trained artefact a trained-attack cell uses (None for other tasks): a shipped one recorded for this
    model, dataset, area, placement and seed (checked against its sha256 first), else the cache path of its
    configuration hash (``preprocess``: the model's, which its training images go through)."""
    from robust.attacks import make_attack
    from robust.attacks.artifacts import artifact_id, config_path, list_artifacts, verify_shipped
    from robust.io import cache_dir
    from robust.registry import get

    if task.kind != "attack" or not get(task.method, "attack").trained:
        return None
    attack = make_attack(task.method, **task.params, seed=seed)
    for name, entry in list_artifacts().items():
        if (entry.get("attack"), entry.get("victims"), entry.get("data")) != (task.method, [spec], data):
            continue
        path = verify_shipped(name)
        if attack.matches(json.loads(config_path(path).read_text()), dict(task.train)):  # trained as this task would
            return {"source": "shipped", "name": f"zoo:{name}", "path": str(path), "id": artifact_id(entry)}
    train_data = _train_fingerprint(data, preprocess)  # the images it is trained on, not just their name
    ident = digest({"method": task.method, "params": task.params, "train": task.train, "weights": weights,
                    "data": data, "train_data": train_data, "seed": seed, "version": ARTIFACT_VERSION})
    path = cache_dir("artifacts") / f"{task.method}-{ident}.safetensors"
    return {"source": "cache", "name": path.name, "path": str(path), "id": ident}


def _trained_attack(cell: Cell, net, progress: bool):
    """The cell's trained attack: its shipped artefact (checked against its sha256), or its cached one, trained
    (resumably) and cached first when it does not exist."""
    from robust.attacks import make_attack
    from robust.attacks.artifacts import verify_shipped

    path = Path(cell.artifact["path"])
    params = {**cell.task.params, "seed": cell.seed}
    atk = make_attack(cell.task.method, **params)
    if cell.artifact["source"] == "shipped":
        verify_shipped(cell.artifact["name"].removeprefix("zoo:"))
    else:
        atk.train_cached(path, net, model_data(cell.dataset, net, "train"), dict(cell.task.train), progress)
    return type(atk).load(path, num_classes=net.num_classes, **atk.attack_time(params))


def _jet(s: torch.Tensor) -> torch.Tensor:
    """The jet colour map of values in [0, 1]: N x H x W -> N x 3 x H x W."""
    return torch.stack([(1.5 - (4 * s - c).abs()).clamp(0, 1) for c in (3, 2, 1)], 1)


def _gallery(net, x: torch.Tensor, y: torch.Tensor, res, examples: int, scale: int = 3
             ) -> tuple[bytes | None, list[dict]]:
    """A PNG strip of ``examples`` images of the batch, the attack's successes first and then its failures (half
    each where the batch has them; clean-correct images only), one column per image: clean, attacked, and the
    attacked image under the Grad-CAM of its predicted class; plus each column's labels (clean prediction,
    attacked prediction, target, and whether the attack succeeded: its target reached, or any change if
    untargeted); no PNG when no image of the batch is clean-correct."""
    from PIL import Image

    from robust.cam import cam
    from robust.models.state import eval_mode

    with eval_mode(net), torch.no_grad():
        clean, adv = net(x).argmax(1), net(res.x_adv).argmax(1)
    won = adv == res.target if res.target is not None else adv != y
    correct = (clean == y).nonzero().flatten()
    wins, losses = correct[won[correct]], correct[~won[correct]]
    half = examples // 2
    take = min(len(wins), max(half, examples - len(losses)))
    index = torch.cat([wins[:take], losses[:examples - take]])
    if not len(index):
        return None, []
    x, clean, adv, won = x[index], clean[index], adv[index], won[index]
    x_adv = res.x_adv[index].detach().float()
    target = None if res.target is None else res.target[index]
    overlay = 0.55 * x_adv + 0.45 * _jet(cam(net, x_adv, adv))
    rows = torch.stack([x.float(), x_adv, overlay])  # 3 x N x C x H x W
    rows = torch.nn.functional.pad(rows, (1, 1, 1, 1), value=1.0)  # white gaps between the tiles
    grid = rows.permute(2, 0, 3, 1, 4).flatten(3, 4).flatten(1, 2)  # C x 3(H+2) x N(W+2)
    grid = grid.repeat_interleave(scale, 1).repeat_interleave(scale, 2)
    pixels = (grid.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    names = net.class_names or [str(i) for i in range(net.num_classes)]
    labels = [{"clean": names[int(c)], "attacked": names[int(a)], "success": bool(w),
               "target": None if target is None else names[int(target[i])]}
              for i, (c, a, w) in enumerate(zip(clean, adv, won, strict=True))]
    return buf.getvalue(), labels


def _per_image(outcomes: list, classes: int) -> dict:
    """Each image's label, clean and attacked prediction and target (None: untargeted), in the set's order: what
    the board's worst case combines across attacks."""
    y, clean, adv, target = (None if parts[0] is None else torch.cat(parts).tolist()
                             for parts in zip(*outcomes, strict=True))
    return {"classes": classes, "y": y, "clean": clean, "adv": adv, "target": target}


def versions() -> dict:
    import robust

    out = {"python": platform.python_version(), "torch": torch.__version__, "robust": robust.__version__}
    for pkg in ("torchattacks", "timm", "kornia"):
        try:
            out[pkg] = __import__(pkg).__version__
        except Exception:
            out[pkg] = None
    return out


def execute(cell: Cell, device: str = "cpu", *, examples: int = 4, progress: bool = False) -> dict:
    """Run ``cell`` on ``device``; a dict with ``status`` done (``result``, ``seconds``, ``figure``: a gallery PNG
    of ``examples`` images of the first batch, successes then failures) or failed (``error``). Errors of the cell
    are caught and returned: one bad model must not stop a grid."""
    from safetensors.torch import save as save_tensors

    from robust.attacks import evaluate, make_attack
    from robust.attacks.cost import Passes
    from robust.data import label_source
    from robust.occlusion import run_evaluation
    from robust.realism import Realism
    from robust.registry import get

    base = {"key": cell.key, "model": cell.model, "task": cell.task.name, "kind": cell.task.kind, "seed": cell.seed,
            "config": cell.config(), "device": device, "versions": versions()}
    try:
        net = model(cell.spec, device, data_image_size(dataset(cell.dataset)))
        data = model_data(cell.dataset, net)
        if cell.task.kind == "evaluation":
            start = time.perf_counter()
            curve = run_evaluation(cell.task.method, net, data, samples=cell.samples, batch_size=cell.batch_size,
                                   seed=cell.seed, **cell.task.params)
            return {**base, "status": "done", "result": {**curve.to_dict(), "labels": label_source(data)},
                    "seconds": time.perf_counter() - start}
        train_start = time.perf_counter()
        if get(cell.task.method, "attack").trained:
            atk = _trained_attack(cell, net, progress)
        else:
            atk = make_attack(cell.task.method, **cell.task.params, seed=cell.seed)
        train_seconds = time.perf_counter() - train_start
        first: list = []
        outcomes: list = []
        meter = Realism()

        def inspect(x: torch.Tensor, y: torch.Tensor, res) -> None:
            if not first:
                first.append((x, y, res))
            if res.boxes is not None:  # a patch attack: how natural its patches look
                meter.update(x, res.x_adv, res.boxes)

        start, passes = time.perf_counter(), Passes()
        counts = evaluate(atk, net, data, samples=cell.samples, batch_size=cell.batch_size, inspect=inspect,
                          outcomes=outcomes, passes=passes)
        seconds = time.perf_counter() - start
        result = {**counts.to_dict(), "train_seconds": train_seconds, "passes": passes.to_dict(),
                  "per_image": _per_image(outcomes, net.num_classes),
                  "realism": meter.summary(cell.seed) if len(meter) else None, "labels": label_source(data),
                  "architecture": f"{type(net.net).__name__} ({net.family})",
                  "params": sum(t.numel() for t in net.net.parameters()),  # for the board's model card
                  "artifact": cell.artifact and {k: cell.artifact[k] for k in ("source", "name")}}
        figure = None
        if first and examples:
            figure, result["examples"] = _gallery(net, *first[0], examples)
        squares = save_tensors(meter.squares()) if cell.squares and len(meter) else None  # held-out detectors
        return {**base, "status": "done", "result": result, "seconds": seconds, "figure": figure, "squares": squares}
    except Exception as e:
        return {**base, "status": "failed", "error": f"{type(e).__name__}: {e}"}
