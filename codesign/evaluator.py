"""Candidate spec -> measured accuracy, exit fractions and expected hardware cost.

The pipeline per candidate, each arrow one module:
spec -> model (`model`) -> trained weights (`training`) -> exit statistics (`exits`) -> ONNX
(`export`) -> layer list (`layers`) -> layer costs (`cost_engine`) -> expected costs (`exit_costs`).

Candidates that differ only in active exits and thresholds share an architecture: it is trained
once (every exit head present), its per-exit logits are cached, and its ONNX layer list is read
once; a candidate's layers are the architecture's minus the heads it switches off.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from codesign.cost_engine import CostEngine
from codesign.data import Dataset
from codesign.exit_costs import ExitCost, ExpectedCost, expected_cost, per_exit_costs
from codesign.exits import CachedExits, ExitStats
from codesign.export import export_qcdq
from codesign.layers import LayerSpec, layers_from_onnx
from codesign.model import build_model, load_shared_weights
from codesign.spec import CandidateSpec
from codesign.training import TrainingConfig, exit_logits, train_architecture


@dataclass(frozen=True)
class CandidateResult:
    """Everything measured for one candidate. Validation figures drive the search; test figures are reported."""

    spec: CandidateSpec
    val: ExitStats
    test: ExitStats
    exits: tuple[ExitCost, ...]  # per active exit, final last
    expected_val: ExpectedCost
    expected_test: ExpectedCost
    static: ExitCost  # the same backbone with only the final classifier
    static_val_accuracy: float
    static_test_accuracy: float
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def num_exits(self) -> int:
        return len(self.exits)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["spec"] = self.spec.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CandidateResult:
        return cls(
            spec=CandidateSpec.from_dict(data["spec"]),
            val=ExitStats(**{k: tuple(v) if isinstance(v, list) else v for k, v in data["val"].items()}),
            test=ExitStats(**{k: tuple(v) if isinstance(v, list) else v for k, v in data["test"].items()}),
            exits=tuple(ExitCost(**e) for e in data["exits"]),
            expected_val=ExpectedCost(**data["expected_val"]),
            expected_test=ExpectedCost(**data["expected_test"]),
            static=ExitCost(**data["static"]),
            static_val_accuracy=data["static_val_accuracy"],
            static_test_accuracy=data["static_test_accuracy"],
            timings=dict(data.get("timings", {})),
        )


@dataclass
class TrainedArchitecture:
    spec: CandidateSpec
    state_dict: dict[str, torch.Tensor]
    val: CachedExits
    test: CachedExits
    layers: list[LayerSpec]
    train_seconds: float


class Evaluator:
    """Evaluates candidates on one dataset and one accelerator, reusing everything that can be reused."""

    def __init__(
        self, dataset: Dataset, training: TrainingConfig, engine: CostEngine, weights_dir: Path | None = None
    ):
        self.dataset = dataset
        self.training = training
        self.engine = engine
        self.weights_dir = weights_dir
        self._architectures: dict[str, TrainedArchitecture] = {}

    def trained(self, spec: CandidateSpec) -> TrainedArchitecture:
        architecture = spec.architecture()
        key = architecture.key()
        if key not in self._architectures:
            self._architectures[key] = self._train(architecture)
        return self._architectures[key]

    def _train(self, architecture: CandidateSpec) -> TrainedArchitecture:
        start = time.perf_counter()
        path = self.weights_dir / f"{architecture.key()}.pt" if self.weights_dir else None
        if path is not None and path.is_file():
            state = torch.load(path, map_location="cpu", weights_only=True)
        else:
            state = train_architecture(architecture, self.dataset, self.training).state_dict
            if path is not None:
                _atomic_torch_save(state, path)
        train_seconds = time.perf_counter() - start
        model = load_shared_weights(build_model(architecture), state)
        labels_val = self.dataset.val.labels.numpy()
        labels_test = self.dataset.test.labels.numpy()
        val = CachedExits.from_logits(exit_logits(model, self.dataset.val), labels_val)
        test = CachedExits.from_logits(exit_logits(model, self.dataset.test), labels_test)
        with tempfile.TemporaryDirectory() as tmp:
            layers = layers_from_onnx(export_qcdq(model, Path(tmp) / "architecture.onnx"))
        return TrainedArchitecture(architecture, state, val, test, layers, train_seconds)

    def model(self, spec: CandidateSpec) -> torch.nn.Module:
        """The candidate's network with its trained weights (only its active heads)."""
        return load_shared_weights(build_model(spec), self.trained(spec).state_dict)

    def evaluate(self, spec: CandidateSpec) -> CandidateResult:
        start = time.perf_counter()
        trained = self.trained(spec)
        trained_at = time.perf_counter()
        active = spec.active_exit_stages  # architecture exit k sits after stage k
        val = trained.val.simulate(active, spec.active_thresholds)
        test = trained.test.simulate(active, spec.active_thresholds)
        layers = candidate_layers(trained.layers, active)
        exits = per_exit_costs(layers, self.engine.layer_costs(layers), active)
        final = (spec.num_stages - 1,)
        static_layers = candidate_layers(trained.layers, final)
        static = per_exit_costs(static_layers, self.engine.layer_costs(static_layers), final)[0]
        static_index = spec.num_stages - 1
        return CandidateResult(
            spec=spec,
            val=val,
            test=test,
            exits=tuple(exits),
            expected_val=expected_cost(exits, val.fractions),
            expected_test=expected_cost(exits, test.fractions),
            static=static,
            static_val_accuracy=float(trained.val.correct[static_index].mean()),
            static_test_accuracy=float(trained.test.correct[static_index].mean()),
            timings={"train_s": trained_at - start, "cost_s": time.perf_counter() - trained_at},
        )


def candidate_layers(
    architecture_layers: list[LayerSpec], active_exit_stages: tuple[int, ...]
) -> list[LayerSpec]:
    """The architecture's layers minus the exit heads that are switched off."""
    heads = {f"head{i}" for i in active_exit_stages}
    return [
        layer
        for layer in architecture_layers
        if not layer.segment.startswith("head") or layer.segment in heads
    ]


def _atomic_torch_save(state: dict[str, torch.Tensor], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
