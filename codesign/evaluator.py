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
from typing import Any, TypeVar

import torch

from codesign.cost_engine import CostEngine
from codesign.data import Dataset
from codesign.exit_costs import Allocation, ExitCost, ExpectedCost, expected_cost, per_exit_costs
from codesign.exits import CachedExits, ExitStats
from codesign.export import export_qcdq
from codesign.hardware import HardwareTarget, load_hardware
from codesign.layers import ParsedNetwork, parse_onnx
from codesign.model import build_model, load_shared_weights
from codesign.network_cost import CostModelSettings, ItemCost, network_costs
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
    accelerator: str = ""
    clock_hz: float = 1e9
    weight_bytes: float = 0.0  # the candidate network's weights at their bit widths
    timings: dict[str, float] = field(default_factory=dict)

    def seconds(self, cycles: float) -> float:
        return cycles / self.clock_hz

    def edp(self, expected: ExpectedCost | None = None) -> float:
        """Expected energy x expected latency, in J*s."""
        expected = expected or self.expected_test
        return expected.energy_pj * 1e-12 * self.seconds(expected.latency_cycles)

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
            accelerator=data.get("accelerator", ""),
            clock_hz=data.get("clock_hz", 1e9),
            weight_bytes=data.get("weight_bytes", 0.0),
            timings=dict(data.get("timings", {})),
        )


@dataclass
class TrainedArchitecture:
    spec: CandidateSpec
    state_dict: dict[str, torch.Tensor]
    val: CachedExits
    test: CachedExits
    network: ParsedNetwork
    train_seconds: float


class Evaluator:
    """Evaluates candidates on one dataset and one accelerator, reusing everything that can be reused."""

    def __init__(
        self,
        dataset: Dataset,
        training: TrainingConfig,
        engine: CostEngine,
        weights_dir: Path | None = None,
        settings: CostModelSettings | None = None,
        base_overrides: dict[str, object] | None = None,
    ):
        self.dataset = dataset
        self.training = training
        self.engine = engine
        self.weights_dir = weights_dir
        self.settings = settings or CostModelSettings()
        self.base_overrides = dict(base_overrides or {})
        self._architectures: dict[str, TrainedArchitecture] = {}
        self._targets: dict[tuple[tuple[str, str], ...], HardwareTarget] = {(): engine.target}

    def target(self, spec: CandidateSpec) -> HardwareTarget:
        """The accelerator with this candidate's parameters applied (library file + workload overrides + genes)."""
        if spec.hardware not in self._targets:
            base = self.engine.target
            overrides = {**self.base_overrides, **spec.hardware_overrides()}
            self._targets[spec.hardware] = load_hardware(base.accelerator_path, base.mapping_path, overrides)
        return self._targets[spec.hardware]

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
            network = parse_onnx(export_qcdq(model, Path(tmp) / "architecture.onnx"))
        return TrainedArchitecture(architecture, state, val, test, network, train_seconds)

    def model(self, spec: CandidateSpec) -> torch.nn.Module:
        """The candidate's network with its trained weights (only its active heads)."""
        return load_shared_weights(build_model(spec), self.trained(spec).state_dict)

    def costs(self, spec: CandidateSpec, exit_stages: tuple[int, ...] | None = None) -> list[ItemCost]:
        """Per-item costs of the candidate's network (or of the same backbone with only `exit_stages`)."""
        network = self.trained(spec).network
        exit_stages = exit_stages or spec.active_exit_stages
        return network_costs(
            candidate_layers(network.layers, exit_stages),
            candidate_layers(network.operators, exit_stages),
            self.engine,
            self.settings,
            self.target(spec),
        )

    def exit_costs(self, spec: CandidateSpec, exit_stages: tuple[int, ...] | None = None) -> list[ExitCost]:
        exit_stages = exit_stages or spec.active_exit_stages
        target = self.target(spec)
        allocation = Allocation(spec.stage_cores, spec.head_cores) if spec.stage_cores else None
        return per_exit_costs(self.costs(spec, exit_stages), exit_stages, allocation, target.interconnect)

    def evaluate(self, spec: CandidateSpec) -> CandidateResult:
        start = time.perf_counter()
        trained = self.trained(spec)
        trained_at = time.perf_counter()
        active = spec.active_exit_stages  # architecture exit k sits after stage k
        val = trained.val.simulate(active, spec.active_thresholds)
        test = trained.test.simulate(active, spec.active_thresholds)
        items = self.costs(spec)
        exits = self.exit_costs(spec)
        final = spec.num_stages - 1
        static = self.exit_costs(spec, (final,))[0]
        target = self.target(spec)
        return CandidateResult(
            spec=spec,
            val=val,
            test=test,
            exits=tuple(exits),
            expected_val=expected_cost(exits, val.fractions),
            expected_test=expected_cost(exits, test.fractions),
            static=static,
            static_val_accuracy=float(trained.val.correct[final].mean()),
            static_test_accuracy=float(trained.test.correct[final].mean()),
            accelerator=target.name,
            clock_hz=target.clock_hz,
            weight_bytes=sum(i.weight_elements * i.weight_bits for i in items) / 8,
            timings={"train_s": trained_at - start, "cost_s": time.perf_counter() - trained_at},
        )


Segmented = TypeVar("Segmented")


def candidate_layers(items: list[Segmented], active_exit_stages: tuple[int, ...]) -> list[Segmented]:
    """The architecture's layers (or operators) minus the exit heads that are switched off."""
    heads = {f"head{i}" for i in active_exit_stages}
    return [item for item in items if not item.segment.startswith("head") or item.segment in heads]  # type: ignore[attr-defined]


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
