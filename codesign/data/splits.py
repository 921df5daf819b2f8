"""Datasets, their fixed train/validation/test splits, and operations on splits (resize, subsample, batches).

The test split is only used for final reporting; thresholds and search decisions use validation.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from codesign.errors import CodesignError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Split:
    images: torch.Tensor  # float32, N x C x H x W, normalised
    labels: torch.Tensor  # int64, N

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class DataSubset:
    """How many images of each split a run uses (None: the whole split): a workload's `data:` section."""

    train_images: int | None = None
    val_images: int | None = None
    test_images: int | None = None

    @property
    def whole(self) -> bool:
        return self.train_images is None and self.val_images is None and self.test_images is None

    def label(self) -> str:
        """A name part saying which subset (what trained on it, such as a supernet, is named by it)."""
        sizes = (self.train_images, self.val_images, self.test_images)
        return "sub-" + "-".join("all" if n is None else str(n) for n in sizes)


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


def stratified_split(
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


def to_split(
    images: np.ndarray, labels: np.ndarray, mean: float | np.ndarray, std: float | np.ndarray
) -> Split:
    import torch

    x = torch.from_numpy(((images.astype(np.float32) - mean) / std).astype(np.float32))
    return Split(images=x.contiguous(), labels=torch.from_numpy(labels.astype(np.int64)))


def to_device(split: Split, device: torch.device) -> Split:
    """The split on `device` (the same object when it is there already): moved once, not per batch."""
    if split.images.device == device:
        return split
    return Split(split.images.to(device), split.labels.to(device))


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
    import torch

    order = torch.randperm(count, generator=generator)
    stop = count - batch_size + 1 if drop_last else count
    for begin in range(0, stop, batch_size):
        yield order[begin : begin + batch_size]


def stratified_subset(labels: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(chosen, rest): a stratified subset of exactly `n` indices and the remaining indices, both sorted.

    Per-class rounding in `stratified_split` can miss `n` by up to half the number of classes; the
    difference is made up with randomly chosen indices from the same seed, so the result is deterministic.
    """
    total = len(labels)
    if not 0 < n < total:
        raise CodesignError(f"subset size: expected between 1 and {total - 1}, got {n}")
    fraction = n / total
    chosen, _, rest = stratified_split(labels, (fraction, 0.0, 1.0 - fraction), seed)
    rng = np.random.default_rng([seed, 1])
    if len(chosen) > n:
        drop = rng.choice(chosen, size=len(chosen) - n, replace=False)
        chosen, rest = np.setdiff1d(chosen, drop), np.union1d(rest, drop)
    elif len(chosen) < n:
        add = rng.choice(rest, size=n - len(chosen), replace=False)
        chosen, rest = np.union1d(chosen, add), np.setdiff1d(rest, add)
    return chosen.astype(np.int64), rest.astype(np.int64)


def _subsample_split(split: Split, n: int | None, seed: int, which: str) -> Split:
    if n is None or n == len(split):
        return split
    if not 0 < n < len(split):
        raise CodesignError(f"subsample {which}: expected between 1 and {len(split)} images, got {n}")
    import torch

    chosen, _ = stratified_subset(split.labels.numpy(), n, seed)
    index = torch.from_numpy(chosen)
    return Split(images=split.images[index].contiguous(), labels=split.labels[index].contiguous())


def subsample(
    dataset: Dataset,
    train: int | None = None,
    val: int | None = None,
    test: int | None = None,
    seed: int = 0,
    name: str | None = None,
) -> Dataset:
    """A smaller copy for fast runs: a stratified subset of exactly n images of each split (None keeps it whole),
    named `name` (default: the dataset's own name).

    Subsets are drawn within each split, so images never move between train, val and test; the
    normalisation of the full dataset is kept as is.
    """
    return Dataset(
        name=name or dataset.name,
        train=_subsample_split(dataset.train, train, seed, "train"),
        val=_subsample_split(dataset.val, val, seed, "val"),
        test=_subsample_split(dataset.test, test, seed, "test"),
        num_classes=dataset.num_classes,
    )
