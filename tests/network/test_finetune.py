"""Head fine-tuning: the shortcuts that make it fast compute exactly what the plain steps compute."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from codesign.network.finetune import calibrate, finetune_heads
from codesign.network.model import ExitHead, build_model
from codesign.network.settings import FinetuneConfig
from codesign.spec import ExitBranch
from tests.conftest import tiny_spec


@pytest.mark.parametrize("branch", [ExitBranch(pool=2), ExitBranch(convs=1, channels=8, kernel=3, pool=1)])
def test_a_head_is_its_fixed_part_then_its_learned_part_and_pooling_once_equals_pooling_per_batch(branch):
    torch.manual_seed(0)
    head = ExitHead(16, branch, 10, 4, 8, feature_size=4).eval()
    features = torch.relu(torch.randn(300, 16, 4, 4))
    with torch.no_grad():
        whole = head(features)
        assert torch.equal(whole, head.learned_part(head.fixed_part(features)))
        # what `finetune_heads` caches: the fixed part of every image at once, then read per batch
        cached = head.fixed_part(features)
        for begin in range(0, 300, 64):
            batch = head.fixed_part(features[begin : begin + 64])
            assert torch.equal(batch, cached[begin : begin + 64])
    learned = {name for name, _ in head.named_parameters()}
    assert all(not name.startswith("pool") for name in learned)  # nothing the cache skips ever learns


def _head_run(digits, foreach: bool) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = build_model(tiny_spec()).eval()
    calibrate(model, digits.train, 256)
    head = model.heads["0"]
    optimiser = torch.optim.Adam(head.parameters(), lr=1e-2, foreach=foreach)
    generator = torch.Generator().manual_seed(1)
    features = model.stages[0](model.input_quant(digits.train.images[:512])).detach()
    for _ in range(40):
        batch = torch.randint(0, 512, (64,), generator=generator)
        loss = nn.functional.cross_entropy(head(features[batch]), digits.train.labels[:512][batch])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    return {k: v.clone() for k, v in head.state_dict().items()}


def test_the_foreach_optimiser_takes_bit_for_bit_the_steps_of_the_per_tensor_one(digits):
    plain, foreach = _head_run(digits, foreach=False), _head_run(digits, foreach=True)
    assert plain.keys() == foreach.keys()
    assert all(torch.equal(plain[k], foreach[k]) for k in plain)


def test_head_fine_tuning_is_deterministic_and_touches_only_the_heads(digits):
    torch.manual_seed(0)
    model = build_model(tiny_spec()).eval()
    calibrate(model, digits.train, 256)
    twin = copy.deepcopy(model)
    config = FinetuneConfig(head_steps=60, head_check_steps=10)
    finetune_heads(model, digits.train, digits.val, config)
    finetune_heads(twin, digits.train, digits.val, config)
    state, again = model.state_dict(), twin.state_dict()
    assert all(torch.equal(state[k], again[k]) for k in state)
    torch.manual_seed(0)
    start = build_model(tiny_spec()).eval()
    calibrate(start, digits.train, 256)
    before = start.state_dict()
    changed = {k for k in state if not torch.equal(state[k], before[k])}
    assert changed and all(k.startswith("heads.") for k in changed)


def test_calibrating_heads_on_the_backbone_run_once_equals_running_the_whole_network_twice(digits):
    torch.manual_seed(0)
    model = build_model(tiny_spec()).eval()
    calibrate(model, digits.train, 256)  # the backbone: calibrated, then frozen
    twin = copy.deepcopy(model)
    early = [model.heads["0"], model.heads["1"]]
    calibrate(model, digits.train, 300, batch_size=64, only=early)  # heads recognised: the short path
    wrapped = nn.ModuleList([twin.heads["0"], twin.heads["1"]])  # not a head itself: the whole network runs
    calibrate(twin, digits.train, 300, batch_size=64, only=[wrapped])
    state, again = model.state_dict(), twin.state_dict()
    assert all(torch.equal(state[k], again[k]) for k in state)
    assert not all(torch.equal(state[k], v) for k, v in build_model(tiny_spec()).state_dict().items())
