"""imagenet-val: ImageNet-1k validation images in the layouts people keep them in, always labelled by synset ->
ImageNet-1k index (never by the sorted order of whatever folders are present).

``imagenet-val:PATH[?option=value&...]``, PATH one of:

- a folder per synset (``PATH/n01440764/*.JPEG``), all 1,000 classes or any subset of them (Imagenette and
  Imagewoof folders are synsets too: their labels are 0, 217, 482, ..., not 0..9);
- a flat folder of ``ILSVRC2012_val_*.JPEG`` with ``labels=FILE``: Kaggle's ``LOC_val_solution.csv``, or the
  devkit's ``ILSVRC2012_validation_ground_truth.txt`` (devkit class ids, one line per image in file-number order)
  together with ``meta=FILE``, the devkit's ``meta.mat`` that maps those ids to synsets.

Options: ``subset=robustbench-5000`` (the 5,000 images RobustBench evaluates on, in its order, from the id list
robustbench ships) or ``subset=FILE`` (image file names, one per line); ``limit=N`` (the first N). With a subset,
split ``train`` is the folder's other images (for training a patch), ``test`` the subset; without one, ``test`` is
every image. Images are decoded once per preprocessing and kept in the cache directory.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from importlib.util import find_spec
from pathlib import Path
from urllib.parse import parse_qsl

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from robust.checks import InputError
from robust.data.base import ImageSet
from robust.data.imagenet import imagenet_class_names, synset_index
from robust.data.preprocess import Preprocess
from robust.io import atomic_path, cache_dir

PREFIX = "imagenet-val:"
OPTIONS = ("subset", "labels", "meta", "limit")
SPLITS = ("train", "test")
EXTENSIONS = (".jpeg", ".jpg", ".png")
_SYNSET = re.compile(r"n\d{8}")
_VAL_NUMBER = re.compile(r"ILSVRC2012_val_(\d{8})")


def parse(name: str) -> tuple[Path, dict[str, str]]:
    """Split ``imagenet-val:PATH?k=v&...`` into its folder and its options, checked.

    Args:
        name: the dataset name: ``imagenet-val:`` then the folder, then optionally ``?`` and options from ``OPTIONS``
            (``subset``, ``labels``, ``meta``, ``limit``), as the module docstring describes.

    Returns:
        The folder (``~`` expanded) and the options as text, unparsed but for ``limit``'s check.

    Raises:
        InputError: no folder, a folder that does not exist, an unknown option or a ``limit`` that is not a positive
            integer.

    Examples:
        >>> from pathlib import Path
        >>> from robust.data.imagenet_val import parse
        >>> Path("val").mkdir()
        >>> parse("imagenet-val:val?subset=robustbench-5000&limit=100")
        (PosixPath('val'), {'subset': 'robustbench-5000', 'limit': '100'})
        >>> parse("imagenet-val:val?size=64")
        Traceback (most recent call last):
        robust.checks.InputError: dataset 'imagenet-val:val?size=64': option 'size' is not valid; expected some of ...
    """
    body, _, query = name[len(PREFIX):].partition("?")
    if not body:
        raise InputError(f"dataset {name!r} is not valid; expected 'imagenet-val:PATH' (a folder of ImageNet "
                         "validation images).")
    opts = dict(parse_qsl(query, keep_blank_values=True))
    if unknown := sorted(set(opts) - set(OPTIONS)):
        raise InputError(f"dataset {name!r}: option {unknown[0]!r} is not valid; expected some of {list(OPTIONS)}.")
    path = Path(body).expanduser()
    if not path.is_dir():
        raise InputError(f"dataset {name!r}: folder {str(path)!r} does not exist; expected a folder of ImageNet "
                         "validation images (one folder per synset, or ILSVRC2012_val_*.JPEG with labels=FILE).")
    if "limit" in opts and not (opts["limit"].isdigit() and int(opts["limit"]) > 0):
        raise InputError(f"dataset {name!r}: limit={opts['limit']!r} is not valid; expected a positive integer.")
    return path, opts


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS
                  and not p.name.startswith("."))


def _synset(value: str, where: str) -> int:
    index = synset_index().get(value)
    if index is None:
        raise InputError(f"{where}: {value!r} is not an ImageNet-1k synset; expected one of the 1,000 (e.g. "
                         "'n01440764').")
    return index


def _devkit_ids(meta: Path) -> dict[int, str]:
    """The devkit's class id -> synset of its 1,000 leaf classes, from ``meta.mat`` (read as data: scipy's MAT
    reader)."""
    from scipy.io import loadmat

    try:
        synsets = loadmat(str(meta), squeeze_me=True)["synsets"]
        ids = {int(s["ILSVRC2012_ID"]): str(s["WNID"]) for s in synsets if int(s["num_children"]) == 0}
    except Exception as e:
        raise InputError(f"meta file {str(meta)!r} is not the devkit's meta.mat ({type(e).__name__}: {e}); expected "
                         "ILSVRC2012_devkit_t12/data/meta.mat.") from None
    if len(ids) != 1000:
        raise InputError(f"meta file {str(meta)!r} lists {len(ids)} leaf classes; expected the devkit's 1,000.")
    known = synset_index()
    if foreign := sorted({w for w in ids.values() if w not in known}):
        raise InputError(f"meta file {str(meta)!r} names {len(foreign)} synsets that are not ImageNet-1k's (e.g. "
                         f"{foreign[0][:20]!r}); expected the devkit's meta.mat.")
    return ids


def _text(path: Path, limit: int = 64 * 2**20) -> str:
    """A ground-truth file's text: UTF-8, at most ``limit`` bytes (ImageNet's are under 3 MB), else one line."""
    if path.stat().st_size > limit:
        raise InputError(f"labels file {str(path)!r} holds {path.stat().st_size} bytes; expected a ground-truth "
                         f"file (under {limit // 2**20} MB).")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"labels file {str(path)!r} is not UTF-8 text (byte {e.start}); expected "
                         "LOC_val_solution.csv or ILSVRC2012_validation_ground_truth.txt.") from None


def _flat_labels(files: list[Path], labels: Path, meta: str | None) -> list[int]:
    """Each file's index from a ground-truth file (LOC_val_solution.csv, or the devkit's .txt with its meta.mat)."""
    if not labels.is_file():
        raise InputError(f"labels file {str(labels)!r} does not exist.")
    if labels.suffix.lower() == ".csv":
        truth: dict[str, int] = {}
        rows = csv.reader(io.StringIO(_text(labels), newline=""))
        n = 0
        try:
            for n, row in enumerate(rows, 1):
                if n == 1 and row[:1] == ["ImageId"]:
                    continue
                if len(row) < 2 or not row[1].split():
                    raise InputError(f"labels file {str(labels)!r} line {n} is {','.join(row)[:60]!r}; expected "
                                     "'ImageId,synset ...' (LOC_val_solution.csv).")
                truth[row[0]] = _synset(row[1].split()[0][:40], f"labels file {str(labels)!r} line {n}")
        except csv.Error as e:  # e.g. a field past the csv module's limit, a NUL byte
            raise InputError(f"labels file {str(labels)!r} line {n + 1} is not valid CSV ({e}); expected "
                             "LOC_val_solution.csv.") from None
        where = lambda p: truth.get(p.stem)
    elif labels.suffix.lower() == ".txt":
        if meta is None:
            raise InputError(f"labels file {str(labels)!r} holds devkit class ids; pass meta=PATH (the devkit's "
                             "data/meta.mat) to map them to synsets.")
        ids = _devkit_ids(Path(meta).expanduser())
        lines = _text(labels).split()
        bad = next((v for v in lines if not v.isdigit() or int(v) not in ids), None)
        if bad is not None:
            raise InputError(f"labels file {str(labels)!r} holds {bad[:20]!r}; expected devkit class ids 1-1000, "
                             "one per line (ILSVRC2012_validation_ground_truth.txt).")
        index = synset_index()

        def where(p: Path) -> int | None:
            m = _VAL_NUMBER.fullmatch(p.stem)
            k = int(m.group(1)) if m else 0
            return index[ids[int(lines[k - 1])]] if 0 < k <= len(lines) else None
    else:
        raise InputError(f"labels file {str(labels)!r} is not valid; expected LOC_val_solution.csv or "
                         "ILSVRC2012_validation_ground_truth.txt (with meta=PATH).")
    out = [where(p) for p in files]
    if None in out:
        raise InputError(f"labels file {str(labels)!r} has no label for {files[out.index(None)].name!r}; expected the "
                         "ground truth of every image in the folder.")
    return out


def index(path: Path, opts: dict[str, str]) -> tuple[list[Path], list[int], str]:
    """List every image under ``path`` with its ImageNet-1k index, and name the layout.

    Images are ``.jpeg``, ``.jpg`` or ``.png`` files (any case; hidden files skipped). A folder with synset
    subfolders (``n########``) is labelled by them; a flat folder needs ``labels=FILE`` in ``opts`` (Kaggle's
    ``LOC_val_solution.csv``, or the devkit's ground-truth ``.txt`` with ``meta=meta.mat``). Labels are ImageNet-1k
    indices by synset, never the sorted order of the folders present.

    Args:
        path: the folder (as ``parse`` returns it).
        opts: the dataset's options (as ``parse`` returns them); ``labels`` and ``meta`` are read here.

    Returns:
        The image files and their labels, both sorted by file name, and the layout in words (``'2 synset
        folders'``, ``'flat, labels from LOC_val_solution.csv'``).

    Raises:
        InputError: a folder that mixes synset folders with others, a synset that is not ImageNet-1k's, a flat folder
            without ``labels=``, a labels file that does not label every image, or no images at all.

    Examples:
        >>> from pathlib import Path
        >>> from PIL import Image
        >>> from robust.data.imagenet_val import index
        >>> for i, synset in enumerate(["n01440764", "n02102040"]):
        ...     Path("val", synset).mkdir(parents=True)
        ...     Image.new("RGB", (40, 30)).save(f"val/{synset}/ILSVRC2012_val_{i + 1:08d}.JPEG")
        >>> files, labels, layout = index(Path("val"), {})
        >>> [f.name for f in files], labels, layout
        (['ILSVRC2012_val_00000001.JPEG', 'ILSVRC2012_val_00000002.JPEG'], [0, 217], '2 synset folders')
    """
    folders = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    synsets = [p for p in folders if _SYNSET.fullmatch(p.name)]
    if synsets:
        if "labels" in opts:
            raise InputError(f"imagenet-val:{path}: labels= is for a flat folder; this one has a folder per synset, "
                             "which labels its images.")
        if others := [p.name for p in folders if p not in synsets]:
            raise InputError(f"imagenet-val:{path}: folder {others[0]!r} is not a synset; expected only synset "
                             "folders (n########).")
        pairs = [(f, _synset(d.name, f"imagenet-val:{path}: folder")) for d in synsets for f in _images(d)]
        layout = f"{len(synsets)} synset folders"
    else:
        files = _images(path)
        if "labels" not in opts:
            raise InputError(f"imagenet-val:{path} has no synset folders; expected a folder per synset, or "
                             "ILSVRC2012_val_*.JPEG with labels=FILE (LOC_val_solution.csv, or "
                             "ILSVRC2012_validation_ground_truth.txt and meta=meta.mat).")
        pairs = list(zip(files, _flat_labels(files, Path(opts["labels"]).expanduser(), opts.get("meta")),
                         strict=True))
        layout = f"flat, labels from {Path(opts['labels']).name}"
    if not pairs:
        raise InputError(f"imagenet-val:{path} holds no images ({', '.join(EXTENSIONS)}).")
    pairs.sort(key=lambda fl: fl[0].name)
    return [f for f, _ in pairs], [label for _, label in pairs], layout


@functools.cache
def robustbench_ids() -> tuple[str, ...]:
    """The file names of RobustBench's 5,000-image ImageNet evaluation subset, in its order (its helper file)."""
    spec = find_spec("robustbench")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("subset=robustbench-5000 needs the robustbench package (its id list); install robust-suite's "
                         "dependencies.")
    ids = Path(next(iter(spec.submodule_search_locations))) / "helper_files" / "imagenet_test_image_ids.txt"
    return tuple(Path(line.strip()).name for line in ids.read_text().splitlines() if line.strip())


def select(files: list[Path], labels: list[int], opts: dict[str, str], split: str, where: str
           ) -> tuple[list[Path], list[int]]:
    """Pick a split's images from a folder's, by the ``subset`` and ``limit`` options.

    With ``subset`` (``robustbench-5000`` or a file of image names, one per line) split ``test`` is the subset's
    images in the subset's order and ``train`` every other image of the folder (for training a patch); without one
    ``test`` is every image and ``train`` is refused. ``limit``: the first N of the test split only.

    Args:
        files: the folder's images (as ``index`` returns them).
        labels: their labels, in the same order.
        opts: the dataset's options (as ``parse`` returns them); ``subset`` and ``limit`` are read here.
        split: ``test`` or ``train``.
        where: what messages call the dataset (its name).

    Returns:
        The split's files and their labels.

    Raises:
        InputError: an unknown split, ``train`` without a subset, a subset file that does not exist, or subset images
            that are not in the folder.

    Examples:
        >>> from pathlib import Path
        >>> from robust.data.imagenet_val import select
        >>> files = [Path(f"ILSVRC2012_val_{i:08d}.JPEG") for i in (1, 2, 3)]
        >>> select(files, [0, 217, 482], {"limit": "2"}, "test", "imagenet-val:val")
        ([PosixPath('ILSVRC2012_val_00000001.JPEG'), PosixPath('ILSVRC2012_val_00000002.JPEG')], [0, 217])
        >>> _ = Path("picked.txt").write_text("ILSVRC2012_val_00000003.JPEG\\nILSVRC2012_val_00000001.JPEG\\n")
        >>> select(files, [0, 217, 482], {"subset": "picked.txt"}, "test", "imagenet-val:val")[1]
        [482, 0]
        >>> select(files, [0, 217, 482], {"subset": "picked.txt"}, "train", "imagenet-val:val")[1]
        [217]
    """
    if split not in SPLITS:
        raise InputError(f"{where}: split={split!r} is not valid; expected one of {SPLITS} (test: the subset, or every "
                         "image without one; train: the folder's other images).")
    subset = opts.get("subset")
    if subset is None:
        if split != "test":
            raise InputError(f"{where}: split={split!r} needs subset=...; without one every image is the test split "
                             "(expected split='test').")
        chosen = list(range(len(files)))
    else:
        chosen = _subset(files, subset, split, where)
    if split == "test" and "limit" in opts:
        chosen = chosen[: int(opts["limit"])]
    return [files[i] for i in chosen], [labels[i] for i in chosen]


def _subset(files: list[Path], subset: str, split: str, where: str) -> list[int]:
    """The indices of ``subset``'s images in ``files`` (its order) for test, of the other images for train."""
    if subset == "robustbench-5000":
        names = robustbench_ids()
    else:
        listing = Path(subset).expanduser()
        if not listing.is_file():
            raise InputError(f"{where}: subset={subset!r} is not valid; expected 'robustbench-5000' or a file of "
                             "image names, one per line.")
        names = tuple(Path(v.strip()).name for v in listing.read_text().splitlines() if v.strip())
    by_name = {f.name: i for i, f in enumerate(files)}
    if missing := [n for n in names if n not in by_name]:
        raise InputError(f"{where}: {len(missing)} of the {len(names)} images of subset={subset!r} are not in the "
                         f"folder (e.g. {missing[0]!r}); expected all of them.")
    if split == "test":
        return [by_name[n] for n in names]
    taken = set(names)
    return [i for i, f in enumerate(files) if f.name not in taken]


def _decode(path: Path, preprocess: Preprocess) -> torch.Tensor:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return preprocess(image)
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise InputError(f"image {str(path)!r} does not decode: {type(e).__name__}: {e}") from None


def decode(files: list[Path], preprocess: Preprocess) -> torch.Tensor:
    """The files as a uint8 N x 3 x S x S tensor (PIL decodes and resizes in threads, outside the GIL)."""
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        return torch.stack(list(pool.map(lambda p: _decode(p, preprocess), files)))


def load(name: str, split: str, preprocess: Preprocess | None) -> ImageSet:
    """Load a split of ``imagenet-val:...`` (see the module docstring) as an in-memory ``ImageSet``.

    The images go through ``preprocess`` once and are kept in the cache directory (``$ROBUST_CACHE``), keyed by the
    folder, each file's size and modification time, the labels and the preprocessing, so a second load reads them
    back.

    Args:
        name: ``imagenet-val:PATH[?option=value&...]`` (options: ``subset``, ``labels``, ``meta``, ``limit``).
        split: ``test`` (the subset, or every image without one) or ``train`` (the folder's images outside the
            subset).
        preprocess: the resize and centre crop (None: ``Preprocess()``: 224 px, shorter side 256, bicubic).

    Returns:
        The images with their ImageNet-1k labels (by synset) and the 1,000 class names; ``meta`` records the folder,
        layout, split, subset and preprocessing, and ``labels`` ``'ImageNet-1k ground truth (synset)'``.

    Raises:
        InputError: anything ``parse``, ``index`` and ``select`` refuse, an empty split or an image that does not
            decode.

    Examples:
        >>> import os
        >>> from pathlib import Path
        >>> from unittest import mock
        >>> from PIL import Image
        >>> from robust.data import Preprocess
        >>> from robust.data.imagenet_val import load
        >>> for i, synset in enumerate(["n01440764", "n02102040"]):
        ...     Path("val", synset).mkdir(parents=True)
        ...     Image.new("RGB", (40, 30)).save(f"val/{synset}/ILSVRC2012_val_{i + 1:08d}.JPEG")
        >>> with mock.patch.dict(os.environ, ROBUST_CACHE="cache"):  # the decoded images go to ./cache
        ...     data = load("imagenet-val:val", "test", Preprocess(16, 20, "bilinear"))
        >>> data
        ImageSet('imagenet-val:val', n=2, size=(3, 16, 16), classes=1000)
        >>> data.labels.tolist(), data.class_names[217], data.meta["layout"]
        ([0, 217], 'English springer, English springer spaniel', '2 synset folders')
    """
    path, opts = parse(name)
    preprocess = preprocess or Preprocess()
    files, labels, layout = index(path, opts)
    files, labels = select(files, labels, opts, split, name)
    if not files:
        raise InputError(f"{name}: split {split!r} has no images.")
    stats = [(str(f.relative_to(path)), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    key = hashlib.sha256(json.dumps({"root": str(path.resolve()), "files": stats, "labels": labels,
                                     "preprocess": preprocess.to_dict()}).encode()).hexdigest()[:16]
    cached = cache_dir("datasets", "imagenet-val") / f"{key}.safetensors"
    images = _read(cached, len(files), preprocess.size)
    if images is None:
        images = decode(files, preprocess)
        with atomic_path(cached) as tmp:
            save_file({"images": images}, str(tmp))
    return ImageSet(images, torch.tensor(labels), imagenet_class_names(), name=name,
                    meta={"source": str(path), "layout": layout, "split": split, "subset": opts.get("subset"),
                          "preprocess": preprocess.to_dict(), "labels": "ImageNet-1k ground truth (synset)"})


def _read(path: Path, n: int, size: int) -> torch.Tensor | None:
    """The cached images at ``path``, or None when missing, corrupt or of another shape (then decoded again)."""
    try:
        images = load_file(str(path))["images"]
    except (SafetensorError, OSError, KeyError):
        return None
    return images if images.dtype == torch.uint8 and tuple(images.shape) == (n, 3, size, size) else None


__all__ = ["OPTIONS", "PREFIX", "index", "load", "parse", "robustbench_ids", "select"]
