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
    """The user cache directory of robust, or a folder inside it, created on demand.

    The root is ``$ROBUST_CACHE`` when that is set (and not empty), else the platform's user cache folder for
    ``robust`` (platformdirs: ``$XDG_CACHE_HOME/robust`` or ``~/.cache/robust`` on Linux).

    Args:
        *parts: the path of the folder inside the cache, one name per part (none: the root).

    Returns:
        The folder (created with its parents if missing), relative when ``$ROBUST_CACHE`` is.

    Examples:
        >>> import os
        >>> from unittest import mock
        >>> from robust.io import cache_dir
        >>> with mock.patch.dict(os.environ, {"ROBUST_CACHE": "cache"}):
        ...     folder = cache_dir("zoo", "digits-m")
        >>> folder, folder.is_dir()
        (PosixPath('cache/zoo/digits-m'), True)
    """
    root = Path(os.environ.get("ROBUST_CACHE") or user_cache_dir("robust"))
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


_UMASK_LOCK = threading.Lock()


def file_mode(path: str | os.PathLike) -> int:
    """The permission bits a file written at ``path`` gets.

    Those of the file it replaces, else 0o666 less the umask (what ``open(path, "w")`` would give; ``mkstemp`` alone
    would give 0o600). Reading the umask means setting it for a moment; a lock keeps this module's threads from racing.

    Args:
        path: where the file will be written.

    Returns:
        The mode bits (``st_mode & 0o7777``).

    Examples:
        >>> import os
        >>> from robust.io import file_mode
        >>> open("notes.txt", "w").close()
        >>> os.chmod("notes.txt", 0o640)
        >>> oct(file_mode("notes.txt"))
        '0o640'
        >>> mask = os.umask(0o022)  # reading the umask means setting it: put it back
        >>> _ = os.umask(mask)
        >>> file_mode("new.txt") == 0o666 & ~mask
        True
    """
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

    A crash or an exception leaves either the old file or nothing, never a partial file: the temporary file (hidden,
    ``.NAME.*.tmp`` in the same folder) is fsynced, then renamed onto ``path``, and removed if the block fails. The
    file gets the mode of the one it replaces, or the umask's default for a new file (``file_mode``). Missing parent
    folders are created.

    Args:
        path: the file to write.

    Returns:
        A context manager whose value is the temporary path to write to.

    Examples:
        >>> import os
        >>> from robust.io import atomic_path
        >>> with atomic_path("out/board.json") as tmp:
        ...     _ = tmp.write_text("{}")
        >>> open("out/board.json").read()
        '{}'
        >>> try:
        ...     with atomic_path("out/board.json") as tmp:
        ...         _ = tmp.write_text("{partial")
        ...         raise RuntimeError("crash")
        ... except RuntimeError:
        ...     pass
        >>> open("out/board.json").read(), os.listdir("out")
        ('{}', ['board.json'])
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
    """Write ``text`` to ``path`` atomically (``atomic_path``), as UTF-8.

    Args:
        path: the file to write (its missing parent folders are created).
        text: what it will hold.

    Examples:
        >>> from robust.io import atomic_write_text
        >>> atomic_write_text("out/notes.txt", "hello\\n")
        >>> open("out/notes.txt").read()
        'hello\\n'
    """
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The hex sha256 of a file's bytes, read in chunks.

    Args:
        path: the file.
        chunk: the bytes read at a time.

    Returns:
        64 lowercase hex digits.

    Examples:
        >>> from robust.io import sha256_file
        >>> _ = open("notes.txt", "w").write("hello\\n")
        >>> sha256_file("notes.txt")
        '5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03'
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def source_checkout() -> Path | None:
    """The repository root when robust runs from a git checkout of its source (an editable install), else None.

    A checkout is recognised by a ``.git`` beside the package and a ``pyproject.toml`` naming ``robust-suite``. An
    installed wheel gives None: its package folder must never be written into.

    Returns:
        The repository root, or None.

    Examples:
        >>> from robust.io import source_checkout
        >>> root = source_checkout()
        >>> root is None or (root / "robust" / "io.py").is_file()
        True
    """
    root = Path(__file__).resolve().parent.parent
    pyproject = root / "pyproject.toml"
    if (root / ".git").exists() and pyproject.is_file() and 'name = "robust-suite"' in pyproject.read_text():
        return root
    return None


def publish_dir(folder: Path) -> Path:
    """``folder`` (inside the package) when robust runs from a source checkout; an error otherwise.

    Files shipped with the package (zoo weights, attack artifacts) are published into the source tree, never into an
    installed package.

    Args:
        folder: the package folder to publish into.

    Returns:
        ``folder``, as a Path.

    Raises:
        InputError: robust does not run from a source checkout (``source_checkout``), or ``folder`` is not inside it.

    Examples:
        >>> from pathlib import Path
        >>> from robust.io import publish_dir
        >>> publish_dir(Path("zoo"))
        Traceback (most recent call last):
        robust.checks.InputError: publishing writes into the package's source tree ('zoo'), which this robust is not run
        from (an installed package is never written into); expected a source checkout (git clone, pip install -e .) or
        an explicit output path.
    """
    root = source_checkout()
    if root is None or not Path(folder).resolve().is_relative_to(root):
        raise InputError(f"publishing writes into the package's source tree ({str(folder)!r}), which this robust is "
                         "not run from (an installed package is never written into); expected a source checkout "
                         "(git clone, pip install -e .) or an explicit output path.")
    return Path(folder)


def check_writable(path: str | os.PathLike, name: str) -> Path:
    """Refuse, before any work, an output ``path`` that could not be written.

    Refused: a directory, or a path whose nearest existing ancestor is not a directory in which a file can be made
    (writable, and tried with a temporary file, removed at once: ``os.access`` says yes to root where no file can be
    made). Missing folders are created at write time, not here; nothing is left behind.

    Args:
        path: the file to be written.
        name: the option or argument that gave it, for the one-line message.

    Returns:
        ``path``, as a Path.

    Raises:
        InputError: ``path`` is a directory, or cannot be written, with the reason.

    Examples:
        >>> import os
        >>> from robust.io import check_writable
        >>> check_writable("out/board.json", "--output")
        PosixPath('out/board.json')
        >>> os.mkdir("out")
        >>> check_writable("out", "--output")
        Traceback (most recent call last):
        robust.checks.InputError: --output 'out' is a directory; expected the path of a file to write.
    """
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
    """The first ``size`` hex digits of the sha256 of ``obj`` as canonical JSON: a configuration's id.

    Keys are sorted, so the order of a dict's keys does not change it; values JSON cannot encode are written as their
    ``str``.

    Args:
        obj: the configuration (anything ``json.dumps`` takes, with ``default=str``).
        size: the hex digits kept (at most 64).

    Returns:
        ``size`` lowercase hex digits.

    Examples:
        >>> from robust.io import digest
        >>> digest({"b": 1, "a": 2}) == digest({"a": 2, "b": 1})
        True
        >>> digest({"a": 2, "b": 1}), digest({"a": 2, "b": 1}, size=8)
        ('21501dbaf73f5223', '21501dba')
    """
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:size]


__all__ = ["atomic_path", "atomic_write_text", "cache_dir", "check_writable", "digest", "file_mode", "publish_dir",
           "sha256_file", "source_checkout"]
