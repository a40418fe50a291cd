"""Files the project writes: the cache directory, atomic writes and content hashes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from platformdirs import user_cache_dir

from robust.checks import InputError


def cache_dir(*parts: str) -> Path:
    """The user cache directory of robust (``$ROBUST_CACHE`` overrides it), created on demand."""
    root = Path(os.environ.get("ROBUST_CACHE") or user_cache_dir("robust"))
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


_UMASK_LOCK = threading.Lock()


def file_mode(path: str | os.PathLike) -> int:
    """The mode a file written at ``path`` gets: the mode of the file it replaces, else 0o666 less the umask
    (what ``open(path, "w")`` would give; ``mkstemp`` alone would give 0o600)."""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        with _UMASK_LOCK:  # reading the umask means setting it; the lock keeps threads of this module from racing
            mask = os.umask(0o077)
            os.umask(mask)
        return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only if the block succeeds.

    A crash or an exception leaves either the old file or nothing, never a partial file. The file gets the mode
    of the one it replaces, or the umask's default for a new file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, file_mode(path))
        with open(tmp_path, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def source_checkout() -> Path | None:
    """The repository root when robust runs from a git checkout of its source (an editable install), else None
    (an installed wheel, whose package folder must never be written into)."""
    root = Path(__file__).resolve().parent.parent
    pyproject = root / "pyproject.toml"
    if (root / ".git").exists() and pyproject.is_file() and 'name = "robust-suite"' in pyproject.read_text():
        return root
    return None


def publish_dir(folder: Path) -> Path:
    """``folder`` (inside the package) when robust runs from a source checkout; otherwise a ValueError: files
    shipped with the package are published into the source tree, never into an installed package."""
    root = source_checkout()
    if root is None or not Path(folder).resolve().is_relative_to(root):
        raise InputError(f"publishing writes into the package's source tree ({str(folder)!r}), which this robust is "
                         "not run from (an installed package is never written into); expected a source checkout "
                         "(git clone, pip install -e .) or an explicit output path.")
    return Path(folder)


def check_writable(path: str | os.PathLike, name: str) -> Path:
    """Refuse, before any work, an output ``path`` that could not be written: a directory, or one whose nearest
    existing ancestor is not a directory in which a file can be made (tried with a temporary file, removed at once;
    missing folders are created at write time, not here). Nothing is left behind. ``name`` is the option or
    argument, for the one-line message."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{name} {str(path)!r} is a directory; expected the path of a file to write.")
    ancestor = path.absolute().parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(f"{name} {str(path)!r} cannot be written: {str(ancestor)!r} is not a directory.")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(f"{name} {str(path)!r} cannot be written: the directory {str(ancestor)!r} is not writable.")
    try:  # and by trying: os.access says yes to root where no file can be made (/proc, immutable folders, ...)
        with tempfile.NamedTemporaryFile(dir=ancestor, prefix=".robust-probe-"):
            pass
    except OSError as e:
        raise InputError(f"{name} {str(path)!r} cannot be written: no file can be made in {str(ancestor)!r} "
                         f"({e.strerror or e}).") from None
    return path


def digest(obj: object, size: int = 16) -> str:
    """The first ``size`` hex digits of the sha256 of ``obj`` as canonical JSON (sorted keys): a configuration's id.

    >>> digest({"b": 1, "a": 2}) == digest({"a": 2, "b": 1})
    True
    """
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:size]


__all__ = ["atomic_path", "atomic_write_text", "cache_dir", "check_writable", "digest", "file_mode", "publish_dir",
           "sha256_file", "source_checkout"]
