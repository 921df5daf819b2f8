from __future__ import annotations

from codesign.spec import CandidateSpec
from tests.conftest import tiny_spec


def test_spec_roundtrip_and_stable_key():
    spec = tiny_spec(exits=(False, True))
    again = CandidateSpec.from_dict(spec.to_dict())
    assert again == spec and hash(again) == hash(spec)
    assert again.key() == spec.key()
    assert spec.active_exit_stages == (1, 2)
    assert spec.active_thresholds == (0.2,)


def test_architecture_shares_weights_across_exit_choices():
    a, b = tiny_spec(exits=(False, True)), tiny_spec(exits=(True, False))
    assert a.key() != b.key()
    assert a.architecture() == b.architecture()
    assert a.without_early_exits().active_exit_stages == (2,)
