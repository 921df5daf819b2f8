"""Candidate spec -> measured accuracy, exit fractions and expected hardware cost.

The pipeline per candidate, each arrow one module:
spec -> model (`model`) -> trained weights (`training`) -> exit statistics (`exits`) -> ONNX
(`export`) -> layer list (`layers`) -> layer costs (`cost_engine`) -> expected costs (`exit_costs`).

Candidates that differ only in active exits and thresholds share an architecture: it is trained
once (every exit head present), its per-exit logits are cached, and its ONNX layer list is read
once; a candidate's layers are the architecture's minus the heads it switches off.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import torch

from codesign.cost.engine import CostEngine
from codesign.cost.exits import Allocation, ExitCost, ExpectedCost, expected_cost, per_exit_costs
from codesign.cost.graph import ParsedNetwork, parse_onnx
from codesign.cost.network import CostModelSettings, ItemCost, network_costs
from codesign.cost.zigzag import CostOptions
from codesign.data.splits import Dataset, Split, resize_split
from codesign.deploy.qcdq import export_qcdq
from codesign.exits import CachedExits, ExitStats, tune_thresholds
from codesign.files import atomic_torch_save
from codesign.hardware.target import HardwareTarget, load_hardware, on_chip_weight_bytes
from codesign.network.finetune import FinetuneConfig, calibrate, finetune
from codesign.network.model import build_model, load_shared_weights
from codesign.network.supernet import inherit
from codesign.network.training import TrainingConfig, exit_logits, train_architecture
from codesign.spec import CandidateSpec


@dataclass(frozen=True)
class CandidateResult:
    """Everything measured for one candidate. Validation figures drive the search; test figures are reported."""

    spec: CandidateSpec
    val: ExitStats
    test: ExitStats | None  # None: not evaluated on the test split (only returned networks always are)
    exits: tuple[ExitCost, ...]  # per active exit, final last
    expected_val: ExpectedCost
    expected_test: ExpectedCost | None
    static: ExitCost  # the same backbone with only the final classifier
    static_val_accuracy: float
    static_test_accuracy: float | None
    accelerator: str = ""
    clock_hz: float = 1e9
    weight_bytes: float = 0.0  # the candidate network's weights at their bit widths
    weight_capacity_bytes: float | None = None  # on-chip memory that can hold weights (all cores)
    # After the final quantization-aware fine-tuning: the test/validation accuracy it started from.
    test_accuracy_before_finetune: float | None = None
    val_accuracy_before_finetune: float | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def seconds(self, cycles: float) -> float:
        return cycles / self.clock_hz

    def edp(self, expected: ExpectedCost | None = None) -> float:
        """Expected energy x expected latency, in J*s (test split if evaluated, else validation)."""
        expected = expected or self.expected_test or self.expected_val
        return expected.energy_pj * 1e-12 * self.seconds(expected.latency_cycles)

    @property
    def reported(self) -> tuple[ExitStats, ExpectedCost, float]:
        """(exit stats, expected cost, static accuracy) on the test split if evaluated, else validation."""
        if self.test is not None and self.expected_test is not None and self.static_test_accuracy is not None:
            return self.test, self.expected_test, self.static_test_accuracy
        return self.val, self.expected_val, self.static_val_accuracy

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
            val=_stats(data["val"]),
            test=_stats(data["test"]) if data.get("test") else None,
            exits=tuple(ExitCost(**e) for e in data["exits"]),
            expected_val=ExpectedCost(**data["expected_val"]),
            expected_test=ExpectedCost(**data["expected_test"]) if data.get("expected_test") else None,
            static=ExitCost(**data["static"]),
            static_val_accuracy=data["static_val_accuracy"],
            static_test_accuracy=data["static_test_accuracy"],
            accelerator=data.get("accelerator", ""),
            clock_hz=data.get("clock_hz", 1e9),
            weight_bytes=data.get("weight_bytes", 0.0),
            weight_capacity_bytes=data.get("weight_capacity_bytes"),
            test_accuracy_before_finetune=data.get("test_accuracy_before_finetune"),
            val_accuracy_before_finetune=data.get("val_accuracy_before_finetune"),
            timings=dict(data.get("timings", {})),
        )


def _stats(data: dict[str, Any]) -> ExitStats:
    return ExitStats(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


@dataclass
class TrainedArchitecture:
    spec: CandidateSpec
    state_dict: dict[str, torch.Tensor]
    val: CachedExits
    test: CachedExits | None  # computed on first use
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
        supernet_state: dict[str, torch.Tensor] | None = None,
        finetune_config: FinetuneConfig | None = None,
        threshold_tuning: float | None = None,
        test_during_search: bool | None = None,
        tuning_confidence: float = 0.0,
    ):
        """`supernet_state`: candidates inherit these weights (calibrated, heads fine-tuned) instead of
        being trained from scratch. `threshold_tuning`: maximum validation accuracy drop against the final
        exit; thresholds are then tuned per candidate for the lowest expected energy, the drop held with
        one-sided `tuning_confidence` (0: on validation itself)."""
        self.dataset = dataset
        self.training = training
        self.engine = engine
        self.weights_dir = weights_dir
        self.settings = settings or CostModelSettings()
        self.base_overrides = dict(base_overrides or {})
        self.supernet_state = supernet_state
        self.finetune_config = finetune_config or FinetuneConfig()
        self.threshold_tuning = threshold_tuning
        self.tuning_confidence = tuning_confidence
        # Evaluating every candidate on the test split only pays off when it is small (digits: 360 images).
        self.test_during_search = (
            len(dataset.test) <= 2000 if test_during_search is None else test_during_search
        )
        self._splits: dict[tuple[str, int], Split] = {}
        self._architectures: dict[str, TrainedArchitecture] = {}
        self._stored_test_exits: dict[str, CachedExits] = {}  # of architectures read back from weights_dir
        self._targets: dict[tuple[tuple[str, str], ...], HardwareTarget] = {(): engine.target}

    @classmethod
    def for_accelerator(
        cls,
        dataset: Dataset,
        accelerator: str | Path = "edge_tpu_like",
        training: TrainingConfig | None = None,
        options: CostOptions | None = None,
        cache_path: str | Path | None = None,
        **kwargs: Any,
    ) -> Evaluator:
        """An evaluator on a library accelerator (or YAML path), with the layer-cost cache at `cache_path`
        (the default cache if None). Remaining keyword arguments go to the constructor."""
        from codesign.cost.cache import LayerCostCache, default_cache_path

        engine = CostEngine(
            load_hardware(accelerator),
            options or CostOptions(),
            LayerCostCache(cache_path or default_cache_path()),
        )
        return cls(dataset, training or TrainingConfig(), engine, **kwargs)

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

    def split(self, name: str, resolution: int) -> Split:
        """A dataset split at a candidate's input resolution (computed once per resolution)."""
        if (name, resolution) not in self._splits:
            self._splits[(name, resolution)] = resize_split(getattr(self.dataset, name), resolution)
        return self._splits[(name, resolution)]

    def _weights(self, architecture: CandidateSpec) -> dict[str, torch.Tensor]:
        train = self.split("train", architecture.resolution)
        if self.supernet_state is None:
            dataset = Dataset(
                self.dataset.name, train, self.dataset.val, self.dataset.test, self.dataset.num_classes
            )
            return train_architecture(architecture, dataset, self.training).state_dict
        model = inherit(build_model(architecture), self.supernet_state)
        calibrate(model, train, self.finetune_config.calibration_images)
        finetune(model, train, self.finetune_config.head_steps, self.finetune_config, heads_only=True)
        return {k: v.detach().clone() for k, v in model.state_dict().items()}

    def cached_exits(self, model: torch.nn.Module, resolution: int, split: str) -> CachedExits:
        """Per-exit confidences and correctness on a split (test: reporting only, never searched on)."""
        data = self.split(split, resolution)
        return CachedExits.from_logits(exit_logits(model, data), data.labels.numpy())

    def test_exits(self, spec: CandidateSpec) -> CachedExits:
        """The architecture's cached exits on the test split. Weights a run already stored are read back
        without the validation pass and the ONNX export that evaluating a candidate needs (about half the time)."""
        architecture = spec.architecture()
        key = architecture.key()
        if key in self._stored_test_exits:
            return self._stored_test_exits[key]
        stored = self._stored_weights(architecture) if key not in self._architectures else None
        if stored is not None:
            model = load_shared_weights(build_model(architecture), stored)
            self._stored_test_exits[key] = self.cached_exits(model, architecture.resolution, "test")
            return self._stored_test_exits[key]
        trained = self.trained(spec)
        if trained.test is None:
            model = load_shared_weights(build_model(trained.spec), trained.state_dict)
            trained.test = self.cached_exits(model, trained.spec.resolution, "test")
        return trained.test

    def _weights_path(self, architecture: CandidateSpec) -> Path | None:
        """Where a run keeps an architecture's trained weights (None: not kept)."""
        return self.weights_dir / f"{architecture.key()}.pt" if self.weights_dir else None

    def _stored_weights(self, architecture: CandidateSpec) -> dict[str, torch.Tensor] | None:
        """The architecture's weights as the run stored them (None: not stored)."""
        path = self._weights_path(architecture)
        if path is None or not path.is_file():
            return None
        return torch.load(path, map_location="cpu", weights_only=True)

    def _train(self, architecture: CandidateSpec) -> TrainedArchitecture:
        start = time.perf_counter()
        state = self._stored_weights(architecture)
        if state is None:
            state = self._weights(architecture)
            path = self._weights_path(architecture)
            if path is not None:
                atomic_torch_save(state, path)
        train_seconds = time.perf_counter() - start
        model = load_shared_weights(build_model(architecture), state)
        val = self.cached_exits(model, architecture.resolution, "val")
        test = self.cached_exits(model, architecture.resolution, "test") if self.test_during_search else None
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

    def exit_costs(
        self,
        spec: CandidateSpec,
        exit_stages: tuple[int, ...] | None = None,
        items: list[ItemCost] | None = None,
    ) -> list[ExitCost]:
        """Per-exit costs; `items`: the per-item costs of the same network when already computed."""
        exit_stages = exit_stages or spec.active_exit_stages
        target = self.target(spec)
        allocation = Allocation(spec.stage_cores, spec.head_cores) if spec.stage_cores else None
        items = items if items is not None else self.costs(spec, exit_stages)
        return per_exit_costs(items, exit_stages, allocation, target.interconnect)

    def accuracy_drop(self, spec: CandidateSpec) -> float:
        """Validation accuracy the candidate's tuned thresholds may give up (its gene, else the default)."""
        assert self.threshold_tuning is not None
        return spec.accuracy_drop if spec.accuracy_drop is not None else self.threshold_tuning

    def evaluate(self, spec: CandidateSpec) -> CandidateResult:
        start = time.perf_counter()
        trained = self.trained(spec)
        trained_at = time.perf_counter()
        active = spec.active_exit_stages  # architecture exit k sits after stage k
        items = self.costs(spec)
        exits = self.exit_costs(spec, items=items)
        if self.threshold_tuning is not None:
            tuned, _ = tune_thresholds(
                trained.val,
                active,
                spec.policy,
                [e.energy_pj for e in exits],
                self.accuracy_drop(spec),
                confidence=self.tuning_confidence,
            )
            spec = with_thresholds(spec, tuned)
        val = trained.val.simulate(active, spec.active_thresholds, spec.policy)
        test = (
            trained.test.simulate(active, spec.active_thresholds, spec.policy)
            if trained.test is not None
            else None
        )
        final = spec.num_stages - 1
        static = self.exit_costs(spec, (final,))[0]
        target = self.target(spec)
        return CandidateResult(
            spec=spec,
            val=val,
            test=test,
            exits=tuple(exits),
            expected_val=expected_cost(exits, val.fractions),
            expected_test=expected_cost(exits, test.fractions) if test is not None else None,
            static=static,
            static_val_accuracy=float(trained.val.correct[final].mean()),
            static_test_accuracy=float(trained.test.correct[final].mean())
            if trained.test is not None
            else None,
            accelerator=target.name,
            clock_hz=target.clock_hz,
            weight_bytes=sum(i.weight_elements * i.weight_bits for i in items) / 8,
            weight_capacity_bytes=on_chip_weight_bytes(target, len(_cores_used(spec))),
            timings={"train_s": trained_at - start, "cost_s": time.perf_counter() - trained_at},
        )


def _cores_used(spec: CandidateSpec) -> set[int]:
    """Cores holding part of the network: one without an allocation."""
    if not spec.stage_cores:
        return {0}
    return set(spec.stage_cores) | {spec.head_cores[i] for i in spec.active_exit_stages}


def finalize(evaluator: Evaluator, result: CandidateResult) -> tuple[CandidateResult, torch.nn.Module]:
    """Full quantization-aware fine-tuning of a returned network, re-measured (thresholds re-tuned if tuning).

    Exit costs do not change (same network); exit fractions, accuracy and expected costs are measured again.
    """
    config = evaluator.finetune_config
    result = with_test(evaluator, result)  # the test accuracy it starts from, for the before/after report
    spec = result.spec
    model = evaluator.model(spec)
    train = evaluator.split("train", spec.resolution)
    steps = int(round(config.final_epochs * max(1, len(train) // config.batch_size)))
    seconds = finetune(
        model, train, steps, replace(config, learning_rate=config.final_learning_rate), heads_only=False
    )
    val_cache = evaluator.cached_exits(model, spec.resolution, "val")
    test_cache = evaluator.cached_exits(model, spec.resolution, "test")
    positions = tuple(range(len(spec.active_exit_stages)))  # the candidate model has only its active exits
    if evaluator.threshold_tuning is not None:
        tuned, _ = tune_thresholds(
            val_cache,
            positions,
            spec.policy,
            [e.energy_pj for e in result.exits],
            evaluator.accuracy_drop(spec),
            confidence=evaluator.tuning_confidence,
        )
        spec = with_thresholds(spec, tuned)
    val = val_cache.simulate(positions, spec.active_thresholds, spec.policy)
    test = test_cache.simulate(positions, spec.active_thresholds, spec.policy)
    final = positions[-1]
    finalized = replace(
        result,
        spec=spec,
        val=val,
        test=test,
        expected_val=expected_cost(list(result.exits), val.fractions),
        expected_test=expected_cost(list(result.exits), test.fractions),
        static_val_accuracy=float(val_cache.correct[final].mean()),
        static_test_accuracy=float(test_cache.correct[final].mean()),
        test_accuracy_before_finetune=result.test.accuracy,
        val_accuracy_before_finetune=result.val.accuracy,
        timings={**result.timings, "final_finetune_s": seconds},
    )
    return finalized, model


def with_test(evaluator: Evaluator, result: CandidateResult) -> CandidateResult:
    """The result with its test-split figures (evaluated now if the search skipped them)."""
    if result.test is not None:
        return result
    spec = result.spec
    cached = evaluator.test_exits(spec)
    test = cached.simulate(spec.active_exit_stages, spec.active_thresholds, spec.policy)
    return replace(
        result,
        test=test,
        expected_test=expected_cost(list(result.exits), test.fractions),
        static_test_accuracy=float(cached.correct[spec.num_stages - 1].mean()),
    )


def with_thresholds(spec: CandidateSpec, active_thresholds: tuple[float, ...]) -> CandidateSpec:
    """The spec with new thresholds for its active early exits."""
    values = iter(active_thresholds)
    thresholds = tuple(next(values) if on else t for on, t in zip(spec.exits, spec.thresholds, strict=True))
    return replace(spec, thresholds=thresholds)


Segmented = TypeVar("Segmented")


def candidate_layers(items: list[Segmented], active_exit_stages: tuple[int, ...]) -> list[Segmented]:
    """The architecture's layers (or operators) minus the exit heads that are switched off."""
    heads = {f"head{i}" for i in active_exit_stages}
    return [item for item in items if not item.segment.startswith("head") or item.segment in heads]  # type: ignore[attr-defined]
