"""robust: adversarial-robustness evaluation for vision backbones (CNN, ViT, MLP).

Front doors: ``robust.models.load_model(spec)`` and ``robust.data.load_dataset(name)``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("robust-suite")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
