"""Candidate spec -> measured accuracy, exit fractions and expected hardware cost.

`Evaluator.evaluate` is the list of a candidate's steps, each called once and in order, none calling back:
weights (`evaluation.weights`) -> exit statistics on cached logits, temperatures first
(`evaluation.statistics`) -> ONNX export and layer list (`deploy.qcdq`, `cost.graph`) -> residency plan,
layer costs and per-exit costs (`cost.candidate.CandidateCosting`) -> thresholds and exit fractions
(`statistics.exit_statistics`; exits no input takes are switched off and the rest costed again) -> expected
costs (`cost.exits`). The evaluator keeps the caches and sequences the steps.

Candidates that differ only in active exits and thresholds share an architecture: its first three steps
run once (every exit head present), its per-exit logits are cached, and its ONNX layer list is read
once; a candidate's layers are the architecture's minus the heads it switches off."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from codesign.cost.cache import LayerCostCache, default_cache_path
from codesign.cost.candidate import CandidateCosting
from codesign.cost.engine import CostEngine
from codesign.cost.exits import Allocation, expected_cost
from codesign.cost.graph import parse_onnx
from codesign.cost.layer_specs import ParsedNetwork
from codesign.cost.records import ExitCost
from codesign.cost.settings import CostOptions
from codesign.data.splits import Dataset, Split, resize_split, to_device
from codesign.deploy.qcdq import qcdq_graph
from codesign.evaluation import statistics, weights
from codesign.evaluation.result import CandidateResult
from codesign.evaluation.settings import EvaluationSettings, TrainedArchitecture
from codesign.exits import LEARNED, CachedExits
from codesign.hardware.area import chip_area
from codesign.hardware.memory import on_chip_weight_bytes
from codesign.hardware.target import HardwareTarget, load_hardware, load_variant
from codesign.network.device import resolve_device
from codesign.network.finetune import StageOutputs
from codesign.network.model import build_model, load_shared_weights
from codesign.network.settings import TrainingConfig
from codesign.spec import CandidateSpec

__all__ = ["EvaluationSettings", "Evaluator", "TrainedArchitecture"]


class Evaluator:
    """Evaluates candidates on one dataset and one accelerator, reusing everything that can be reused."""

    def __init__(
        self,
        dataset: Dataset,
        engine: CostEngine,
        settings: EvaluationSettings | None = None,
        *,
        weights_dir: Path | None = None,
        base_overrides: dict[str, object] | None = None,
        supernet_state: dict[str, torch.Tensor] | None = None,
        static_dir: Path | None = None,
        shared_dir: Path | None = None,
    ):
        """`weights_dir`: where architectures' trained weights are kept (and read back). `base_overrides`:
        accelerator fields every candidate's target has changed (a workload's `hardware.overrides`).
        `supernet_state`: candidates inherit these weights (calibrated, heads fine-tuned) instead of
        being trained from scratch. `static_dir`: where static networks' fitted weights are kept and read
        back (with `settings.static_weights_tag`), by every process and search that shares it. `shared_dir`:
        where weights fitted by any run of the same settings are kept for later runs (`weights.read_kept`)."""
        self.dataset = dataset
        self.engine = engine
        self.settings = settings or EvaluationSettings()
        self.weights_dir = weights_dir
        self.base_overrides = dict(base_overrides or {})
        self.supernet_state = supernet_state
        self.static_dir = static_dir
        self.shared_dir = shared_dir
        self.device = resolve_device(self.settings.device, "device")
        tested = self.settings.test_during_search
        # Evaluating every candidate on the test split only pays off when it is small (digits: 360 images).
        self.test_during_search = len(dataset.test) <= 2000 if tested is None else tested
        self._splits: dict[tuple[str, int], Split] = {}
        self._architectures: dict[str, TrainedArchitecture] = {}
        self._static_states: dict[str, dict[str, torch.Tensor]] = {}  # per backbone and final head
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
        *,
        threshold_tuning: float | None = None,
    ) -> Evaluator:
        """An evaluator on a library accelerator (or YAML path), with the layer-cost cache at `cache_path`
        (the default cache if None), candidates trained from scratch with `training`."""
        engine = CostEngine(
            load_hardware(accelerator),
            options or CostOptions(),
            LayerCostCache(cache_path or default_cache_path()),
        )
        settings = EvaluationSettings(
            training=training or TrainingConfig(), threshold_tuning=threshold_tuning
        )
        return cls(dataset, engine, settings)

    def target(self, spec: CandidateSpec) -> HardwareTarget:
        """The accelerator with this candidate's parameters applied (library file + workload overrides + genes)."""
        if spec.hardware not in self._targets:
            base = self.engine.target
            overrides = {**self.base_overrides, **spec.hardware_overrides()}
            self._targets[spec.hardware] = load_variant(base, overrides)
        return self._targets[spec.hardware]

    def trained(self, spec: CandidateSpec) -> TrainedArchitecture:
        architecture = spec.architecture()
        key = architecture.key()
        if key not in self._architectures:
            self._architectures[key] = self._train(architecture)
        return self._architectures[key]

    def split(self, name: str, resolution: int) -> Split:
        """A dataset split at a candidate's input resolution, on the evaluator's device (resized and moved
        once per resolution)."""
        if (name, resolution) not in self._splits:
            resized = resize_split(getattr(self.dataset, name), resolution)
            self._splits[(name, resolution)] = to_device(resized, self.device)
        return self._splits[(name, resolution)]

    def _fitted(self, architecture: CandidateSpec) -> torch.nn.Module:
        """The architecture's model with its weights fitted now (trained from scratch, or inherited), on the
        evaluator's device."""
        train = self.split("train", architecture.resolution)
        if self.supernet_state is None:
            state = weights.scratch_weights(architecture, self.dataset, train, self.settings, self.device)
            return self._loaded(architecture, state)
        # a static network fitted now leaves its backbone's outputs for the early heads fitted next
        shared = StageOutputs(set(architecture.active_exit_stages))
        static = self.static_weights(architecture, shared) if self.settings.static_backbone else None
        val = self.split("val", architecture.resolution)
        return weights.inherited_model(
            architecture, self.supernet_state, train, val, self.settings, self.device, static, shared
        )

    def _loaded(self, spec: CandidateSpec, state: dict[str, torch.Tensor]) -> torch.nn.Module:
        """`spec`'s network built with these weights (an architecture's: only `spec`'s heads), on the device."""
        return load_shared_weights(build_model(spec), state).to(self.device)

    def static_weights(
        self, spec: CandidateSpec, shared: StageOutputs | None = None
    ) -> dict[str, torch.Tensor]:
        """The backbone and final head of `spec`'s static network (its exits off), inherited, calibrated and
        final head fine-tuned: the same weights in an early-exit search as in the static search (cached).
        `shared`: where a fitting done now keeps its backbone's outputs."""
        static = spec.without_early_exits()
        key = weights.static_key(static)
        if key not in self._static_states:
            supernet = self.supernet_state
            assert supernet is not None
            train, val = self.split("train", static.resolution), self.split("val", static.resolution)
            self._static_states[key] = weights.kept(
                weights.static_path(self.static_dir, key, self.settings.static_weights_tag),
                lambda: weights.static_weights(
                    static, supernet, train, val, self.settings, self.device, shared
                ),
                self.shared_dir,
            )
        return self._static_states[key]

    def _learned_split(self, resolution: int) -> Split | None:
        """The training split the learned policy is fitted on (None: the search does not use it)."""
        return self.split("train", resolution) if self.settings.learned_policy else None

    def test_exits(self, spec: CandidateSpec) -> CachedExits:
        """The architecture's cached exits on the test split. Weights a run already stored are read back
        without the ONNX export that evaluating a candidate needs."""
        architecture = spec.architecture()
        key = architecture.key()
        if key in self._stored_test_exits:
            return self._stored_test_exits[key]
        stored = self._stored_weights(architecture) if key not in self._architectures else None
        if stored is not None:
            model = self._loaded(architecture, stored)
            resolution = architecture.resolution
            _, temperatures, learned = statistics.calibrated_exits(
                model, self.split("val", resolution), self._learned_split(resolution), self.settings
            )
            self._stored_test_exits[key] = statistics.cached_exits(
                model, self.split("test", resolution), temperatures, learned
            )
            return self._stored_test_exits[key]
        trained = self.trained(spec)
        if trained.test is None:
            model = self._loaded(trained.spec, trained.state_dict)
            test = self.split("test", trained.spec.resolution)
            trained.test = statistics.cached_exits(model, test, trained.temperatures, trained.learned)
        return trained.test

    def _weights_path(self, architecture: CandidateSpec) -> Path | None:
        """Where a run keeps an architecture's trained weights (None: not kept)."""
        if self.weights_dir is None:
            return None
        tag = f"-{self.settings.weights_tag}" if self.settings.weights_tag else ""
        return self.weights_dir / f"{architecture.key()}{tag}.pt"

    def _stored_weights(self, architecture: CandidateSpec) -> dict[str, torch.Tensor] | None:
        """The architecture's weights as the run stored them (None: not stored)."""
        return weights.read_kept(self._weights_path(architecture), self.shared_dir)

    def _train(self, architecture: CandidateSpec) -> TrainedArchitecture:
        """An architecture's first steps: weights (read back if the run stored them), exit statistics on
        validation with temperatures fitted there (and on test when the search measures it), ONNX layers."""
        start = time.perf_counter()
        state = self._stored_weights(architecture)
        if state is None:
            model = self._fitted(architecture)
            state = weights.cpu_state(model)
            weights.keep(state, self._weights_path(architecture), self.shared_dir)
        else:
            model = self._loaded(architecture, state)
        train_seconds = time.perf_counter() - start
        resolution = architecture.resolution
        val, temperatures, learned = statistics.calibrated_exits(
            model, self.split("val", resolution), self._learned_split(resolution), self.settings
        )
        test = (
            statistics.cached_exits(model, self.split("test", resolution), temperatures, learned)
            if self.test_during_search
            else None
        )
        network = parse_onnx(qcdq_graph(model.cpu()), source="architecture.onnx")
        return TrainedArchitecture(
            architecture, state, val, test, network, train_seconds, learned, temperatures
        )

    def model(self, spec: CandidateSpec) -> torch.nn.Module:
        """The candidate's network with its trained weights (only its active heads), on the CPU. Weights the
        run stored are read back without the steps after them (an evaluation already took those)."""
        architecture = spec.architecture()
        state = None if architecture.key() in self._architectures else self._stored_weights(architecture)
        if state is None:
            state = self.trained(spec).state_dict
        return load_shared_weights(build_model(spec), state)

    def costing(self, spec: CandidateSpec, exit_stages: tuple[int, ...] | None = None) -> CandidateCosting:
        """The candidate's network priced on its accelerator variant (or the same backbone with only
        `exit_stages`): the object whose calls are the costing steps (`cost.candidate`)."""
        return self._costing(self.trained(spec).network, spec, exit_stages)

    def _costing(
        self, network: ParsedNetwork, spec: CandidateSpec, exit_stages: tuple[int, ...] | None = None
    ) -> CandidateCosting:
        return CandidateCosting(
            network,
            exit_stages or spec.active_exit_stages,
            self.target(spec),
            _allocation(spec),
            self.engine,
            self.settings.cost_model,
        )

    def exit_costs(self, spec: CandidateSpec, exit_stages: tuple[int, ...] | None = None) -> list[ExitCost]:
        """Per-exit costs of the candidate (or of the same backbone with only `exit_stages`), residency
        planned with every layer counted as running."""
        return self.costing(spec, exit_stages).priced()[2]

    def evaluate(self, spec: CandidateSpec) -> CandidateResult:
        """The candidate's steps, each once and in order: weights, exit statistics and ONNX layers (once per
        architecture, `trained`), layer costs and per-exit costs (`CandidateCosting`), thresholds and exit
        fractions (`exit_statistics`), expected costs. Early exits that take no validation input are switched
        off and the network costed without them (a head no input takes is not deployed): a candidate whose
        exits all stay empty is its static network. When not every weight fits on chip, which weights stay
        depends on how often each layer runs: the plan is made again from the validation exit fractions and,
        if it keeps other tensors, the last two steps run once more on its costs."""
        start = time.perf_counter()
        architecture = self.trained(spec)
        trained_at = time.perf_counter()
        costing = self._costing(architecture.network, spec)
        plan, items, exits = costing.priced()
        spec, val, test = statistics.exit_statistics(
            spec, exits, architecture.val, architecture.test, spec.active_exit_stages, self.settings
        )
        taken = statistics.taken_exits(spec, val)
        if taken != spec.active_exit_stages:  # the thresholds stay: no input left at the exits dropped
            spec = statistics.keep_exits(spec, taken)
            costing = self._costing(architecture.network, spec)
            plan, items, exits = costing.priced()
            val = architecture.val.simulate(taken, spec.active_thresholds, spec.policy)
            test = architecture.test.simulate(taken, spec.active_thresholds, spec.policy) if test else None
        active = spec.active_exit_stages  # architecture exit k sits after stage k
        residency_fractions = None
        if plan.streamed_bytes > 0 and len(active) > 1:
            residency_fractions = val.fractions
            informed = costing.residency(residency_fractions)
            if informed.weights_on_chip != plan.weights_on_chip:
                items = costing.layer_costs(informed)
                exits = costing.exit_costs(items)
                spec, val, test = statistics.exit_statistics(
                    spec, exits, architecture.val, architecture.test, active, self.settings
                )
            plan = informed
        final = spec.num_stages - 1
        static = costing.with_exits((final,)).priced()[2][0]
        target = costing.target
        load = plan.weight_load
        return CandidateResult(
            spec=spec,
            val=val,
            test=test,
            exits=tuple(exits),
            expected_val=expected_cost(exits, val.fractions),
            expected_test=expected_cost(exits, test.fractions) if test is not None else None,
            **statistics.oracle_fields(architecture.test, active, exits, test),
            static=static,
            static_val_accuracy=float(architecture.val.correct[final].mean()),
            static_test_accuracy=float(architecture.test.correct[final].mean())
            if architecture.test is not None
            else None,
            accelerator=target.name,
            clock_hz=target.clock_hz,
            weight_bytes=sum(i.weight_elements * i.weight_bits for i in items) / 8,
            weight_capacity_bytes=on_chip_weight_bytes(target, len(_cores_used(spec))),
            weight_load_energy_pj=load.energy_pj if load else None,
            weight_load_cycles=load.cycles if load else None,
            weight_bytes_on_chip=plan.on_chip_bytes,
            weight_bytes_streamed=plan.streamed_bytes,
            residency_fractions=residency_fractions,
            learned_policy=architecture.learned.to_dict()
            if architecture.learned and spec.policy == LEARNED
            else None,
            timings={"train_s": trained_at - start, "cost_s": time.perf_counter() - trained_at},
            chip_area=area.total if (area := chip_area(target)) is not None else None,
        )


def _allocation(spec: CandidateSpec) -> Allocation | None:
    return Allocation(spec.stage_cores, spec.head_cores) if spec.stage_cores else None


def _cores_used(spec: CandidateSpec) -> set[int]:
    """Cores holding part of the network: one without an allocation."""
    if not spec.stage_cores:
        return {0}
    return set(spec.stage_cores) | {spec.head_cores[i] for i in spec.active_exit_stages}
