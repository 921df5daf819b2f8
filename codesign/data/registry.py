"""Datasets by name: the registry `DATASETS` (the `dataset:` of a workload, `--dataset` of `codesign infer`).

An entry is a loader `(data_dir: Path | None = None, seed: int = 0) -> Dataset`; `seed` fixes the
validation split. Loaders read local files only (nothing is downloaded); see `codesign.data.local`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from codesign.data.digits import load_digits_dataset
from codesign.data.local import load_cifar10, load_cifar100, load_fashion_mnist, load_svhn
from codesign.data.splits import Dataset, DataSubset, subsample
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


def load_dataset(
    name: str, seed: int = 0, data_dir: Path | None = None, subset: DataSubset | None = None
) -> Dataset:
    """A registered dataset with its fixed splits (`seed` picks the validation images); with `subset`, a
    stratified, seeded subset of each split, named `<name>-<subset label>` so that nothing trained on it is
    mistaken for what the whole dataset trains."""
    if name not in DATASETS:
        raise CodesignError(f"dataset: expected one of {dataset_names()}, got {name!r}")
    dataset = DATASETS[name](data_dir=data_dir, seed=seed)
    if subset is None or subset.whole:
        return dataset
    sizes = {"train_images": dataset.train, "val_images": dataset.val, "test_images": dataset.test}
    for field_name, split in sizes.items():
        wanted = getattr(subset, field_name)
        if wanted is not None and not 0 < wanted <= len(split):
            raise CodesignError(
                f"data.{field_name}: expected between 1 and {len(split)} ({name} has {len(split)} images there), "
                f"got {wanted}"
            )
    return subsample(
        dataset,
        subset.train_images,
        subset.val_images,
        subset.test_images,
        seed=seed,
        name=f"{name}-{subset.label()}",
    )
