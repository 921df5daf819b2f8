"""scikit-learn's bundled 8x8 digits: the embedded default dataset, no download, no files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from codesign.data.splits import Dataset, stratified_split, to_split


def load_digits_dataset(data_dir: Path | None = None, seed: int = 0) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1,797 images): 60% train, 20% validation, 20% test, stratified.

    `data_dir` is accepted like every dataset loader's and not used: the images come with scikit-learn."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).reshape(-1, 1, 8, 8)
    labels = np.asarray(bunch.target)
    train_idx, val_idx, test_idx = stratified_split(labels, (0.6, 0.2, 0.2), seed)
    mean, std = float(images[train_idx].mean()), float(images[train_idx].std())
    return Dataset(
        name="digits",
        train=to_split(images[train_idx], labels[train_idx], mean, std),
        val=to_split(images[val_idx], labels[val_idx], mean, std),
        test=to_split(images[test_idx], labels[test_idx], mean, std),
        num_classes=10,
    )
