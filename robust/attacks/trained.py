"""Patch attacks trained before use: the workflow written once, each attack overriding only its state and its
training loop (as pytorch-grad-cam's ``BaseCAM`` does for CAM methods).

The base owns the configuration a checkpoint records, ``save`` / ``load`` (safetensors + JSON beside it, both
atomic; the JSON is read as untrusted input), the refusal of options a checkpoint fixes, the resume file of an
interrupted ``fit`` and the artifact cache of the runner. A subclass sets ``name``, ``fixed_params`` (options
that define the trained state), ``training_params`` (options training also depends on), ``resumable``, and
implements ``fit`` (starting with ``self._begin_fit``), ``state`` and ``set_state``.
"""

from __future__ import annotations

import abc
import functools
import json
import math
import os
from pathlib import Path

import torch

from robust.attacks.artifacts import check_config, config_path, read_config, record_cached, verify_cached
from robust.attacks.base import PatchAttack, check_protocol, check_training
from robust.checks import InputError, check_positive_int, value_kind
from robust.data.base import ImageSet
from robust.device import to_device
from robust.io import atomic_path, atomic_write_text
from robust.models.backbone import Backbone
from robust.models.checkpoint import read_state_dict
from robust.targets import TARGET_SETS

MAX_CLASSES, MAX_CHANNELS, MAX_SIDE = 1_000_000, 16, 16_384  # bounds on sizes a checkpoint's JSON may state


class TrainedPatchAttack(PatchAttack):
    """The base of patch attacks with trained state (a generator, universal patches): ``fit`` or ``load``, then call.

    A subclass implements ``fit``, ``state`` and ``set_state``; the base saves the tensors as safetensors beside a
    JSON of the configuration, and ``load`` checks that file against what the attack was trained for (no code named
    by a file is ever imported).

    Args:
        **patch_params: the options of every patch attack (``PatchAttack``).

    Shape:
        As ``Attack``.

    Examples:
        >>> from robust import load_dataset, load_model, make_attack
        >>> model, data = load_model("zoo:digits-m/resnet", "cpu"), load_dataset("digits-m", "train")
        >>> patches = make_attack("universal-patch", area=0.12).fit(model, data, steps=2, batch_size=8)
        >>> patches.save("patches.safetensors")
        >>> type(patches).load("patches.safetensors", placement="random").placement
        'random'
    """

    #: whether ``fit(..., resume=PATH)`` continues an interrupted run from its last checkpoint
    resumable = False
    #: options that define the trained state: refused as ``load`` overrides
    fixed_params: frozenset[str] = frozenset({"area", "shape"})
    #: further options that training depends on (recorded, and compared when a saved artifact is reused)
    training_params: frozenset[str] = frozenset()
    #: recorded options added after artifacts were saved without them: a record that lacks one was trained at its
    #: default (the option did not exist yet), so shipped files keep their digests and still load and match
    later_params: frozenset[str] = frozenset()

    def __init_subclass__(cls, **kwargs: object):
        """A subclass's own ``fit`` is wrapped so that options a call leaves out come from ``recipe`` first, then from
        the subclass's keyword defaults: ``make_attack("gan-patch-whole-12pct").fit(model, data)`` trains with the
        preset's ``[train]`` table, as a board and ``robust attack train`` do, not with ``fit``'s bare defaults."""
        super().__init_subclass__(**kwargs)
        if "fit" in cls.__dict__ and not getattr(cls.__dict__["fit"], "__isabstractmethod__", False):
            own = cls.__dict__["fit"]

            @functools.wraps(own)
            def fit(self: TrainedPatchAttack, victims: Backbone | list[Backbone], data: ImageSet,
                    **options: object) -> TrainedPatchAttack:
                return own(self, victims, data, **{**self.recipe, **options})

            cls.fit = fit

    def __init__(self, **patch_params: object):
        super().__init__(**patch_params)
        #: training options ``fit`` uses where a call does not give them (a preset's ``[train]`` table, set by
        #: ``make_attack``); empty: ``fit``'s own defaults
        self.recipe: dict[str, object] = {}
        self.num_classes: int | None = None
        self.image_size: tuple[int, int, int] | None = None
        self.training: dict = {}
        self.history: list[dict] = []
        self._rows: tuple[tuple, torch.Tensor] | None = None  # class_rows' lookup and what it was built for

    # -- what each attack provides -----------------------------------------------------------------------------

    @abc.abstractmethod
    def state(self) -> dict[str, torch.Tensor] | None:
        """The trained tensors (None before ``fit``)."""

    @abc.abstractmethod
    def set_state(self, state: dict[str, torch.Tensor], where: str) -> None:
        """Adopt tensors read from the file ``where`` for ``self.num_classes`` and ``self.image_size``, after
        checking their names and shapes (a ValueError naming ``where`` otherwise)."""

    # -- configuration -----------------------------------------------------------------------------------------

    @classmethod
    def recorded_params(cls) -> tuple[str, ...]:
        """The constructor options a checkpoint records: what training depends on, the placement and the seed."""
        return tuple(sorted(cls.fixed_params | cls.training_params | {"placement", "stride", "seed"}))

    @classmethod
    def with_defaults(cls, config: dict) -> dict:
        """``config`` with each of ``later_params`` it lacks at the constructor's default."""
        from robust.registry import get

        params = get(cls.name, "attack").params()
        return {**{k: params[k].default for k in cls.later_params}, **config}

    # -- target protocols --------------------------------------------------------------------------------------

    def trained_target(self) -> str | int:
        """The targets training draws: the attack's ``target`` protocol (a named set such as ``n8``, or one class),
        else random ones (``least-likely`` too: a patch for any class serves it). Recorded in ``training["target"]``
        when not random, and compared by ``matches``."""
        return "random" if self.target_mode in ("random", "least-likely") else self.target_mode

    def protocol_classes(self) -> tuple[int, ...] | None:
        """The classes the trained state holds a row for (a patch, a generator's class embedding): those of the
        target protocol it was trained for (``training["target"]``), or None for every class. A generator for N8
        holds 8 rows, not 1,000: its files and resume files are megabytes, not tens of them."""
        mode = self.training.get("target", "random")
        if isinstance(mode, str) and mode in TARGET_SETS:
            return TARGET_SETS[mode][0]
        return (mode,) if isinstance(mode, int) and not isinstance(mode, bool) else None

    def class_rows(self, target: torch.Tensor, *, check: bool = False) -> torch.Tensor:
        """The row of the trained state that serves each target class (the class itself without a protocol).

        Args:
            target: target classes, N (long).
            check: raise if a target has no row (one host sync: at an attack's call, never inside a step).

        Returns:
            N row indices on ``target``'s device (-1 where a target has none, when not checked).

        Raises:
            InputError: with ``check``, a target outside the protocol's classes.
        """
        classes = self.protocol_classes()
        if classes is None:
            return target
        key = (classes, self.num_classes, target.device)
        if self._rows is None or self._rows[0] != key:  # built once, not at every training step
            lookup = torch.full((self.num_classes,), -1, dtype=torch.long)
            lookup[list(classes)] = torch.arange(len(classes))
            self._rows = key, to_device(lookup, target.device)
        rows = self._rows[1][target]
        if check and bool((rows < 0).any()):
            raise InputError(f"{self.name} was trained for the target protocol {self.training['target']!r} (classes "
                             f"{list(classes)}); targets {sorted(set(target[rows < 0].tolist()))} have no patch. "
                             f"Expected target={self.training['target']!r}, the protocol it was trained for.")
        return rows

    def config(self) -> dict:
        """What ``save`` writes beside the tensors (JSON)."""
        options = {k: list(v) if isinstance(v, tuple) else v
                   for k in self.recorded_params() for v in [getattr(self, k)]}
        side = self.side_for(self.image_size) if self.image_size else None
        return {"format": f"robust-{self.name}/1", "attack": self.name, **options, "num_classes": self.num_classes,
                "image_size": list(self.image_size or ()), "patch_side": side, "training": self.training,
                "history": self.history}

    def matches(self, config: dict, train: dict | None = None) -> bool:
        """Whether a saved configuration was trained as this attack would train it with the training options
        ``train`` (unset ones at ``fit``'s defaults; None: do not compare training options)."""
        from robust.registry import get

        mine, config = self.config(), self.with_defaults(config)
        if not all(config.get(k) == mine[k] for k in self.fixed_params | self.training_params | {"placement", "seed"}):
            return False
        if (config.get("training") or {}).get("target", "random") != self.trained_target():
            return False  # trained for another target protocol (N8's eight classes are not 1,000 random ones)
        if train is None:
            return True
        recorded = config.get("training") or {}
        # an option missing from an older record was trained at its default (it did not exist yet)
        return all(recorded.get(k, p.default) == (list(v) if isinstance(v, tuple) else v)
                   for k, p in get(self.name, "attack").train_options().items() for v in [train.get(k, p.default)])

    # -- save and load -----------------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """``path`` (.safetensors) with the trained tensors and ``path`` + ``.json`` with the configuration."""
        from safetensors.torch import save_file

        state = self.state()
        if state is None:
            raise InputError(f"{self.name} has nothing to save; call fit() first.")
        path = Path(path)
        with atomic_path(path) as tmp:
            save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(tmp),
                      metadata={"format": f"robust-{self.name}/1"})
        atomic_write_text(config_path(path), json.dumps(self.config(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike, *, num_classes: int | None = None,
             image_size: tuple[int, int, int] | None = None, **overrides: object) -> TrainedPatchAttack:
        """An attack saved by ``save``. ``num_classes`` / ``image_size`` (when given) must match what it was
        trained for; ``overrides`` set attack-time options (``placement``, ``seed``, ...), and may repeat a fixed one's
        recorded value, never change it. An attack trained for a target protocol (``training["target"]``, e.g.
        ``n8``) takes it as its ``target`` unless ``overrides`` name another."""
        from robust.registry import get

        path = Path(path)
        where = repr(str(path))
        cfg = cls.with_defaults(read_config(path, cls.name, "attack", cls.name))
        if cfg.get("format", f"robust-{cls.name}/1") != f"robust-{cls.name}/1":
            raise InputError(f"{cls.name} checkpoint {where} has format {cfg['format']!r}; expected "
                             f"'robust-{cls.name}/1'.")
        defaults = get(cls.name, "attack").params()
        check_config(cfg, {"num_classes": (int,), "image_size": (list,),
                           **{k: (value_kind(defaults[k].default) or ((object,), ""))[0]
                              for k in cls.recorded_params()}}, path)
        size = tuple(cfg["image_size"])
        size = (3, *size) if len(size) == 2 else size  # universal patches saved before (C, H, W) was recorded
        if not (2 <= cfg["num_classes"] <= MAX_CLASSES and len(size) == 3
                and all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_SIDE for v in size)
                and size[0] <= MAX_CHANNELS):
            raise InputError(f"{cls.name} checkpoint {where} records num_classes={cfg['num_classes']!r}, image_size="
                             f"{cfg['image_size']!r}; expected 2 to {MAX_CLASSES} classes and (C, H, W) with at most "
                             f"{MAX_CHANNELS} channels and {MAX_SIDE} px a side (sizes are bounded before anything "
                             "is built from them).")
        if num_classes is not None and cfg["num_classes"] != num_classes:
            raise InputError(f"{cls.name} checkpoint {where} was trained for {cfg['num_classes']} classes; expected "
                             f"{num_classes}.")
        if image_size is not None and size != tuple(image_size):
            raise InputError(f"{cls.name} checkpoint {where} was trained on {size} images; expected "
                             f"{tuple(image_size)}.")
        if bad := sorted(k for k in cls.fixed_params & set(overrides) if overrides[k] != cfg[k]):
            recorded = ", ".join(f"{k}={cfg[k]!r}" for k in bad)
            raise InputError(f"{bad} are fixed by the checkpoint {where} ({recorded}); expected attack-time options "
                             "only.")
        training = cfg["training"] if isinstance(cfg.get("training"), dict) else {}
        target, n_classes = training.get("target", "random"), cfg["num_classes"]
        try:
            check_protocol(target, n_classes)
        except InputError as e:
            raise InputError(f"{cls.name} checkpoint {where} records a target protocol it cannot have: {e}") from None
        protocol = {} if target == "random" or "target" in overrides else {"target": target}  # its own, by default
        attack = cls(**{**{k: cfg[k] for k in cls.recorded_params()}, **protocol, **overrides})
        attack.num_classes, attack.image_size = n_classes, size
        attack.history = cfg["history"] if isinstance(cfg.get("history"), list) else []
        attack.training = training
        attack.set_state(read_state_dict(path), where)  # its shapes follow the protocol's classes
        return attack

    # -- training ----------------------------------------------------------------------------------------------

    def _begin_fit(self, victims: Backbone | list[Backbone], data: ImageSet, train_samples: int | None,
                   options: dict) -> tuple[list[Backbone], ImageSet]:
        """Check the victims and data, keep the first ``train_samples`` images, record the training options and the
        target protocol it trains for (``trained_target``, when not random), whose classes the data must have."""
        victims = check_training(victims, data)
        if train_samples is not None:
            data = data.subset(slice(0, check_positive_int(train_samples, "train_samples")))
        self.num_classes, self.image_size = data.num_classes, tuple(data.image_size)
        self.side_for(self.image_size)  # the area must give a patch that fits these images
        target = self.trained_target()
        check_protocol(target, data.num_classes)
        self.training = {"victims": [m.spec for m in victims], "data": data.name, **options,
                         **({"target": target} if target != "random" else {})}
        self.history = []
        return victims, data

    def _resumed(self, path: Path | None) -> dict | None:
        """The state a resume file holds for this configuration (None when there is none yet); the attack's
        generator and history continue from it."""
        if path is None or not path.exists():
            return None
        state = torch.load(path, map_location="cpu", weights_only=True)

        def comparable(cfg: dict) -> dict:  # a resumed run may ask for more epochs (or steps, on that schedule)
            grows = "steps" if "steps" in cfg["training"] else "epochs"
            return {**cfg, "history": None, "training": {**cfg["training"], grows: None, "cooldown": None}}

        def decays_from(training: dict) -> float:  # the first step of a schedule's cooldown (none: never)
            return training["steps"] - training["cooldown"] if training.get("cooldown") else math.inf

        saved, wanted = self.with_defaults(json.loads(state["config"])), self.config()  # older files: at defaults
        if comparable(saved) != comparable(wanted):
            raise InputError(f"resume file {str(path)!r} was written for another configuration; expected the same "
                             "attack, data and training options (delete it to start over).")
        old, new = saved["training"], wanted["training"]
        if "steps" in old and (old["steps"], old.get("cooldown")) != (new["steps"], new.get("cooldown")) and \
                int(state["step"]) > min(decays_from(old), decays_from(new)):
            raise InputError(
                f"resume file {str(path)!r} stopped at step {int(state['step'])} of steps={old['steps']}, cooldown="
                f"{old.get('cooldown', 0)}, where the asked schedule (steps={new['steps']}, cooldown="
                f"{new.get('cooldown', 0)}) has another learning rate; expected the same schedule, or a cooldown "
                "that starts at or after the step the file reached.")
        self.generator.set_state(state["rng"])
        self.history = saved["history"]
        return state

    def _save_resume(self, path: Path, **state: object) -> None:
        """Write the training state (with this attack's configuration and generator) to the resume file."""
        with atomic_path(path) as tmp:
            torch.save({"config": json.dumps(self.config()), "rng": self.generator.get_state(), **state}, tmp)

    def train_cached(self, path: Path, victims: Backbone | list[Backbone], data: ImageSet, train: dict,
                     progress: bool = False) -> None:
        """The artifact cache: an artifact at ``path`` is checked against the digests recorded beside it; a missing
        one is trained with ``train`` (resumably, when the attack can), saved and its digests recorded."""
        path = Path(path)
        if path.exists():
            verify_cached(path)
            return
        resume = path.with_suffix(".resume.pt") if self.resumable else None
        self.fit(victims, data, progress=progress, **train, **({"resume": resume} if resume else {}))
        self.save(path)
        record_cached(path)
        if resume is not None:
            resume.unlink(missing_ok=True)

    @abc.abstractmethod
    def fit(self, victims: Backbone | list[Backbone], data: ImageSet, **options: object) -> TrainedPatchAttack:
        """Train against ``victims`` on ``data``; its keyword options are the attack's training options."""
