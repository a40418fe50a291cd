"""``load_model(spec)``: one front door for every source of image classifiers.

Specs: ``timm:NAME[?k=v&...]``, ``torchvision:NAME[?weights=...]``, ``robustbench:DATASET/THREAT/NAME``,
``zoo:DATASET/ARCH``, ``file:PATH[.safetensors|.pt][?arch=SPEC&k=v]`` and ``package.module:factory[?k=v]``.
Query values are parsed as bool / int / float / str and passed on as keyword arguments (for ``file:``, to the
architecture ``arch``), except ``input_size`` (``?input_size=3x32x32``, or ``32x32``, or ``32``), which every prefix
takes: the images the model is fed, for a model whose source does not say (a factory's plain module, a ``.pt`` file)
or says something else.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import inspect
import json
import os
import re
import socket
import sys
import warnings
from collections.abc import Iterator, MutableMapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

import torch
from torch import nn

from robust.checks import InputError, did_you_mean
from robust.checks import first_line as _first_line
from robust.data.imagenet import imagenet_class_names
from robust.data.preprocess import Preprocess, model_preprocess
from robust.device import resolve_device
from robust.models import zoo
from robust.models.backbone import Backbone, as_backbone
from robust.models.checkpoint import load_state, read_header, read_state_dict
from robust.registry import get as get_method

if TYPE_CHECKING:
    from types import ModuleType

PREFIXES = ("timm", "torchvision", "robustbench", "zoo", "file", "defense")
_FACTORY_RE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


_FRACTION_RE = re.compile(r"^\s*([-+]?\d+(?:\.\d*)?)\s*/\s*(\d+(?:\.\d*)?)\s*$")


def parse_value(v: str) -> object:
    """A query or ``--param`` value as bool, None, int, float, a fraction (``8/255`` -> 0.0314), a JSON list
    (``[0.1,0.3]``) or str.

    >>> parse_value("8/255") == 8 / 255, parse_value("true"), parse_value("0.5"), parse_value("gradcam")
    (True, True, 0.5, 'gradcam')
    """
    low = v.lower()
    if v.startswith("["):
        try:
            return json.loads(v)
        except json.JSONDecodeError:
            raise InputError(f"value {v!r} is not a valid list; expected JSON such as [0.1,0.3].") from None
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        with contextlib.suppress(ValueError):
            return cast(v)
    if (m := _FRACTION_RE.match(v)) and float(m[2]) != 0:  # a budget as it is written: eps=8/255
        return float(m[1]) / float(m[2])
    return v


def parse_input_size(value: object, where: str = "input_size") -> tuple[int, int, int]:
    """Read ``value`` as a (3, H, W) image size.

    One number is a square side; two are H and W; three are C, H and W, with C = 3.

    Args:
        value: ``'3x32x32'``, ``'32x32'``, ``32``, ``'32'`` or a sequence of 1-3 ints (``x`` separates the numbers of
            a string; case and spaces do not matter).
        where: what the message calls the value (``'--input-size'``, ``"model spec '...': input_size"``).

    Returns:
        (3, H, W).

    Raises:
        InputError: anything else: not 1-3 positive integers (a bool or a float is not one), or C other than 3.

    Examples:
        >>> from robust.models.specs import parse_input_size
        >>> parse_input_size("3x32x32"), parse_input_size(32), parse_input_size([40, 32])
        ((3, 32, 32), (3, 32, 32), (3, 40, 32))
        >>> parse_input_size("1x32x32", "--input-size")
        Traceback (most recent call last):
        robust.checks.InputError: --input-size='1x32x32' is not valid; expected 3 channels (3xHxW).
    """
    parts: object = value
    if isinstance(value, str):
        parts = value.lower().replace(" ", "").split("x")
    elif isinstance(value, int) and not isinstance(value, bool):
        parts = [value]
    try:
        if isinstance(parts, (str, bytes)) or not 1 <= len(parts) <= 3:  # type: ignore[arg-type]
            raise InputError
        size = [int(v) for v in parts]  # type: ignore[union-attr]
        if any(isinstance(v, (bool, float)) for v in parts) or min(size) < 1:  # type: ignore[union-attr]
            raise InputError
    except (TypeError, ValueError):
        raise InputError(f"{where}={value!r} is not valid; expected an image size such as 3x32x32, 32x32 or 32."
                         ) from None
    size = [size[0]] * 2 if len(size) == 1 else size
    if len(size) == 3 and size[0] != 3:
        raise InputError(f"{where}={value!r} is not valid; expected 3 channels (3xHxW).")
    return (3, *size[-2:])  # type: ignore[return-value]


def with_input_size(spec: str, size: object) -> str:
    """Set ``?input_size=3xHxW`` in ``spec``, replacing one it has.

    How a spec table's or the CLI's input size reaches the loader, and the cell key, as part of the spec. The
    spec's other options are kept, in order, and ``input_size`` comes last.

    Args:
        spec: a model spec.
        size: the image size, anything ``parse_input_size`` reads (``32``, ``[32, 32]``, ``'3x32x32'``).

    Returns:
        The spec with its input size.

    Raises:
        InputError: a size ``parse_input_size`` refuses.

    Examples:
        >>> from robust.models.specs import with_input_size
        >>> with_input_size("mymodel:small_cnn", [32, 32])
        'mymodel:small_cnn?input_size=3x32x32'
        >>> with_input_size("timm:resnet18?input_size=3x64x64&pretrained=false", 32)
        'timm:resnet18?pretrained=false&input_size=3x32x32'
    """
    c, h, w = parse_input_size(size)
    head, _, query = spec.partition("?")
    kept = [f"{k}={v}" for k, v in parse_qsl(query, keep_blank_values=True) if k != "input_size"]
    return f"{head}?{'&'.join([*kept, f'input_size={c}x{h}x{w}'])}"


def parse_spec(spec: str) -> tuple[str, str, dict[str, object]]:
    """Split a model spec ``prefix:body?k=v&...`` into its prefix, body and parsed options.

    The prefix is one of ``PREFIXES`` (``timm``, ``torchvision``, ``robustbench``, ``zoo``, ``file``, ``defense``;
    a defence's options end with ``base=SPEC``, read whole by ``load_model``), or
    ``'factory'`` for ``package.module:function`` with an importable module (found, not imported). Option values
    are parsed by ``parse_value`` (bool, None, int, float, a fraction such as ``8/255``, a JSON list, else text).

    Args:
        spec: the spec (surrounding spaces are ignored).

    Returns:
        (prefix, body, options); for a factory the body is ``package.module:function``.

    Raises:
        InputError: an empty spec, nothing after the prefix, an unknown prefix, or a factory whose module cannot be
            found.

    Examples:
        >>> from robust.models.specs import parse_spec
        >>> parse_spec("timm:resnet18?pretrained=false&num_classes=10&drop_rate=0.1")
        ('timm', 'resnet18', {'pretrained': False, 'num_classes': 10, 'drop_rate': 0.1})
        >>> parse_spec("robust.models.zoo.archs:resnet?num_classes=3")
        ('factory', 'robust.models.zoo.archs:resnet', {'num_classes': 3})
    """
    if not isinstance(spec, str) or not spec.strip():
        raise InputError(f"model spec {spec!r} is not valid; expected e.g. 'zoo:digits-m/resnet' or 'timm:resnet18'.")
    head, _, query = spec.strip().partition("?")
    opts = {k: parse_value(v) for k, v in parse_qsl(query, keep_blank_values=True)}
    prefix, sep, body = head.partition(":")
    if sep and prefix in PREFIXES:
        if not body:
            raise InputError(f"model spec {spec!r} has nothing after '{prefix}:'.")
        return prefix, body, opts
    if _FACTORY_RE.match(head):
        with contextlib.suppress(ImportError, ValueError):  # a module that cannot be found, or a bad name
            if importlib.util.find_spec(prefix) is not None:
                return "factory", head, opts
        raise InputError(f"model spec {spec!r} has an unknown prefix {prefix + sep!r} (expected one of "
                         f"{', '.join(p + ':' for p in PREFIXES)}), and as a factory 'module:function' its module "
                         f"{prefix!r} cannot be found on sys.path (add the folder that holds it to PYTHONPATH; the "
                         "robust command also looks in the current folder).")
    raise InputError(f"model spec {spec!r} has an unknown prefix {prefix + sep!r}; expected one of "
                     f"{', '.join(p + ':' for p in PREFIXES)} or 'package.module:factory' with an importable "
                     "module.")


def _cfg(net: nn.Module) -> dict:
    return dict(getattr(net, "pretrained_cfg", None) or getattr(net, "default_cfg", None) or {})


# --- timm -------------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub (``HF_ENDPOINT``'s host) answers a TCP connection within ``timeout`` seconds:
    asked once per process, so that an offline machine fails at once instead of after the hub's retries (~50 s)."""
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
    except (OSError, ValueError):
        return False
    return True


@contextlib.contextmanager
def _temporarily(mapping: MutableMapping, key: str, value: object) -> Iterator[None]:
    """``mapping[key] = value`` for the block, then the old value back (or the key removed if it had none)."""
    had, old = key in mapping, mapping.get(key)
    mapping[key] = value
    try:
        yield
    finally:
        if had:
            mapping[key] = old
        else:
            mapping.pop(key, None)


def _timm(name: str, opts: dict, weights: bool) -> tuple[nn.Module, dict]:
    import timm
    from huggingface_hub import constants

    if not timm.is_model(name):
        raise InputError(f"timm model {name!r} does not exist{did_you_mean(name, timm.list_models())}.")
    pretrained, checkpoint = bool(opts.pop("pretrained", True)), opts.pop("checkpoint", None)
    download = pretrained and weights and checkpoint is None
    offline = download and not _hub_reachable()  # then the hub's offline mode: cached weights load, others fail fast
    try:
        with _temporarily(vars(constants), "HF_HUB_OFFLINE", True) if offline else contextlib.nullcontext():
            net = timm.create_model(name, pretrained=download, **opts)
    except TypeError as e:
        raise InputError(f"timm model {name!r} does not accept the options {opts}: {_first_line(e)}") from None
    except Exception as e:  # download failures come as OSError, HTTP or hub errors
        where = "" if _hub_reachable() else " (the hub is unreachable: offline, only cached weights load)"
        raise InputError(f"timm:{name}: pretrained weights could not be loaded{where} ({_first_line(e)[:120]}); "
                         "pass ?pretrained=false for random weights or ?checkpoint=PATH for local weights.") from None
    if checkpoint is not None and weights:
        load_state(net, read_state_dict(checkpoint), repr(str(checkpoint)))
    cfg = _cfg(net)
    info = {"mean": cfg.get("mean", IMAGENET_MEAN), "std": cfg.get("std", IMAGENET_STD),
            "input_size": cfg.get("input_size", (3, 224, 224)), "preprocess": model_preprocess(cfg)}
    if "img_size" in opts:
        size = opts["img_size"]
        _, h, w = info["input_size"] = (3, *size) if isinstance(size, (tuple, list)) else (3, size, size)
        info["preprocess"] = Preprocess.for_size(h) if h == w else None
    if net.num_classes == 1000:
        info["class_names"] = imagenet_class_names()
    return net, info


# --- torchvision ------------------------------------------------------------------------------------------

def _torchvision(name: str, opts: dict, weights: bool) -> tuple[nn.Module, dict]:
    import torchvision.models as tvm

    if name not in tvm.list_models():
        raise InputError(f"torchvision model {name!r} does not exist{did_you_mean(name, tvm.list_models())}.")
    wname = opts.pop("weights", "DEFAULT")
    w = None
    if weights and wname is not None:  # building a bare architecture: never fetch weights
        try:
            w = tvm.get_model_weights(name)[str(wname)]  # DEFAULT is an alias among the enum's members
        except KeyError:
            options = [x.name for x in tvm.get_model_weights(name)]
            raise InputError(f"torchvision:{name}: weights={wname!r} is not valid; expected one of "
                             f"{['DEFAULT', *options, 'none']}.") from None
    try:
        net = tvm.get_model(name, weights=w, **opts)
    except TypeError as e:
        raise InputError(f"torchvision model {name!r} does not accept the options {opts}: {_first_line(e)}") from None
    except Exception as e:
        hub = Path(torch.hub.get_dir()) / "checkpoints"
        raise InputError(f"torchvision:{name}: weights {w} could not be loaded ({_first_line(e)}); offline, place "
                         f"{Path(w.url).name if w else 'the file'} in {hub} or pass ?weights=none.") from None
    side = getattr(net, "image_size", 224)  # torchvision ViTs record theirs
    info: dict = {"mean": IMAGENET_MEAN, "std": IMAGENET_STD, "input_size": (3, side, side)}
    if w is not None:
        t = w.transforms()
        crop = list(t.crop_size)
        info.update(mean=tuple(t.mean), std=tuple(t.std), input_size=(3, crop[0], crop[-1]),
                    class_names=list(w.meta["categories"]),
                    preprocess=Preprocess(crop[0], next(iter(t.resize_size)), t.interpolation.value)
                    if crop[0] == crop[-1] else None)
    elif opts.get("num_classes", 1000) == 1000:
        info["class_names"] = imagenet_class_names()
    return net, info


# --- robustbench ------------------------------------------------------------------------------------------

def import_robustbench() -> ModuleType:
    """Import robustbench 1.1.x, whose ``eval`` module imports ``autoattack`` while its dependency installs as
    ``pyautoattack``: alias the one as the other (only if ``autoattack`` itself is absent)."""
    if "autoattack" not in sys.modules:
        try:
            importlib.import_module("autoattack")
        except ModuleNotFoundError:
            pkg = importlib.import_module("pyautoattack")
            sys.modules["autoattack"] = pkg
            for sub in ("state", "autopgd_base", "fab_pt", "square", "other_utils", "checks"):
                with contextlib.suppress(ModuleNotFoundError):
                    sys.modules[f"autoattack.{sub}"] = importlib.import_module(f"pyautoattack.{sub}")
    with warnings.catch_warnings():  # robustbench imports pkg_resources and timm's deprecated paths
        warnings.simplefilter("ignore")
        return importlib.import_module("robustbench")


_RB_SIZES = {"cifar10": 32, "cifar100": 32, "imagenet": 224}


def _robustbench(body: str, opts: dict, weights: bool) -> tuple[nn.Module, dict]:
    parts = body.split("/")
    if len(parts) != 3:
        raise InputError(f"robustbench spec {body!r} is not valid; expected DATASET/THREAT/NAME, "
                         "e.g. cifar10/Linf/Standard.")
    dataset, threat, name = parts
    import_robustbench()
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    try:
        ds, tm = BenchmarkDataset(dataset), ThreatModel(threat)
    except ValueError:
        raise InputError(f"robustbench dataset/threat {dataset}/{threat} is not valid; expected a dataset in "
                         f"{[d.value for d in BenchmarkDataset]} and a threat in {[t.value for t in ThreatModel]}."
                         ) from None
    zoo_models = model_dicts[ds][tm]
    if name not in zoo_models:
        raise InputError(f"robustbench model {name!r} is not in the {dataset}/{threat} zoo"
                         f"{did_you_mean(name, list(zoo_models))}.")
    model_dir = Path(str(opts.pop("model_dir", "models")))
    if not weights:
        net = zoo_models[name]["model"]()
    else:
        from robustbench.utils import load_model as rb_load

        path = model_dir / dataset / threat / f"{name}.pt"
        ensemble = isinstance(zoo_models[name].get("gdrive_id"), list)
        present = path.with_name(f"{name}.pt_m0.pt").is_file() if ensemble else path.is_file()
        try:
            with _temporarily(os.environ, "TORCH_FORCE_WEIGHTS_ONLY_LOAD", "1"):
                net = rb_load(name, model_dir=model_dir, dataset=dataset, threat_model=threat)
        except Exception as e:
            why = "is present but could not be loaded" if present else "is missing and could not be downloaded"
            raise InputError(f"robustbench:{body}: checkpoint {str(path)!r} {why} ({_first_line(e)}); place the "
                             "checkpoint there or pass ?model_dir=DIR.") from None
    info: dict = {"input_size": (3, _RB_SIZES.get(dataset, 224), _RB_SIZES.get(dataset, 224))}
    if dataset == "cifar10":
        info["class_names"] = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                               "truck"]
    elif dataset == "imagenet":
        info["class_names"] = imagenet_class_names()
    return net, info  # robustbench models normalise inside: identity mean/std


# --- files, factories and the zoo --------------------------------------------------------------------------

def _factory(body: str, opts: dict, weights: bool) -> tuple[nn.Module, dict]:
    module_name, func_name = body.split(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # not found, or its own imports or code fail: say which and why, in one line
        raise InputError(f"model factory {body!r}: module {module_name!r} could not be imported "
                         f"({type(e).__name__}: {_first_line(e)}).") from None
    factory = getattr(module, func_name, None)
    if not callable(factory):
        names = [n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n, None))]
        raise InputError(f"model factory {body!r}: {module_name} has no callable {func_name!r}"
                         f"{did_you_mean(func_name, names)}.")
    try:  # against the signature: a TypeError raised inside the factory is the factory's bug, with its traceback
        inspect.signature(factory).bind(**opts)
    except TypeError as e:
        raise InputError(f"model factory {body!r} does not accept the options {opts}: {_first_line(e)}") from None
    except ValueError:  # a callable without a signature (a builtin): its call says what it takes
        pass
    net = factory(**opts)
    if isinstance(net, Backbone):
        return net, {}
    if not isinstance(net, nn.Module):
        raise InputError(f"model factory {body!r} returned a {type(net).__name__}; expected a torch.nn.Module.")
    cfg = _cfg(net)
    return net, {k: cfg[k] for k in ("input_size", "mean", "std") if k in cfg}


#: what an architecture recorded *in a file* may set: sizes and switches, never a path, a download or code
RECORDED_ARCH_OPTIONS = frozenset({"num_classes", "img_size", "in_chans", "global_pool", "drop_rate",
                                   "drop_path_rate", "class_token"})
_SAFE_TEXT = re.compile(r"^[\w.-]{1,64}$")


def check_recorded_arch(spec: object, source: str) -> None:
    """Refuse an architecture that a file names unless it is a timm, torchvision or robustbench name or a zoo
    architecture, with only ``RECORDED_ARCH_OPTIONS`` set to plain values. A file never names code to run (a
    ``module:function`` would be imported and called); that takes the user's own ``?arch=`` in the spec. Checked
    on the text, before anything is imported."""
    from robust.models.zoo.archs import ARCHS

    if not isinstance(spec, str):
        raise InputError(f"{source} records the architecture {spec!r}; expected a text spec.")
    head, _, query = spec.partition("?")
    prefix = head.partition(":")[0]
    zoo_arch = head in {f"robust.models.zoo.archs:{name}" for name in ARCHS}
    if prefix not in ("timm", "torchvision", "robustbench") and not zoo_arch:
        raise InputError(f"{source} records the architecture {head!r}, which is not an allowed one (timm:NAME, "
                         "torchvision:NAME, robustbench:... or a zoo architecture); a file may not name code to run. "
                         "If you trust it, pass the architecture yourself: 'file:PATH?arch=SPEC'.")
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in RECORDED_ARCH_OPTIONS or not _SAFE_TEXT.match(value):
            raise InputError(f"{source} records the architecture option {key}={value[:40]!r}, which a file may not "
                             f"set; expected only {sorted(RECORDED_ARCH_OPTIONS)} with plain values (pass "
                             "'file:PATH?arch=SPEC' yourself if you trust it).")


def build_architecture(spec: str, **options: object) -> tuple[nn.Module, dict]:
    """Build the bare ``nn.Module`` of ``spec`` and ``options`` to read a checkpoint into, and what it says of itself.

    timm and robustbench architectures are built with random weights (nothing downloaded), torchvision's without
    weights; a factory is called with the options (its own code decides its weights). ``spec`` is trusted: the caller
    checks an architecture that comes from a file with ``check_recorded_arch`` first.

    Args:
        spec: a ``timm:``, ``torchvision:``, ``robustbench:`` or ``package.module:factory`` spec.
        **options: keyword arguments for the architecture, over the spec's own options (e.g. ``num_classes=10``).

    Returns:
        The network and what it says of itself: some of ``input_size``, ``mean``, ``std``, ``class_names`` and
        ``preprocess`` (all that ``described`` gives, when a factory returns a ``Backbone``, whose network is
        returned).

    Raises:
        InputError: a ``zoo:``, ``file:`` or ``defense:`` spec, an unknown architecture, or options it does not
            accept.

    Examples:
        >>> from robust.models.specs import build_architecture
        >>> net, info = build_architecture("timm:resnet18", num_classes=10)
        >>> type(net).__name__, net.num_classes, info["input_size"], info["mean"]
        ('ResNet', 10, (3, 224, 224), (0.485, 0.456, 0.406))
    """
    prefix, body, opts = parse_spec(spec)
    opts.update(options)
    if prefix in ("zoo", "file", "defense"):
        raise InputError(f"arch spec {spec!r} is not valid; an architecture is a timm:, torchvision:, robustbench: "
                         "or package.module:factory spec.")
    net, info = _LOADERS[prefix](body, opts, False)
    return (net.net, described(net)) if isinstance(net, Backbone) else (net, info)


def described(model: Backbone) -> dict:
    """What a Backbone says of its network beyond the weights (size, normalisation, classes, family, Grad-CAM
    layer, preprocessing): kept when its network is re-wrapped (a factory's Backbone under ``file:?arch=``)."""
    return {"input_size": model.input_size, "mean": model.mean, "std": model.std, "class_names": model.class_names,
            "num_classes": model.num_classes, "family": model.family, "cam_layer": model.cam_layer_name,
            "preprocess": model.preprocess, "name": model.name}


def _file(body: str, opts: dict, input_size: Sequence[int] | None = None) -> Backbone:
    path = Path(body).expanduser()
    if not path.is_file():
        raise InputError(f"model file {str(path)!r} does not exist.")
    arch = opts.pop("arch", None)
    if path.suffix == ".safetensors" and arch is None:
        meta = read_header(path)
        check_recorded_arch(meta["arch"], f"checkpoint {str(path)!r}")
        if opts:
            raise InputError(f"model file {str(path)!r} takes no options {sorted(opts)}; its architecture is "
                             "recorded in the file (pass ?arch=SPEC to override it).")
    elif arch is None:
        raise InputError(f"model file {str(path)!r} does not record its architecture; pass it as "
                         f"'file:{body}?arch=SPEC' (e.g. arch=timm:resnet18&num_classes=10) or save it as "
                         ".safetensors.")
    else:
        meta = {"arch": str(arch), "name": f"file:{path.name}"}
    net, info = build_architecture(meta["arch"], **opts)  # further options belong to the architecture
    load_state(net, read_state_dict(path), repr(str(path)))
    return _backbone(net, {**info, **meta}, spec=f"file:{body}", input_size=input_size)


def _backbone(net: nn.Module, info: dict, spec: str, input_size: Sequence[int] | None = None) -> Backbone:
    size = tuple(info.get("input_size") or input_size or (3, 224, 224))
    preprocess = info.get("preprocess")
    if preprocess is not None and size != (3, preprocess.size, preprocess.size):  # a transform for another size
        preprocess = None
    return Backbone(net, name=info.get("name", spec), spec=spec, input_size=size, preprocess=preprocess,
                    mean=info.get("mean", (0.0, 0.0, 0.0)), std=info.get("std", (1.0, 1.0, 1.0)),
                    class_names=info.get("class_names"), num_classes=info.get("num_classes"),
                    family=info.get("family"), cam_layer=info.get("cam_layer"))


_BASE = re.compile(r"(?:^|&)base=")


def defended_parts(spec: str) -> tuple[str, dict, str]:
    """The parts of a defended model's spec ``defense:NAME?OPTIONS&base=SPEC``: the defence's name, its options
    (values parsed) and the base model's spec (the rest of the string, its own options included). Nothing is loaded.

    Raises:
        InputError: a spec that names no base model.

    Examples:
        >>> from robust.models.specs import defended_parts
        >>> defended_parts("defense:patchcleanser?area=0.02&k=4&base=zoo:digits-m/resnet?input_size=3x32x32")
        ('patchcleanser', {'area': 0.02, 'k': 4}, 'zoo:digits-m/resnet?input_size=3x32x32')
    """
    head, _, query = spec.strip().partition("?")
    found = _BASE.search(query)
    if not head.startswith("defense:") or found is None or not query[found.end():]:
        raise InputError(f"model spec {spec!r} names no base model; expected 'defense:NAME?OPTIONS&base=SPEC' with "
                         "base= last, e.g. 'defense:patchcleanser?area=0.02&base=zoo:digits-m/resnet'.")
    opts = {k: parse_value(v) for k, v in parse_qsl(query[:found.start()], keep_blank_values=True)}
    return head.partition(":")[2], opts, query[found.end():]


def _defended(spec: str, device: str | torch.device | None) -> Backbone:
    """``defense:NAME?OPTIONS&base=SPEC``: the registered defence ``NAME`` built around the model ``SPEC`` with
    ``OPTIONS``."""
    name, opts, base = defended_parts(spec)
    method = get_method(name, "defense")  # a registered class, never a name imported
    return method.make(load_model(base, device), **opts).eval()


_LOADERS = {"timm": _timm, "torchvision": _torchvision, "robustbench": _robustbench, "factory": _factory}


def load_model(spec: str | nn.Module, device: str | torch.device | None = None, *,
               input_size: Sequence[int] | None = None) -> Backbone:
    """Load the classifier named by ``spec`` as a ``Backbone``, in eval mode.

    A spec names where the model comes from: ``zoo:digits-m/resnet``, ``timm:NAME``, ``torchvision:NAME``,
    ``robustbench:DATASET/THREAT/NAME``, ``file:PATH.safetensors``, ``file:PATH.pt?arch=SPEC`` or your own
    ``package.module:factory`` (the table is in the models guide); every spec takes ``?input_size=3x32x32``, which
    overrides any other size. ``defense:NAME?OPTIONS&base=SPEC`` wraps the model ``SPEC`` (the rest of the string)
    in a registered defence (``robust.defenses``), e.g. ``defense:patchcleanser?area=0.02&base=zoo:digits-m/resnet``.

    Args:
        spec: a model spec, or a module: a ``Backbone`` is returned as it is; a plain ``nn.Module`` is wrapped
            for images of ``input_size`` (its own timm configuration's when it has one), keeps its device unless
            ``device`` is given and keeps its training mode (attacks and evaluations switch to eval mode and back).
        device: where to put it (``"cpu"``, ``"cuda:1"``...); None: a CUDA GPU when there is one, else the CPU.
        input_size: (C, H, W) of the images for a source that does not say its own (a plain module, a factory's
            plain module, a ``.pt`` file under ``?arch=``): pass the data's. A zoo, timm, torchvision or
            robustbench model, a factory's ``Backbone`` and a robust checkpoint keep their own.

    Returns:
        The model, with its family, Grad-CAM layer and preprocessing detected.

    Raises:
        InputError: an unknown source or name, a file that fails its checks, or weights that are not there
            (downloads fail in one line when offline).

    Examples:
        >>> from robust.models import load_model
        >>> model = load_model("zoo:digits-m/resnet", "cpu")
        >>> model.family, model.input_size, model.num_classes
        ('cnn', (3, 32, 32), 10)
    """
    if isinstance(spec, nn.Module):
        cfg = {} if isinstance(spec, Backbone) else _cfg(spec)  # a timm module says its size and normalisation
        model = as_backbone(spec, input_size or cfg.get("input_size"), name="load_model's spec",
                            mean=cfg.get("mean", (0.0, 0.0, 0.0)), std=cfg.get("std", (1.0, 1.0, 1.0)))
        return model if device is None else model.to(resolve_device(device))
    dev = resolve_device(device or "auto")
    prefix, body, opts = parse_spec(spec)
    if prefix == "defense":
        return _defended(spec.strip(), dev)
    explicit = opts.pop("input_size", None)
    if explicit is not None:
        input_size = parse_input_size(explicit, f"model spec {spec!r}: input_size")
    if prefix == "zoo":
        path, info = zoo.resolve(body)
        if path is None:  # a zoo model built from a package's weights rather than a file of ours (timm's network)
            net = zoo.build(body).to(dev)
            model = _backbone(net, {**info, "preprocess": model_preprocess(_cfg(net))}, spec=spec)
        else:
            model = _file(str(path), {}).to(dev)
            model.spec = spec
    elif prefix == "file":
        model = _file(body, opts, input_size).to(dev)
    else:
        net, info = _LOADERS[prefix](body, opts, True)
        model = (net.to(dev) if isinstance(net, Backbone)
                 else _backbone(net.to(dev).eval(), info, spec=spec, input_size=input_size))
    if explicit is not None and model.input_size != input_size:  # the user's word over the source's
        model = _backbone(model.net, {**described(model), "input_size": input_size}, spec=spec)
    return model.to(dev).eval()
