"""`load_dataset` with a subset: exact sizes, stratified, seeded, and named apart from the whole dataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from codesign.data.registry import load_dataset
from codesign.data.splits import DataSubset
from codesign.errors import CodesignError


def test_a_subset_has_exactly_the_sizes_asked_and_its_own_name() -> None:
    whole = load_dataset("digits")
    subset = DataSubset(train_images=300, val_images=100)
    small = load_dataset("digits", subset=subset)
    assert (len(small.train), len(small.val), len(small.test)) == (300, 100, len(whole.test))
    assert small.name == "digits-sub-300-100-all" != whole.name
    assert torch.equal(small.test.images, whole.test.images)
    counts = np.bincount(small.train.labels.numpy(), minlength=10)
    assert counts.min() >= 28 and counts.max() <= 32  # stratified: ~30 of each digit
    again = load_dataset("digits", subset=subset)
    assert torch.equal(again.train.images, small.train.images)
    other_seed = load_dataset("digits", seed=1, subset=subset)
    assert not torch.equal(other_seed.train.labels, small.train.labels) or not torch.equal(
        other_seed.train.images, small.train.images
    )
    assert load_dataset("digits", subset=DataSubset()).name == "digits"


def test_a_subset_larger_than_the_split_names_the_field() -> None:
    with pytest.raises(CodesignError, match=r"data\.test_images: expected between 1 and 360"):
        load_dataset("digits", subset=DataSubset(test_images=361))
