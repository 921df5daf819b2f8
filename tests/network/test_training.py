from __future__ import annotations

import torch

from codesign.exits import CachedExits
from codesign.network.model import build_model, load_shared_weights
from codesign.network.settings import TrainingConfig
from codesign.network.training import exit_logits, train_architecture
from tests.conftest import tiny_spec


def test_short_training_learns_and_is_deterministic(digits, trained_tiny):
    spec, trained = trained_tiny
    model = load_shared_weights(build_model(spec), trained.state_dict)
    cached = CachedExits.from_logits(exit_logits(model, digits.val), digits.val.labels.numpy())
    final_accuracy = cached.correct[-1].mean()
    assert final_accuracy > 0.6, final_accuracy  # chance is 0.1
    again = train_architecture(spec, digits, TrainingConfig(epochs=4, seed=0))
    for key, value in trained.state_dict.items():
        assert torch.equal(value, again.state_dict[key]), key


def test_candidate_with_fewer_heads_reuses_architecture_weights(trained_tiny, digits):
    spec, trained = trained_tiny
    full = load_shared_weights(build_model(spec), trained.state_dict)
    partial = load_shared_weights(build_model(tiny_spec(exits=(False, True))), trained.state_dict)
    images = digits.val.images[:16]
    with torch.no_grad():
        full_out, partial_out = full(images), partial(images)
    assert len(full_out) == 3 and len(partial_out) == 2
    assert torch.equal(full_out[1], partial_out[0]) and torch.equal(full_out[2], partial_out[1])
