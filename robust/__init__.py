"""robust: adversarial-robustness evaluation for vision backbones (CNN, ViT, MLP).

Front doors, imported on first use (``import robust`` itself loads neither torch nor the package's modules):
``load_model(spec)`` and ``Backbone`` (robust.models), ``load_dataset(name)`` (robust.data), ``make_attack`` and
``evaluate`` (robust.attacks), ``PatchMixing`` (robust.augment), ``run_evaluation`` (robust.evaluations), ``measure``
(robust.testing), ``run_board`` (robust.runner), ``render`` (robust.leaderboard), ``InputError`` (robust.checks: what
every check of bad input raises), and ``__version__``.
"""

from __future__ import annotations

#: name -> the module that defines it (PEP 562: imported when the name is first looked up)
_LAZY = {
    "load_model": "robust.models",
    "Backbone": "robust.models",
    "load_dataset": "robust.data",
    "make_attack": "robust.attacks",
    "evaluate": "robust.attacks",
    "PatchMixing": "robust.augment",
    "run_evaluation": "robust.evaluations",
    "measure": "robust.testing",
    "run_board": "robust.runner",
    "render": "robust.leaderboard",
    "InputError": "robust.checks",
}


def __getattr__(name: str) -> object:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("robust-suite")
        except PackageNotFoundError:  # running from a source tree that is not installed
            value = "0.0.0"
    elif name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'robust' has no attribute {name!r}")
    globals()[name] = value  # later look-ups find it without this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = ["Backbone", "InputError", "PatchMixing", "__version__", "evaluate", "load_dataset", "load_model",
           "make_attack", "measure", "render", "run_board", "run_evaluation"]
