"""Datasets by name: the registry `DATASETS` (the `dataset:` of a workload, `--dataset` of `codesign infer`).

An entry is a loader `(data_dir: Path | None = None, seed: int = 0) -> Dataset`; `seed` fixes the
validation split. Loaders read local files only (nothing is downloaded); see `codesign.data.local`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from codesign.data.digits import load_digits_dataset
from codesign.data.local import load_cifar10, load_cifar100, load_fashion_mnist, load_svhn
from codesign.data.splits import Dataset
from codesign.errors import CodesignError
from codesign.registry import Registry

Loader = Callable[..., Dataset]
DATASETS: Registry[Loader] = Registry(
    "dataset",
    {
        "digits": load_digits_dataset,
        "fashion-mnist": load_fashion_mnist,
        "cifar10": load_cifar10,
        "cifar100": load_cifar100,
        "svhn": load_svhn,
    },
)


def dataset_names() -> list[str]:
    return sorted(DATASETS)


def load_dataset(name: str, seed: int = 0, data_dir: Path | None = None) -> Dataset:
    """A registered dataset with its fixed splits (`seed` picks the validation images)."""
    if name not in DATASETS:
        raise CodesignError(f"dataset: expected one of {dataset_names()}, got {name!r}")
    return DATASETS[name](data_dir=data_dir, seed=seed)
