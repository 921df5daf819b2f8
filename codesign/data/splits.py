"""Datasets and their fixed train/validation/test splits.

The test split is only used for final reporting; thresholds and search decisions use validation.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from codesign.errors import CodesignError


@dataclass(frozen=True)
class Split:
    images: torch.Tensor  # float32, N x C x H x W, normalised
    labels: torch.Tensor  # int64, N

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class Dataset:
    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int

    @property
    def in_channels(self) -> int:
        return int(self.train.images.shape[1])

    @property
    def resolution(self) -> int:
        return int(self.train.images.shape[2])


def _stratified_split(
    labels: np.ndarray, fractions: tuple[float, float, float], seed: int
) -> list[np.ndarray]:
    """Indices of a stratified split; deterministic for a given seed."""
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[], [], []]
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        rng.shuffle(idx)
        n_train = int(round(fractions[0] * len(idx)))
        n_val = int(round(fractions[1] * len(idx)))
        parts[0].extend(idx[:n_train])
        parts[1].extend(idx[n_train : n_train + n_val])
        parts[2].extend(idx[n_train + n_val :])
    return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]


def _to_split(
    images: np.ndarray, labels: np.ndarray, mean: float | np.ndarray, std: float | np.ndarray
) -> Split:
    x = torch.from_numpy(((images.astype(np.float32) - mean) / std).astype(np.float32))
    return Split(images=x.contiguous(), labels=torch.from_numpy(labels.astype(np.int64)))


def load_digits_dataset(seed: int = 0) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1,797 images): 60% train, 20% validation, 20% test, stratified."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).reshape(-1, 1, 8, 8)
    labels = np.asarray(bunch.target)
    train_idx, val_idx, test_idx = _stratified_split(labels, (0.6, 0.2, 0.2), seed)
    mean, std = float(images[train_idx].mean()), float(images[train_idx].std())
    return Dataset(
        name="digits",
        train=_to_split(images[train_idx], labels[train_idx], mean, std),
        val=_to_split(images[val_idx], labels[val_idx], mean, std),
        test=_to_split(images[test_idx], labels[test_idx], mean, std),
        num_classes=10,
    )


def dataset_names() -> list[str]:
    from codesign.data.local import dataset_loaders

    return sorted(["digits", *dataset_loaders()])


def load_dataset(name: str, seed: int = 0, data_dir: Path | None = None) -> Dataset:
    """`digits` (bundled) or a local dataset: fashion-mnist, cifar10, cifar100, svhn (see codesign.data.local)."""
    from codesign.data.local import dataset_loaders

    if name == "digits":
        return load_digits_dataset(seed=seed)
    loaders = dataset_loaders()
    if name not in loaders:
        raise CodesignError(f"dataset: expected one of {dataset_names()}, got {name!r}")
    return loaders[name](data_dir=data_dir, seed=seed)


def resize_split(split: Split, resolution: int) -> Split:
    """The split at another input resolution (bilinear, anti-aliased when shrinking)."""
    if split.images.shape[-1] == resolution:
        return split
    import torch.nn.functional as F

    images = F.interpolate(
        split.images, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False
    )
    return Split(images=images.contiguous(), labels=split.labels)


def shuffled_batches(
    count: int, batch_size: int, generator: torch.Generator, drop_last: bool = False
) -> Iterator[torch.Tensor]:
    """Index batches of one shuffled pass over `count` items (deterministic for a seeded generator)."""
    order = torch.randperm(count, generator=generator)
    stop = count - batch_size + 1 if drop_last else count
    for begin in range(0, stop, batch_size):
        yield order[begin : begin + batch_size]
