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


class InputTypeError(InputError, TypeError):
    """Bad input of the wrong type (a list where a tensor was expected, uint8 images where floats were): an
    ``InputError``, so the ``robust`` command prints it as one line, and a ``TypeError``, as Python code expects.

    Examples:
        >>> from robust.checks import InputTypeError, check_images
        >>> try:
        ...     check_images([[0.5]])
        ... except TypeError as e:
        ...     print(e)
        x must be a torch.Tensor of images, got list.
    """


def first_line(e: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message, for a one-line error.

    Args:
        e: the exception.
        limit: the most characters of that line kept.

    Returns:
        The message's first line (the message stripped, the line cut to ``limit`` characters), or the exception's
        type name when its message is empty.

    Examples:
        >>> from robust.checks import first_line
        >>> first_line(ValueError("bad value\\nmore detail"))
        'bad value'
        >>> first_line(KeyError())
        'KeyError'
    """
    text = str(e).strip()
    return text.splitlines()[0][:limit] if text else type(e).__name__


def did_you_mean(name: object, choices: object) -> str:
    """The close matches of an unknown name, as the clause that follows "is unknown" in an unknown-name error.

    Args:
        name: the unknown name (compared as a string).
        choices: the known names (any iterable; each compared as a string).

    Returns:
        ``" (did you mean a, b?)"`` with up to 5 close matches (difflib's ratio at least 0.6), closest first, or
        ``""`` when none is close.

    Examples:
        >>> from robust.checks import did_you_mean
        >>> "'lavan-12pcx' is unknown" + did_you_mean("lavan-12pcx", ["lavan-12pct", "lavan-8pct", "pgd-linf-8"])
        "'lavan-12pcx' is unknown (did you mean lavan-12pct, lavan-8pct?)"
        >>> did_you_mean("zzz", ["lavan-12pct"])
        ''
    """
    import difflib

    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=5, cutoff=0.6)  # type: ignore[union-attr]
    return f" (did you mean {', '.join(close)}?)" if close else ""


#: seeds are unsigned 64-bit integers (what ``torch.Generator.manual_seed`` and numpy take)
SEED_LIMIT = 2**64


def check_keys(keys: Iterable[str], valid: Iterable[str], where: str) -> None:
    """Refuse a key outside ``valid``: one sentence naming ``where``, the first unknown key and the valid ones.

    Args:
        keys: the keys given (an option table's, a spec section's, ...).
        valid: the keys allowed.
        where: what the keys belong to; it starts the message.

    Raises:
        InputError: a key not in ``valid`` (the first one in sorted order is named, with its close matches).

    Examples:
        >>> from robust.checks import check_keys
        >>> check_keys(["steps", "lr"], ["steps", "lr", "seed"], "attack lavan")
        >>> check_keys(["stpes"], ["steps", "lr", "seed"], "attack lavan")
        Traceback (most recent call last):
        robust.checks.InputError: attack lavan: key 'stpes' is unknown (did you mean steps?); expected one of
        ['lr', 'seed', 'steps'].
    """
    if bad := sorted(set(keys) - set(valid)):
        raise InputError(f"{where}: key {bad[0]!r} is unknown{did_you_mean(bad[0], valid)}; expected one of "
                         f"{sorted(valid)}.")


def value_kind(default: object) -> tuple[tuple[type, ...], str] | None:
    """The types a value of the kind of a parameter's ``default`` may have, and how to say that kind in a message.

    A bool default is a kind of its own (true or false), never a number, though bool is a subclass of int. An int
    default gives ``(int,)``, a float default ``(int, float)``, a tuple or list default ``(tuple, list)``, a string
    ``(str,)``; as ``isinstance(True, int)`` holds, refusing a bool for an int is the caller's part.

    Args:
        default: the parameter's default value.

    Returns:
        ``(types, words)``, e.g. ``((int, float), "a finite number")``; None for a default of no checked kind (None,
        or any other object).

    Examples:
        >>> from robust.checks import value_kind
        >>> value_kind(0.5)
        ((<class 'int'>, <class 'float'>), 'a finite number')
        >>> value_kind(True)
        ((<class 'bool'>,), 'true or false')
        >>> value_kind(None) is None
        True
    """
    for kind, types, what in ((bool, (bool,), "true or false"), (int, (int,), "an integer"),
                              (float, (int, float), "a finite number"), ((tuple, list), (tuple, list), "a list"),
                              (str, (str,), "a string")):
        if isinstance(default, kind):
            return types, what
    return None


def check_images(x: object, name: str = "x", channels: int = 3) -> torch.Tensor:
    """Require a batch of float images in [0, 1] without NaN; return it unchanged.

    Values may stray 1e-6 outside [0, 1] (rounding). The range is read in one pass (one host sync).

    Args:
        x: the images.
        name: the argument's name, for the message.
        channels: the channels expected (3: RGB).

    Returns:
        ``x`` itself.

    Raises:
        TypeError: ``x`` is not a tensor, or not a floating-point one (uint8 images: divide by 255).
        InputError: not 4-D, another number of channels, a NaN, or a value outside [0, 1].

    Shape:
        x: N x ``channels`` x H x W, floating point, in [0, 1]; returns it.

    Examples:
        >>> import torch
        >>> from robust.checks import check_images
        >>> check_images(torch.rand(2, 3, 8, 8)).shape
        torch.Size([2, 3, 8, 8])
        >>> check_images(torch.full((1, 3, 8, 8), 2.0))
        Traceback (most recent call last):
        robust.checks.InputError: x has values in [2, 2]; expected images in [0, 1].
        >>> check_images(torch.rand(3, 8, 8), name="image")
        Traceback (most recent call last):
        robust.checks.InputError: image has shape (3, 8, 8); expected a batch N x 3 x H x W.
    """
    import torch

    if not isinstance(x, torch.Tensor):
        raise InputTypeError(f"{name} must be a torch.Tensor of images, got {type(x).__name__}.")
    if x.ndim != 4:
        raise InputError(f"{name} has shape {tuple(x.shape)}; expected a batch N x {channels} x H x W.")
    if not x.is_floating_point():
        raise InputTypeError(f"{name} has dtype {x.dtype}; expected float images in [0, 1] (divide uint8 images by "
                             "255).")
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
    """Require an integer tensor of class indices in [0, num_classes), of length ``n`` when given; return it unchanged.

    Args:
        y: the labels.
        num_classes: the number of classes; every label is below it.
        n: the number of labels expected (one per image), or None for any.
        name: the argument's name, for the message.

    Returns:
        ``y`` itself.

    Raises:
        TypeError: ``y`` is not a tensor.
        InputError: not 1-D, a float or bool dtype, not ``n`` labels, or a class outside [0, num_classes).

    Shape:
        y: N, an integer dtype; returns it.

    Examples:
        >>> import torch
        >>> from robust.checks import check_labels
        >>> check_labels(torch.tensor([0, 3, 9]), 10, n=3)
        tensor([0, 3, 9])
        >>> check_labels(torch.tensor([0, 3, 10]), 10)
        Traceback (most recent call last):
        robust.checks.InputError: y contains class 10; expected classes in [0, 9].
    """
    import torch

    if not isinstance(y, torch.Tensor):
        raise InputTypeError(f"{name} must be a torch.Tensor of class indices, got {type(y).__name__}.")
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
    """Require a finite real number within the bounds given; return it as a float.

    A bool, a NaN or an infinite value is refused, as is anything that is not a real number (a string, None, ...).

    Args:
        value: the value given.
        name: the argument's name, for the message.
        low: the lowest value allowed, or None for no lower bound.
        high: the highest value allowed, or None for no upper bound.
        low_open: exclude ``low`` itself (value > low).
        high_open: exclude ``high`` itself (value < high).
        expected: what is valid, in words, in place of the description generated from the bounds.

    Returns:
        ``value`` as a float.

    Raises:
        InputError: ``name=value is not valid; expected ...``.

    Examples:
        >>> from robust.checks import check_number
        >>> check_number(1, "eps", low=0, high=1)
        1.0
        >>> check_number(0, "lr", low=0, low_open=True)
        Traceback (most recent call last):
        robust.checks.InputError: lr=0 is not valid; expected a finite number > 0.
        >>> check_number(3, "eps", low=0, high=1)
        Traceback (most recent call last):
        robust.checks.InputError: eps=3 is not valid; expected a number in [0, 1].
    """
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
    """Require an integer (not a bool, not a float such as 4.0) in [low, high] where given; return it as an int.

    Args:
        value: the value given.
        name: the argument's name, for the message.
        low: the lowest value allowed, or None for no lower bound.
        high: the highest value allowed, or None for no upper bound.
        expected: what is valid, in words, in place of the description generated from the bounds.

    Returns:
        ``value`` as an int.

    Raises:
        InputError: ``name=value is not valid; expected ...``.

    Examples:
        >>> from robust.checks import check_int
        >>> check_int(4, "k", low=1, high=10)
        4
        >>> check_int(20, "k", low=1, high=10)
        Traceback (most recent call last):
        robust.checks.InputError: k=20 is not valid; expected an integer in [1, 10].
        >>> check_int(4.0, "steps", low=1)
        Traceback (most recent call last):
        robust.checks.InputError: steps=4.0 is not valid; expected an integer >= 1.
    """
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
    """Require a positive integer (not a bool); return it.

    Args:
        value: the value given.
        name: the argument's name, for the message.

    Returns:
        ``value`` as an int.

    Raises:
        InputError: ``name=value is not valid; expected a positive integer.``

    Examples:
        >>> from robust.checks import check_positive_int
        >>> check_positive_int(3, "steps")
        3
        >>> check_positive_int(0, "steps")
        Traceback (most recent call last):
        robust.checks.InputError: steps=0 is not valid; expected a positive integer.
    """
    return check_int(value, name, low=1, expected="a positive integer")


def check_choice(value: object, choices: Iterable[object], name: str) -> object:
    """Require one of ``choices``; return it.

    Args:
        value: the value given.
        choices: the values allowed (compared with ``==``).
        name: the argument's name, for the message.

    Returns:
        ``value`` itself.

    Raises:
        InputError: ``name=value is not valid; expected one of (...)``, the choices listed as a tuple.

    Examples:
        >>> from robust.checks import check_choice
        >>> check_choice("mean", ("mean", "max"), "reduce")
        'mean'
        >>> check_choice("sum", ("mean", "max"), "reduce")
        Traceback (most recent call last):
        robust.checks.InputError: reduce='sum' is not valid; expected one of ('mean', 'max').
    """
    if value not in tuple(choices):
        raise InputError(f"{name}={value!r} is not valid; expected one of {tuple(choices)}.")
    return value


def check_seed(value: object, name: str = "seed") -> int:
    """Require a seed: a non-negative integer below 2**64 (not a bool); return it.

    Seeds are unsigned 64-bit integers, what ``torch.Generator.manual_seed`` and numpy take (``SEED_LIMIT``).

    Args:
        value: the value given.
        name: the argument's name, for the message.

    Returns:
        ``value`` as an int.

    Raises:
        InputError: ``name=value is not valid; expected an integer in [0, 2**64).``

    Examples:
        >>> from robust.checks import check_seed
        >>> check_seed(7)
        7
        >>> check_seed(-1)
        Traceback (most recent call last):
        robust.checks.InputError: seed=-1 is not valid; expected an integer in [0, 2**64).
    """
    return check_int(value, name, low=0, high=SEED_LIMIT - 1, expected="an integer in [0, 2**64)")


def check_samples(samples: object, data: object, name: str = "samples") -> int | None:
    """Check a number of images to use from ``data``: at most as many as it has.

    Asking for more images than a split has is an error, never a silent cap (a figure over 500 images must not quietly
    be one over 300).

    Args:
        samples: how many images, a positive integer, or None for all of them.
        data: the dataset (anything with a length; its ``name``, or else its type, is named in the message).
        name: the argument's name, for the message.

    Returns:
        ``samples`` unchanged (None stays None: all).

    Raises:
        InputError: ``samples`` is not a positive integer or None, or it is more than ``len(data)``.

    Examples:
        >>> from robust.checks import check_samples
        >>> check_samples(5, list(range(10)))
        5
        >>> check_samples(50, list(range(10)))
        Traceback (most recent call last):
        robust.checks.InputError: samples=50 is not valid: it is more than the 10 images of 'list'; expected at most 10
        (or None: all of them).
    """
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
    """The size (C, H, W) of a dataset's images.

    An in-memory set (an ``ImageSet``) says it in its ``image_size``; any other dataset decodes its first item, an
    (image, label) pair.

    Args:
        data: the dataset.

    Returns:
        ``(C, H, W)`` as ints.

    Raises:
        InputError: a dataset without ``image_size`` that is empty.

    Examples:
        >>> import torch
        >>> from robust.checks import data_image_size
        >>> data_image_size([(torch.zeros(3, 32, 32), 7)])
        (3, 32, 32)
        >>> data_image_size([])
        Traceback (most recent call last):
        robust.checks.InputError: dataset 'list' is empty; expected images.
    """
    size = getattr(data, "image_size", None)
    if size is None:
        if len(data) == 0:  # type: ignore[arg-type]
            raise InputError(f"dataset {getattr(data, 'name', type(data).__name__)!r} is empty; expected images.")
        size = data[0][0].shape  # type: ignore[index]
    return tuple(int(v) for v in size)


#: datasets whose images have one size (the others are photos, resized for each model)
FIXED_SIZE_DATA = ("digits-m",)


def check_matches(model: object, data: object) -> None:
    """Require that the model takes the data's images and predicts its classes, before any work is done.

    Otherwise the failure comes late and unclear: a ViT fed images of another size fails deep inside, a 1,000-class
    head on 10-class data reports 0 %. Three checks, in order: data labelled by a model's own decisions
    (``meta["labels"] == "decision"``) must have been labelled by this model (its ``name``); the data's
    ``class_names`` (where it has them) must be ``model.num_classes``; its image size (``data_image_size``) must be
    ``model.input_size``.

    Args:
        model: the model (a ``Backbone``: ``name``, ``num_classes``, ``input_size``).
        data: the dataset (its ``name``, ``class_names`` and ``meta`` where it has them).

    Raises:
        InputError: one sentence: data labelled for another model, another number of classes, or another image size
            (saying how to give the model its input size, or to resize the data).

    Examples:
        >>> from types import SimpleNamespace
        >>> from robust.checks import check_matches
        >>> model = SimpleNamespace(name="zoo:digits-m/resnet", num_classes=10, input_size=(3, 32, 32))
        >>> digits = SimpleNamespace(name="digits-m", class_names=list("0123456789"), image_size=(3, 32, 32))
        >>> check_matches(model, digits)
        >>> check_matches(model, SimpleNamespace(name="letters", class_names=list("abc"), image_size=(3, 32, 32)))
        Traceback (most recent call last):
        robust.checks.InputError: model 'zoo:digits-m/resnet' has 10 classes and dataset 'letters' has 3; expected a
        model whose classifier predicts the dataset's classes.
    """
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
