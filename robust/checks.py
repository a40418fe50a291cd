"""Argument checks shared by every public entry point: one sentence naming argument, value and expectation.

A leaf: it imports nothing of robust's and loads torch only inside the checks of tensors, so the lightest module
(the CLI's option parsing, the registry) can raise ``InputError``."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


class InputError(ValueError):
    """Bad input: an argument, option, spec, file or model that is not what was expected.

    Every check raises it with one sentence naming the argument, the value and what was expected; the ``robust``
    command prints it as one line and exits with code 2, while any other exception (a bug) keeps its traceback. It
    is a ``ValueError``, so code that caught those still does.

    Examples:
        >>> from robust import InputError, make_attack
        >>> try:
        ...     make_attack("lavan", steps=0)
        ... except InputError as e:
        ...     print(e)
        steps=0 is not valid; expected a positive integer.
    """


def first_line(e: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (its type when it has none), for a one-line error."""
    text = str(e).strip()
    return text.splitlines()[0][:limit] if text else type(e).__name__


def did_you_mean(name: object, choices: object) -> str:
    """``" (did you mean a, b?)"`` for the close matches of ``name`` among ``choices``, or ``""``: what follows
    "is unknown" in an unknown-name error.

    >>> "'lavan-12pcx' is unknown" + did_you_mean("lavan-12pcx", ["lavan-12pct", "lavan-8pct", "pgd-linf-8"])
    "'lavan-12pcx' is unknown (did you mean lavan-12pct, lavan-8pct?)"
    """
    import difflib

    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=5, cutoff=0.6)  # type: ignore[union-attr]
    return f" (did you mean {', '.join(close)}?)" if close else ""


#: seeds are unsigned 64-bit integers (what ``torch.Generator.manual_seed`` and numpy take)
SEED_LIMIT = 2**64


def check_keys(keys: Iterable[str], valid: Iterable[str], where: str) -> None:
    """Refuse a key outside ``valid``: one sentence naming ``where``, the first unknown key and the valid ones."""
    if bad := sorted(set(keys) - set(valid)):
        raise InputError(f"{where}: key {bad[0]!r} is unknown{did_you_mean(bad[0], valid)}; expected one of "
                         f"{sorted(valid)}.")


def value_kind(default: object) -> tuple[tuple[type, ...], str] | None:
    """The types a value of the kind of a parameter's ``default`` may have, and how to say it (bool is not a
    number); None for a default of no checked kind (None, or an object)."""
    for kind, types, what in ((bool, (bool,), "true or false"), (int, (int,), "an integer"),
                              (float, (int, float), "a finite number"), ((tuple, list), (tuple, list), "a list"),
                              (str, (str,), "a string")):
        if isinstance(default, kind):
            return types, what
    return None


def check_images(x: object, name: str = "x", channels: int = 3) -> torch.Tensor:
    """Require a float tensor N x C x H x W with values in [0, 1] and no NaN; return it unchanged."""
    import torch

    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of images, got {type(x).__name__}.")
    if x.ndim != 4:
        raise InputError(f"{name} has shape {tuple(x.shape)}; expected a batch N x {channels} x H x W.")
    if not x.is_floating_point():
        raise TypeError(f"{name} has dtype {x.dtype}; expected float images in [0, 1] (divide uint8 images by 255).")
    if x.shape[1] != channels:
        raise InputError(f"{name} has {x.shape[1]} channel(s) (shape {tuple(x.shape)}); expected {channels} (RGB).")
    if x.numel():
        lo, hi = torch.aminmax(x.detach())
        lo, hi = float(lo), float(hi)  # one host sync for the whole check
        if lo != lo or hi != hi:
            raise InputError(f"{name} contains NaN values; expected finite images in [0, 1].")
        if lo < -1e-6 or hi > 1 + 1e-6:
            raise InputError(f"{name} has values in [{lo:.4g}, {hi:.4g}]; expected images in [0, 1].")
    return x


def check_labels(y: object, num_classes: int, n: int | None = None, name: str = "y") -> torch.Tensor:
    """Require an integer tensor of class indices in [0, num_classes), of length ``n`` when given."""
    import torch

    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of class indices, got {type(y).__name__}.")
    if y.ndim != 1 or y.is_floating_point() or y.dtype == torch.bool:
        raise InputError(f"{name} has shape {tuple(y.shape)} and dtype {y.dtype}; expected a 1-D integer tensor.")
    if n is not None and y.shape[0] != n:
        raise InputError(f"{name} has {y.shape[0]} labels; expected {n}, one per image.")
    if y.numel():
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= num_classes:
            bad = lo if lo < 0 else hi
            raise InputError(f"{name} contains class {bad}; expected classes in [0, {num_classes - 1}].")
    return y


def _bounds(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"a finite number {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"a finite number {'<' if high_open else '<='} {high:g}"
    return "a finite number"


def check_number(value: object, name: str, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False, expected: str | None = None) -> float:
    """Require a finite real number (not a bool, not NaN or infinite) within the bounds given; return it as a
    float. ``expected`` replaces the generated description of what is valid."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok and not isinstance(value, numbers.Integral):
        ok = math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        expected = expected or _bounds(low, high, low_open, high_open)
        raise InputError(f"{name}={value!r} is not valid; expected {expected}.")
    return float(value)


def check_int(value: object, name: str, *, low: int | None = None, high: int | None = None,
              expected: str | None = None) -> int:
    """Require an integer (not a bool) in [low, high] where given; return it as an int."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if ok and low is not None:
        ok = value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        if expected is None:
            span = f" in [{low}, {high}]" if low is not None and high is not None else \
                f" >= {low}" if low is not None else f" <= {high}" if high is not None else ""
            expected = f"an integer{span}"
        raise InputError(f"{name}={value!r} is not valid; expected {expected}.")
    return int(value)


def check_positive_int(value: object, name: str) -> int:
    """Require a positive integer (not a bool); return it."""
    return check_int(value, name, low=1, expected="a positive integer")


def check_choice(value: object, choices: Iterable[object], name: str) -> object:
    """Require one of ``choices``; return it."""
    if value not in tuple(choices):
        raise InputError(f"{name}={value!r} is not valid; expected one of {tuple(choices)}.")
    return value


def check_seed(value: object, name: str = "seed") -> int:
    """Require a seed: a non-negative integer below 2**64 (not a bool); return it."""
    return check_int(value, name, low=0, high=SEED_LIMIT - 1, expected="an integer in [0, 2**64)")


def check_samples(samples: object, data: object, name: str = "samples") -> int | None:
    """``samples`` (None: all) as a count no larger than ``data``: asking for more images than a split has is an
    error, never a silent cap (a figure over 500 images must not quietly be one over 300)."""
    if samples is None:
        return None
    check_int(samples, name, low=1, expected="a positive integer or None (all)")
    n = len(data)  # type: ignore[arg-type]
    if samples > n:
        where = getattr(data, "name", type(data).__name__)
        raise InputError(f"{name}={samples!r} is not valid: it is more than the {n} images of {where!r}; expected "
                         f"at most {n} (or None: all of them).")
    return samples


def data_image_size(data: object) -> tuple[int, ...]:
    """(C, H, W) of a dataset's images: an in-memory set says it; any other dataset decodes its first item."""
    size = getattr(data, "image_size", None)
    if size is None:
        if len(data) == 0:  # type: ignore[arg-type]
            raise InputError(f"dataset {getattr(data, 'name', type(data).__name__)!r} is empty; expected images.")
        size = data[0][0].shape  # type: ignore[index]
    return tuple(int(v) for v in size)


#: datasets whose images have one size (the others are photos, resized for each model)
FIXED_SIZE_DATA = ("digits-m",)


def check_matches(model: object, data: object) -> None:
    """The model takes the data's images and predicts its classes: one sentence, before any work, otherwise (a ViT
    fed images of another size fails deep inside; a 1,000-class head on 10-class data reports 0 %)."""
    name, where = getattr(model, "name", "model"), getattr(data, "name", type(data).__name__)
    if (getattr(data, "meta", None) or {}).get("labels") == "decision" and data.meta.get("labelled_by") != name:
        raise InputError(f"dataset {where!r} is labelled by each model's own decision (here: "
                         f"{data.meta.get('labelled_by') or 'no model'}'s); expected it loaded for model {name!r}: "
                         f"robust.model_data.load_for(model, {where!r}).")
    classes = getattr(data, "class_names", None)
    if classes is not None and len(classes) != model.num_classes:  # type: ignore[attr-defined]
        raise InputError(f"model {name!r} has {model.num_classes} classes and dataset {where!r} has "  # type: ignore
                         f"{len(classes)}; expected a model whose classifier predicts the dataset's classes.")
    size = data_image_size(data)
    if size != tuple(model.input_size):  # type: ignore[attr-defined]
        show = lambda s: " x ".join(map(str, s))
        fixed = isinstance(where, str) and where.split(":")[0] in FIXED_SIZE_DATA  # photos are resized per model
        raise InputError(f"model {name!r} takes {show(model.input_size)} images and dataset {where!r} gives "  # type: ignore
                         f"{show(size)}; expected the model's input size (a model that does not say its own takes "
                         f"?input_size={'x'.join(map(str, size))} in its spec, --input-size or input_size in a spec's "
                         f"model table{'' if fixed else '; or resize the data'}).")


__all__ = ["FIXED_SIZE_DATA", "SEED_LIMIT", "check_choice", "check_images", "check_int", "check_keys", "check_labels",
           "check_matches", "check_number", "check_positive_int", "check_samples", "check_seed",
           "data_image_size", "did_you_mean", "first_line", "value_kind"]
