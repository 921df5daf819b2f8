"""Dataset loaders: tiny files in each official format, written here, loaded through the public functions."""

from __future__ import annotations

import gzip
import os
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from codesign.data import local as datasets
from codesign.data.local import load_cifar, load_cifar10, load_cifar100, load_fashion_mnist, load_svhn
from codesign.data.registry import DATASETS
from codesign.data.splits import Dataset, subsample
from codesign.errors import CodesignError


def balanced_labels(num_classes: int, per_class: int, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(np.repeat(np.arange(num_classes), per_class))


def random_images(rng: np.random.Generator, n: int, channels: int, size: int) -> np.ndarray:
    return rng.integers(0, 256, size=(n, channels, size, size), dtype=np.uint8)


def write_idx(path: Path, array: np.ndarray, gz: bool) -> Path:
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)
    return path


def make_fashion(directory: Path, gz: bool, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    raw = {
        "train_x": random_images(rng, 60, 1, 28),
        "train_y": balanced_labels(10, 6, rng),
        "test_x": random_images(rng, 20, 1, 28),
        "test_y": balanced_labels(10, 2, rng),
    }
    directory.mkdir(parents=True, exist_ok=True)
    write_idx(directory / "train-images-idx3-ubyte", raw["train_x"][:, 0], gz)
    write_idx(directory / "train-labels-idx1-ubyte", raw["train_y"], gz)
    write_idx(directory / "t10k-images-idx3-ubyte", raw["test_x"][:, 0], gz)
    write_idx(directory / "t10k-labels-idx1-ubyte", raw["test_y"], gz)
    return raw


def write_cifar_batch(
    path: Path, images: np.ndarray, labels: np.ndarray, label_key: bytes, protocol: int
) -> None:
    batch = {
        b"batch_label": b"testing",
        label_key: [int(v) for v in labels],
        b"data": images.reshape(len(images), -1),
    }
    path.write_bytes(pickle.dumps(batch, protocol=protocol))


def make_cifar10(root: Path, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    raw = {
        "train_x": random_images(rng, 50, 3, 32),
        "train_y": balanced_labels(10, 5, rng),
        "test_x": random_images(rng, 20, 3, 32),
        "test_y": balanced_labels(10, 2, rng),
    }
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i in range(5):  # protocol 2, like the official Python 2 pickles
        part = slice(10 * i, 10 * (i + 1))
        write_cifar_batch(
            folder / f"data_batch_{i + 1}", raw["train_x"][part], raw["train_y"][part], b"labels", 2
        )
    write_cifar_batch(folder / "test_batch", raw["test_x"], raw["test_y"], b"labels", 2)
    return raw


def make_cifar100(root: Path, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    raw = {
        "train_x": random_images(rng, 300, 3, 32),
        "train_y": balanced_labels(100, 3, rng),
        "test_x": random_images(rng, 30, 3, 32),
        "test_y": rng.integers(0, 100, size=30),
    }
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    write_cifar_batch(
        folder / "train", raw["train_x"], raw["train_y"], b"fine_labels", pickle.HIGHEST_PROTOCOL
    )
    write_cifar_batch(folder / "test", raw["test_x"], raw["test_y"], b"fine_labels", pickle.HIGHEST_PROTOCOL)
    return raw


def write_svhn_mat(path: Path, images: np.ndarray, digits: np.ndarray) -> None:
    stored = np.where(digits == 0, 10, digits).astype(np.uint8).reshape(-1, 1)  # SVHN stores 0 as 10
    scipy.io.savemat(path, {"X": images.transpose(2, 3, 1, 0), "y": stored})  # N x C x H x W -> H x W x C x N


def make_svhn(directory: Path, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    raw = {
        "train_x": random_images(rng, 60, 3, 32),
        "train_y": balanced_labels(10, 6, rng),
        "test_x": random_images(rng, 20, 3, 32),
        "test_y": balanced_labels(10, 2, rng),
    }
    directory.mkdir(parents=True)
    write_svhn_mat(directory / "train_32x32.mat", raw["train_x"], raw["train_y"])
    write_svhn_mat(directory / "test_32x32.mat", raw["test_x"], raw["test_y"])
    return raw


def affine_from_test(ds: Dataset, test_x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (a, b) with normalised = a * raw_uint8 + b, fitted on the (unshuffled) test split."""
    fits = [
        np.polyfit(test_x[:, c].ravel().astype(np.float64), ds.test.images[:, c].double().numpy().ravel(), 1)
        for c in range(test_x.shape[1])
    ]
    return np.array([f[0] for f in fits]), np.array([f[1] for f in fits])


def to_raw(images: torch.Tensor, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x = (images.double().numpy() - b[None, :, None, None]) / a[None, :, None, None]
    assert np.abs(x - np.rint(x)).max() < 1e-2
    return np.rint(x).astype(np.uint8)


def check_dataset(ds: Dataset, raw: dict[str, np.ndarray], val_size: int, num_classes: int) -> None:
    n_train, channels, size = raw["train_x"].shape[0], raw["train_x"].shape[1], raw["train_x"].shape[2]
    assert (len(ds.train), len(ds.val), len(ds.test)) == (n_train - val_size, val_size, len(raw["test_x"]))
    for split in (ds.train, ds.val, ds.test):
        assert split.images.dtype == torch.float32 and split.labels.dtype == torch.int64
        assert tuple(split.images.shape[1:]) == (channels, size, size)
    assert ds.num_classes == num_classes and ds.in_channels == channels and ds.resolution == size
    # The test split is the official test set, in order.
    assert np.array_equal(ds.test.labels.numpy(), raw["test_y"])
    a, b = affine_from_test(ds, raw["test_x"])
    assert np.array_equal(to_raw(ds.test.images, a, b), raw["test_x"])
    # Train and val partition the official train set, each image keeping its own label.
    label_of = {img.tobytes(): int(y) for img, y in zip(raw["train_x"], raw["train_y"], strict=True)}
    train_raw, val_raw = to_raw(ds.train.images, a, b), to_raw(ds.val.images, a, b)
    train_keys = [img.tobytes() for img in train_raw]
    val_keys = [img.tobytes() for img in val_raw]
    assert not set(train_keys) & set(val_keys)
    assert set(train_keys) | set(val_keys) == set(label_of)
    assert [label_of[k] for k in train_keys] == ds.train.labels.tolist()
    assert [label_of[k] for k in val_keys] == ds.val.labels.tolist()
    # Normalisation: the train split's own per-channel mean/std on the [0, 1] scale, applied to every split.
    # normalised = (raw / 255 - mean) / std = a * raw + b, so std = 1 / (255 a) and mean = -b * std.
    scale_std = 1.0 / (255.0 * a)
    scale_mean = -b * scale_std
    train01 = train_raw.astype(np.float64) / 255.0
    np.testing.assert_allclose(scale_mean, train01.mean(axis=(0, 2, 3)), atol=1e-5)
    np.testing.assert_allclose(scale_std, train01.std(axis=(0, 2, 3)), rtol=1e-4)
    all01 = raw["train_x"].astype(np.float64) / 255.0
    assert not np.allclose(scale_mean, all01.mean(axis=(0, 2, 3)), atol=1e-6, rtol=0)
    np.testing.assert_allclose(ds.train.images.double().mean(dim=(0, 2, 3)).numpy(), 0.0, atol=1e-4)
    np.testing.assert_allclose(
        ds.train.images.double().std(dim=(0, 2, 3), correction=0).numpy(), 1.0, rtol=1e-4
    )


def assert_one_line_error(excinfo: pytest.ExceptionInfo[CodesignError], *parts: str) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    for part in parts:
        assert part in message, (part, message)
    return message


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_loads_idx_files(tmp: Path, gz: bool) -> None:
    raw = make_fashion(tmp / "fm", gz)
    ds = load_fashion_mnist(tmp / "fm", seed=0, val_size=10)
    assert ds.name == "fashion-mnist"
    check_dataset(ds, raw, val_size=10, num_classes=10)
    assert torch.bincount(ds.val.labels, minlength=10).tolist() == [1] * 10  # stratified


def test_fashion_mnist_split_is_deterministic_per_seed(tmp: Path) -> None:
    make_fashion(tmp / "fm", gz=True)
    first, again = (
        load_fashion_mnist(tmp / "fm", seed=3, val_size=10),
        load_fashion_mnist(tmp / "fm", seed=3, val_size=10),
    )
    other = load_fashion_mnist(tmp / "fm", seed=4, val_size=10)
    assert torch.equal(first.val.images, again.val.images) and torch.equal(
        first.train.labels, again.train.labels
    )
    assert not torch.equal(first.val.images, other.val.images)


def test_fashion_mnist_data_dir_may_be_the_parent_and_env_var_is_searched(
    tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_fashion(tmp / "root" / "fashion-mnist", gz=True)
    assert len(load_fashion_mnist(tmp / "root", val_size=10).test) == 20
    monkeypatch.setenv(datasets.ENV_DATA_DIR, str(tmp / "root"))
    monkeypatch.setattr(datasets, "SYSTEM_DATA_DIR", tmp / "nothing")
    assert len(load_fashion_mnist(val_size=10).test) == 20


def test_fashion_mnist_missing_names_files_dirs_and_how_to_get_them(
    tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(CodesignError) as excinfo:
        load_fashion_mnist(tmp / "absent")
    assert_one_line_error(
        excinfo,
        "Fashion-MNIST",
        "train-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
        str(tmp / "absent"),
        "apt-get install dataset-fashion-mnist",
        "--data-dir",
    )
    monkeypatch.setenv(datasets.ENV_DATA_DIR, str(tmp / "env"))
    monkeypatch.setattr(datasets, "SYSTEM_DATA_DIR", tmp / "system")
    with pytest.raises(CodesignError) as excinfo:
        load_fashion_mnist()
    assert_one_line_error(excinfo, str(tmp / "env" / "fashion-mnist"), str(tmp / "system" / "fashion-mnist"))


def test_fashion_mnist_incomplete_directory_is_missing(tmp: Path) -> None:
    make_fashion(tmp / "fm", gz=False)
    (tmp / "fm" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(CodesignError) as excinfo:
        load_fashion_mnist(tmp / "fm")
    assert_one_line_error(excinfo, "t10k-labels-idx1-ubyte", str(tmp / "fm"))


def _corrupt(path: Path, payload: bytes) -> None:
    path.write_bytes(payload)


@pytest.mark.parametrize(
    ("name", "payload", "expected"),
    [
        ("train-images-idx3-ubyte", b"\x00\x00\x08\x01" + bytes(8), "magic 0x00000803"),
        ("train-labels-idx1-ubyte", b"\x00\x00\x08\x03" + bytes(8), "magic 0x00000801"),
        ("train-images-idx3-ubyte", b"\x00\x00", "shorter than 4 bytes"),
        (
            "train-images-idx3-ubyte",
            b"\x00\x00\x08\x03" + np.array([2, 28, 28], ">u4").tobytes() + bytes(100),
            "IDX data",
        ),
        (
            "train-images-idx3-ubyte",
            b"\x00\x00\x08\x03" + np.array([2, 28, 27], ">u4").tobytes() + bytes(2 * 28 * 27),
            "28 x 28",
        ),
        (
            "train-labels-idx1-ubyte",
            b"\x00\x00\x08\x01" + np.array([60], ">u4").tobytes() + bytes([12] * 60),
            "[0, 9]",
        ),
        (
            "t10k-labels-idx1-ubyte",
            b"\x00\x00\x08\x01" + np.array([3], ">u4").tobytes() + bytes(3),
            "20 labels",
        ),
    ],
)
def test_fashion_mnist_malformed_idx_is_one_line_error(
    tmp: Path, name: str, payload: bytes, expected: str
) -> None:
    make_fashion(tmp / "fm", gz=False)
    _corrupt(tmp / "fm" / name, payload)
    with pytest.raises(CodesignError) as excinfo:
        load_fashion_mnist(tmp / "fm", val_size=10)
    assert_one_line_error(excinfo, str(tmp / "fm" / name), expected)


def test_fashion_mnist_corrupt_gzip_is_one_line_error(tmp: Path) -> None:
    make_fashion(tmp / "fm", gz=True)
    path = tmp / "fm" / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(CodesignError) as excinfo:
        load_fashion_mnist(tmp / "fm", val_size=10)
    assert_one_line_error(excinfo, str(path), "gzip")


def test_val_size_out_of_range_is_an_error(tmp: Path) -> None:
    make_fashion(tmp / "fm", gz=False)
    with pytest.raises(CodesignError) as excinfo:
        load_fashion_mnist(tmp / "fm", val_size=60)
    assert_one_line_error(excinfo, "val_size", "got 60")


def test_cifar10_loads_pickled_batches(tmp: Path) -> None:
    raw = make_cifar10(tmp)
    ds = load_cifar(10, tmp, seed=0, val_size=10)
    assert ds.name == "cifar10"
    check_dataset(ds, raw, val_size=10, num_classes=10)
    # data_dir may also be the cifar-10-batches-py folder itself.
    same = load_cifar10(tmp / "cifar-10-batches-py", seed=0, val_size=10)
    assert torch.equal(same.val.images, ds.val.images) and torch.equal(same.train.labels, ds.train.labels)


def test_cifar100_uses_fine_labels(tmp: Path) -> None:
    raw = make_cifar100(tmp)
    ds = load_cifar100(tmp, seed=1, val_size=100)
    assert ds.name == "cifar100"
    check_dataset(ds, raw, val_size=100, num_classes=100)
    assert torch.bincount(ds.val.labels, minlength=100).tolist() == [1] * 100


def test_cifar_missing_and_malformed(tmp: Path) -> None:
    with pytest.raises(CodesignError) as excinfo:
        load_cifar10(tmp / "absent")
    assert_one_line_error(
        excinfo, "CIFAR-10", "data_batch_1", "test_batch", str(tmp / "absent"), "--data-dir"
    )
    with pytest.raises(CodesignError) as excinfo:
        load_cifar100(tmp / "absent")
    assert_one_line_error(excinfo, "CIFAR-100", "train", str(tmp / "absent" / "cifar-100-python"))
    make_cifar10(tmp)
    batch = tmp / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(b"not a pickle")
    with pytest.raises(CodesignError) as excinfo:
        load_cifar10(tmp, val_size=10)
    assert_one_line_error(excinfo, str(batch), "CIFAR python pickle")
    write_cifar_batch(batch, np.zeros((10, 3, 16, 16), np.uint8), np.zeros(10), b"labels", 2)
    with pytest.raises(CodesignError) as excinfo:
        load_cifar10(tmp, val_size=10)
    assert_one_line_error(excinfo, str(batch), "N x 3072")
    with pytest.raises(CodesignError):
        load_cifar(7, tmp)  # type: ignore[arg-type]


class _Payload:
    def __reduce__(self) -> tuple[object, tuple[()]]:
        return (os.getcwd, ())


def test_cifar_pickle_cannot_call_arbitrary_globals(tmp: Path) -> None:
    make_cifar10(tmp)
    batch = tmp / "cifar-10-batches-py" / "test_batch"
    batch.write_bytes(pickle.dumps({b"data": _Payload(), b"labels": []}))
    with pytest.raises(CodesignError) as excinfo:
        load_cifar10(tmp, val_size=10)
    assert_one_line_error(excinfo, str(batch), "getcwd", "not allowed")


def test_svhn_loads_mat_files_and_maps_label_10_to_0(tmp: Path) -> None:
    raw = make_svhn(tmp / "svhn")
    assert 10 in scipy.io.loadmat(tmp / "svhn" / "train_32x32.mat")["y"]
    ds = load_svhn(tmp, seed=0, val_size=10)  # the parent folder works too
    assert ds.name == "svhn"
    check_dataset(ds, raw, val_size=10, num_classes=10)
    assert int(ds.test.labels.max()) == 9 and (ds.test.labels == 0).any()


def test_svhn_missing_and_malformed(tmp: Path) -> None:
    with pytest.raises(CodesignError) as excinfo:
        load_svhn(tmp / "absent")
    assert_one_line_error(excinfo, "SVHN", "train_32x32.mat", "test_32x32.mat", str(tmp / "absent"))
    make_svhn(tmp / "svhn")
    path = tmp / "svhn" / "test_32x32.mat"
    path.write_bytes(b"garbage" * 20)
    with pytest.raises(CodesignError) as excinfo:
        load_svhn(tmp / "svhn", val_size=10)
    assert_one_line_error(excinfo, str(path), "MATLAB")
    scipy.io.savemat(path, {"X": np.zeros((28, 28, 1, 4), np.uint8), "y": np.ones((4, 1), np.uint8)})
    with pytest.raises(CodesignError) as excinfo:
        load_svhn(tmp / "svhn", val_size=10)
    assert_one_line_error(excinfo, str(path), "32 x 32 x 3 x N")


def test_registry_loaders_take_data_dir_and_seed(tmp: Path) -> None:
    loaders = {name: loader for name, loader in DATASETS.items() if name != "digits"}
    assert sorted(loaders) == ["cifar10", "cifar100", "fashion-mnist", "svhn"]
    make_fashion(tmp / "fashion-mnist", gz=True)
    make_cifar10(tmp)
    make_cifar100(tmp)
    make_svhn(tmp / "svhn")
    for name, loader in loaders.items():
        ds = loader(data_dir=tmp, seed=0, val_size=10 if name != "cifar100" else 100)
        assert ds.name == name


def test_subsample_is_stratified_deterministic_and_keeps_splits(tmp: Path) -> None:
    make_cifar100(tmp)
    ds = load_cifar100(tmp, val_size=100)
    small = subsample(ds, train=100, val=50, seed=0)
    assert (len(small.train), len(small.val), len(small.test)) == (100, 50, len(ds.test))
    assert small.test is ds.test
    assert torch.bincount(small.train.labels, minlength=100).tolist() == [1] * 100
    assert torch.bincount(small.val.labels, minlength=100).max() <= 1
    for part, whole in ((small.train, ds.train), (small.val, ds.val)):
        whole_keys = {img.numpy().tobytes() for img in whole.images}
        assert all(img.numpy().tobytes() in whole_keys for img in part.images)
    again = subsample(ds, train=100, val=50, seed=0)
    assert torch.equal(again.val.images, small.val.images)
    with pytest.raises(CodesignError) as excinfo:
        subsample(ds, test=10_000)
    assert_one_line_error(excinfo, "test", "got 10000")


def test_real_fashion_mnist_from_debian_package() -> None:
    system = datasets.SYSTEM_DATA_DIR / "fashion-mnist"
    if (
        not (system / "train-images-idx3-ubyte.gz").is_file()
        and not (system / "train-images-idx3-ubyte").is_file()
    ):
        pytest.skip(f"Fashion-MNIST not installed in {system} (apt-get install dataset-fashion-mnist)")
    start = time.perf_counter()
    ds = load_fashion_mnist(system)
    elapsed = time.perf_counter() - start
    assert (len(ds.train), len(ds.val), len(ds.test)) == (55_000, 5_000, 10_000)
    assert tuple(ds.train.images.shape[1:]) == (1, 28, 28)
    assert torch.bincount(ds.val.labels).tolist() == [500] * 10
    assert torch.bincount(ds.test.labels).tolist() == [1000] * 10
    assert abs(float(ds.train.images.mean())) < 1e-3 and abs(float(ds.train.images.std()) - 1.0) < 1e-3
    assert elapsed < 30
