"""Loaders for standard image-classification datasets read from local files (nothing is ever downloaded).

Each loader returns a `codesign.data.splits.Dataset` with three disjoint splits:

* test: the official test set, untouched;
* val: a stratified subset of the official training set of exactly `val_size` images (default 5,000, or
  a tenth of the training set where that is smaller, as in small local test copies), drawn with a fixed
  seed (`seed`), so the same seed always gives the same validation images;
* train: the rest of the official training set.

Images are scaled to [0, 1] and normalised per channel with the mean/std of the train split only.

Where the files are looked for (the first directory that holds all of them wins):

* `data_dir` if given (the dataset's own folder, or a folder containing it), and nothing else;
* otherwise `$CODESIGN_DATA_DIR/<folder>`, then `/usr/share/datasets/<folder>`, where `<folder>` is
  `fashion-mnist`, `cifar-10-batches-py`, `cifar-100-python` or `svhn`. Debian's
  `dataset-fashion-mnist` package installs the four gzipped IDX files in `/usr/share/datasets/fashion-mnist/`.
"""

from __future__ import annotations

import gzip
import os
import pickle
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from codesign.data.splits import Dataset, stratified_subset, to_split
from codesign.errors import CodesignError, input_error

ENV_DATA_DIR = "CODESIGN_DATA_DIR"
SYSTEM_DATA_DIR = Path("/usr/share/datasets")
DEFAULT_VAL_SIZE = 5000


@dataclass(frozen=True)
class _Official:
    """The official train/test arrays: uint8 images N x C x H x W and integer labels N."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


# --------------------------------------------------------------------------- locating files


def _search_dirs(data_dir: Path | str | None, folder: str) -> list[Path]:
    """Directories to look in, in order (see the module docstring)."""
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        return [root / folder, root]
    dirs = []
    env = os.environ.get(ENV_DATA_DIR)
    if env:
        dirs.append(Path(env).expanduser() / folder)
    dirs.append(SYSTEM_DATA_DIR / folder)
    return dirs


def _find_file(directory: Path, name: str, allow_gz: bool) -> Path | None:
    for candidate in [name, name + ".gz"] if allow_gz else [name]:
        path = directory / candidate
        if path.is_file():
            return path
    return None


def _locate(
    title: str, names: list[str], dirs: list[Path], how_to_get: str, allow_gz: bool = False
) -> dict[str, Path]:
    """Map each expected file name to its path in the first directory holding all of them."""
    for directory in dirs:
        found = {name: _find_file(directory, name, allow_gz) for name in names}
        if all(found.values()):
            return {name: path for name, path in found.items() if path is not None}
    suffix = "[.gz]" if allow_gz else ""
    expected = ", ".join(name + suffix for name in names)
    searched = ", ".join(str(d) for d in dirs)
    raise CodesignError(
        f"{title}: dataset not found: expected files {expected} in one of: {searched}; {how_to_get}"
    )


# --------------------------------------------------------------------------- splitting and normalising


def _channel_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of uint8 images N x C x H x W, on the [0, 1] scale (exact, via histograms)."""
    values = np.arange(256, dtype=np.float64) / 255.0
    means, stds = [], []
    for channel in range(images.shape[1]):
        counts = np.bincount(images[:, channel].ravel(), minlength=256).astype(np.float64)
        mean = float(counts @ values / counts.sum())
        var = float(counts @ (values - mean) ** 2 / counts.sum())
        means.append(mean)
        stds.append(np.sqrt(var) if var > 0 else 1.0)
    return np.asarray(means), np.asarray(stds)


def _build(
    name: str,
    official: _Official,
    num_classes: int,
    seed: int,
    val_size: int | None,
    sources: tuple[Path, Path],
) -> Dataset:
    """Train/val from the official train set (stratified, seeded), test = the official test set.
    `sources`: the (first) training and test files, named when they hold too few images."""
    labels = np.asarray(official.train_labels, dtype=np.int64)
    remedy = "give the full dataset's files (--data-dir DIR)"
    if len(labels) < 2:
        raise CodesignError(
            f"{sources[0]}: images: expected at least 2 training images (split into train and validation), "
            f"found {len(labels)}; {remedy}"
        )
    if len(official.test_labels) < 1:
        raise CodesignError(f"{sources[1]}: images: expected at least 1 test image, found 0; {remedy}")
    if val_size is None:
        val_size = max(1, min(DEFAULT_VAL_SIZE, len(labels) // 10))
    if not 0 < val_size < len(labels):
        raise CodesignError(
            f"{sources[0]}: val_size: expected between 1 and {len(labels) - 1} validation images "
            f"(the file holds {len(labels)} training images), got {val_size}"
        )
    val_idx, train_idx = stratified_subset(labels, val_size, seed)
    train_images = official.train_images[train_idx]
    mean, std = _channel_stats(train_images)
    # The images stay uint8: (x - 255 m) / (255 s) == (x / 255 - m) / s, without a float copy of the data.
    shape = (1, -1, 1, 1)
    mean255 = (mean * 255.0).astype(np.float32).reshape(shape)
    std255 = (std * 255.0).astype(np.float32).reshape(shape)
    test_labels = np.asarray(official.test_labels, dtype=np.int64)
    return Dataset(
        name=name,
        train=to_split(train_images, labels[train_idx], mean255, std255),
        val=to_split(official.train_images[val_idx], labels[val_idx], mean255, std255),
        test=to_split(official.test_images, test_labels, mean255, std255),
        num_classes=num_classes,
    )


def _check_labels(path: Path, labels: np.ndarray, num_images: int, num_classes: int) -> None:
    if labels.shape != (num_images,):
        raise input_error(path, "labels", f"{num_images} labels (one per image)", int(labels.size))
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise input_error(path, "labels", f"integers in [0, {num_classes - 1}]", int(labels.max()))


# --------------------------------------------------------------------------- Fashion-MNIST (IDX files)

FASHION_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise CodesignError(
            f"{path}: expected a readable {'gzip ' if path.suffix == '.gz' else ''}file: {exc}"
        ) from None


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Parse an unsigned-byte IDX file (plain or .gz): big-endian magic 0x000008<ndim>, dims, then data."""
    raw = _read_bytes(path)
    expected_magic = 0x0800 | ndim
    magic = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    if magic != expected_magic:
        shown = "a file shorter than 4 bytes" if magic is None else f"0x{magic:08x}"
        raise CodesignError(
            f"{path}: IDX header: expected magic 0x{expected_magic:08x} (unsigned bytes, {ndim} dims), got {shown}"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise input_error(path, "IDX header", f"{header} bytes ({ndim} big-endian dimension sizes)", len(raw))
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    size = int(np.prod(dims))
    if len(raw) != header + size:
        raise input_error(path, "IDX data", f"{header + size} bytes for dims {dims}", len(raw))
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _read_fashion_part(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(images_path, 3)
    if images.shape[1:] != (28, 28):
        raise input_error(images_path, "image size", "28 x 28", f"{images.shape[1]} x {images.shape[2]}")
    labels = read_idx(labels_path, 1)
    _check_labels(labels_path, labels, images.shape[0], 10)
    return images[:, None, :, :], labels


def load_fashion_mnist(data_dir: Path | None = None, seed: int = 0, val_size: int | None = None) -> Dataset:
    """Fashion-MNIST (28x28 grey, 10 classes): 55,000 train, 5,000 validation, 10,000 test by default.

    Reads the four official IDX files (plain or gzipped). The official 10k test set is the test split;
    the validation split is a stratified, seeded (`seed`) draw of `val_size` images from the official
    60k training set (500 per class by default), and the remaining images form the train split.
    """
    dirs = _search_dirs(data_dir, "fashion-mnist")
    how = f"install them with `apt-get install dataset-fashion-mnist`, or pass --data-dir DIR (or set {ENV_DATA_DIR})"
    paths = _locate("Fashion-MNIST", list(FASHION_MNIST_FILES), dirs, how, allow_gz=True)
    train_x, train_y = _read_fashion_part(paths[FASHION_MNIST_FILES[0]], paths[FASHION_MNIST_FILES[1]])
    test_x, test_y = _read_fashion_part(paths[FASHION_MNIST_FILES[2]], paths[FASHION_MNIST_FILES[3]])
    official = _Official(train_x, train_y, test_x, test_y)
    sources = (paths[FASHION_MNIST_FILES[0]], paths[FASHION_MNIST_FILES[2]])
    return _build("fashion-mnist", official, 10, seed, val_size, sources)


# --------------------------------------------------------------------------- CIFAR-10 / CIFAR-100 (pickles)

# The globals a CIFAR pickle (Python 2 or 3, any protocol) needs to rebuild numpy arrays; nothing else.
_PICKLE_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
}


class _SafeUnpickler(pickle.Unpickler):
    """Refuses any global but numpy's array-rebuilding helpers, so a data file cannot run code."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a data file")
        return super().find_class(module, name)


def _read_cifar_batch(path: Path, label_key: bytes, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    try:
        with path.open("rb") as handle:
            batch = _SafeUnpickler(handle, encoding="bytes").load()
    except Exception as exc:  # a corrupt pickle can raise nearly anything
        raise CodesignError(
            f"{path}: expected a CIFAR python pickle batch: {type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(batch, dict) or b"data" not in batch or label_key not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise input_error(path, "batch", f"a dict with keys b'data' and {label_key!r}", keys)
    data = np.asarray(batch[b"data"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise input_error(path, "data", "uint8 array N x 3072", f"{data.dtype} {data.shape}")
    labels = np.asarray(batch[label_key], dtype=np.int64)
    _check_labels(path, labels, data.shape[0], num_classes)
    return data.reshape(-1, 3, 32, 32), labels


def _read_cifar_files(paths: list[Path], label_key: bytes, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    parts = [_read_cifar_batch(path, label_key, num_classes) for path in paths]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def load_cifar(
    variant: Literal[10, 100],
    data_dir: Path | None = None,
    seed: int = 0,
    val_size: int | None = None,
) -> Dataset:
    """CIFAR-10 or CIFAR-100 (32x32 RGB) from the official python pickles: 45k/5k/10k by default.

    CIFAR-10: `cifar-10-batches-py/data_batch_1..5` and `test_batch`; CIFAR-100: `cifar-100-python/train`
    and `test` (fine labels). `data_dir` may be that folder or the folder containing it. The validation
    split is a stratified, seeded (`seed`) draw of `val_size` images from the official training set.
    """
    if variant not in (10, 100):
        raise CodesignError(f"CIFAR variant: expected 10 or 100, got {variant!r}")
    folder = "cifar-10-batches-py" if variant == 10 else "cifar-100-python"
    train_names = [f"data_batch_{i}" for i in range(1, 6)] if variant == 10 else ["train"]
    test_names = ["test_batch"] if variant == 10 else ["test"]
    how = (
        f"download cifar-{variant}-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html, extract it "
        f"and pass --data-dir to the folder containing {folder} (or set {ENV_DATA_DIR}); nothing is downloaded"
    )
    paths = _locate(f"CIFAR-{variant}", train_names + test_names, _search_dirs(data_dir, folder), how)
    label_key = b"labels" if variant == 10 else b"fine_labels"
    train_x, train_y = _read_cifar_files([paths[n] for n in train_names], label_key, variant)
    test_x, test_y = _read_cifar_files([paths[n] for n in test_names], label_key, variant)
    official = _Official(train_x, train_y, test_x, test_y)
    sources = (paths[train_names[0]], paths[test_names[0]])
    return _build(f"cifar{variant}", official, variant, seed, val_size, sources)


def load_cifar10(data_dir: Path | None = None, seed: int = 0, val_size: int | None = None) -> Dataset:
    """CIFAR-10; see `load_cifar`."""
    return load_cifar(10, data_dir, seed, val_size)


def load_cifar100(data_dir: Path | None = None, seed: int = 0, val_size: int | None = None) -> Dataset:
    """CIFAR-100 (fine labels); see `load_cifar`."""
    return load_cifar(100, data_dir, seed, val_size)


# --------------------------------------------------------------------------- SVHN (MATLAB .mat files)

SVHN_FILES = ("train_32x32.mat", "test_32x32.mat")


def _read_svhn_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from scipy.io import loadmat

    try:
        mat = loadmat(path, variable_names=["X", "y"])
    except Exception as exc:  # scipy raises ValueError, MatReadError, NotImplementedError (v7.3), ...
        raise CodesignError(
            f"{path}: expected a MATLAB v5 file with X and y: {type(exc).__name__}: {exc}"
        ) from None
    if "X" not in mat or "y" not in mat:
        raise input_error(path, "variables", "X and y", sorted(k for k in mat if not k.startswith("__")))
    images, labels = np.asarray(mat["X"]), np.asarray(mat["y"]).reshape(-1)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[:3] != (32, 32, 3):
        raise input_error(path, "X", "uint8 array 32 x 32 x 3 x N", f"{images.dtype} {images.shape}")
    labels = labels.astype(np.int64)
    _check_labels(path, labels, images.shape[3], 11)
    labels[labels == 10] = 0  # SVHN stores the digit 0 as label 10
    return np.ascontiguousarray(images.transpose(3, 2, 0, 1)), labels


def load_svhn(data_dir: Path | None = None, seed: int = 0, val_size: int | None = None) -> Dataset:
    """SVHN cropped digits (32x32 RGB, 10 classes, label 10 mapped to digit 0): 68,257/5,000/26,032 by default.

    Reads `train_32x32.mat` and `test_32x32.mat` (the `extra` set is not used). The validation split is a
    stratified, seeded (`seed`) draw of `val_size` images from the official training set.
    """
    how = (
        "download train_32x32.mat and test_32x32.mat from http://ufldl.stanford.edu/housenumbers/ and pass "
        f"--data-dir DIR (or set {ENV_DATA_DIR}); nothing is downloaded"
    )
    paths = _locate("SVHN", list(SVHN_FILES), _search_dirs(data_dir, "svhn"), how)
    train_x, train_y = _read_svhn_file(paths[SVHN_FILES[0]])
    test_x, test_y = _read_svhn_file(paths[SVHN_FILES[1]])
    official = _Official(train_x, train_y, test_x, test_y)
    return _build("svhn", official, 10, seed, val_size, (paths[SVHN_FILES[0]], paths[SVHN_FILES[1]]))
