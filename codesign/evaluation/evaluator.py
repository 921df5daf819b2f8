"""Candidate spec -> measured accuracy, exit fractions and expected hardware cost.

`Evaluator.evaluate` is the list of a candidate's steps, each called once and in order, none calling back:
weights (`network.supernet` inherit or `network.training`) -> exit statistics on cached logits (`exits`)
-> ONNX export and layer list (`deploy.qcdq`, `cost.graph`) -> residency plan, layer costs and per-exit
costs (`cost.candidate.CandidateCosting`) -> thresholds and exit fractions (`exit_statistics`) ->
expected costs (`cost.exits`).

Candidates that differ only in active exits and thresholds share an architecture: its first three steps
run once (every exit head present), its per-exit logits are cached, and its ONNX layer list is read
once; a candidate's layers are the architecture's minus the heads it switches off."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from codesign.cost.cache import LayerCostCache, default_cache_path
from codesign.cost.candidate import CandidateCosting
from codesign.cost.engine import CostEngine
from codesign.cost.exits import Allocation, expected_cost
from codesign.cost.graph import ParsedNetwork, parse_onnx
from codesign.cost.records import ExitCost
from codesign.cost.settings import CostModelSettings, CostOptions
from codesign.data.splits import Dataset, Split, resize_split, to_device
from codesign.deploy.qcdq import export_qcdq
from codesign.evaluation.result import CandidateResult
from codesign.exits import LEARNED, CachedExits, ExitStats, LearnedConfidence, tune_thresholds
from codesign.files import atomic_torch_save
from codesign.hardware.area import chip_area
from codesign.hardware.memory import on_chip_weight_bytes
from codesign.hardware.target import HardwareTarget, load_hardware, load_variant
from codesign.network.device import resolve_device
from codesign.network.finetune import calibrate, finetune
from codesign.network.model import build_model, load_shared_weights
from codesign.network.settings import Augmentation, FinetuneConfig, TrainingConfig
from codesign.network.supernet import inherit
from codesign.network.training import exit_logits, train_architecture
from codesign.spec import CandidateSpec


@dataclass(frozen=True)
class EvaluationSettings:
    """How candidates are trained, fine-tuned, costed and given thresholds.

    `threshold_tuning`: maximum validation accuracy drop against the final exit; thresholds are then
    tuned per candidate for the lowest expected energy (None: the candidate's own thresholds), the drop
    held with one-sided `tuning_confidence` (0: on validation itself). `test_during_search`: evaluate
    every candidate on the test split too (None: only when it is small, as digits' 360 images).
    """

    training: TrainingConfig = field(default_factory=TrainingConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    cost_model: CostModelSettings = field(default_factory=CostModelSettings)
    threshold_tuning: float | None = None
    tuning_confidence: float = 0.0
    drop_reference: str = "final"  # what the drop is measured against: "final" or "best" (tune_thresholds)
    test_during_search: bool | None = None
    # Names what produced stored weights (supernet, training and fine-tuning settings): part of their
    # file names, so weights are never read back for other settings ("" for direct use of an Evaluator).
    weights_tag: str = ""
    # Fit the learned exit policy of every network (on training-split logits), so "learned" can be searched.
    learned_policy: bool = False
    learned_policy_images: int = 4096  # training images its model is fitted on
    # Where networks train and run: auto (CUDA when present), cpu, cuda, cuda:N (see `network.device`).
    device: str = "auto"
    augmentation: Augmentation = field(default_factory=Augmentation)  # in every training loop
    # Inherited weights (supernet mode): the backbone and final head are fitted exactly as for the static
    # network, and the early exit heads (if `early_exits`) learn on that frozen network
    # (`training.supernet.exit_training: frozen`); False: every head fine-tuned on the shared backbone (joint).
    static_backbone: bool = False
    early_exits: bool = True


@dataclass
class TrainedArchitecture:
    spec: CandidateSpec
    state_dict: dict[str, torch.Tensor]
    val: CachedExits
    test: CachedExits | None  # computed on first use
    network: ParsedNetwork
    train_seconds: float
    learned: LearnedConfidence | None = None  # the learned exit policy's model (when the search uses it)


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
    ):
        """`weights_dir`: where architectures' trained weights are kept (and read back). `base_overrides`:
        accelerator fields every candidate's target has changed (a workload's `hardware.overrides`).
        `supernet_state`: candidates inherit these weights (calibrated, heads fine-tuned) instead of
        being trained from scratch."""
        self.dataset = dataset
        self.engine = engine
        self.settings = settings or EvaluationSettings()
        self.weights_dir = weights_dir
        self.base_overrides = dict(base_overrides or {})
        self.supernet_state = supernet_state
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

    @property
    def finetune_config(self) -> FinetuneConfig:
        return self.settings.finetune

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

    def _weights(self, architecture: CandidateSpec) -> dict[str, torch.Tensor]:
        train = self.split("train", architecture.resolution)
        if self.supernet_state is None:
            dataset = Dataset(
                self.dataset.name, train, self.dataset.val, self.dataset.test, self.dataset.num_classes
            )
            return train_architecture(
                architecture,
                dataset,
                self.settings.training,
                device=self.device,
                augmentation=self.settings.augmentation,
            ).state_dict
        model = inherit(build_model(architecture), self.supernet_state).to(self.device)
        if not self.settings.static_backbone:  # joint: every head fine-tuned on the shared backbone
            return self._fit_heads(model, train)
        model.load_state_dict(self.static_weights(architecture), strict=False)
        early = early_heads(model)
        if not early:
            return _cpu_state(model)
        # a static space calibrates its unused early heads too: uncalibrated quantizers lack the buffers the
        # architecture's state needs to load into any of its candidates
        return self._fit_heads(model, train, early, tune=self.settings.early_exits)

    def static_weights(self, spec: CandidateSpec) -> dict[str, torch.Tensor]:
        """The backbone and final head of `spec`'s static network (its exits off), inherited, calibrated and
        final head fine-tuned: the same weights in an early-exit search as in the static search."""
        static = spec.without_early_exits()
        key = repr(
            (static.stages, static.resolution, static.branches[-1], static.in_channels, static.num_classes)
        )
        if key not in self._static_states:
            model = inherit(build_model(static), self.supernet_state).to(self.device)
            self._static_states[key] = self._fit_heads(model, self.split("train", static.resolution))
        return self._static_states[key]

    def _fit_heads(
        self,
        model: torch.nn.Module,
        train: Split,
        heads: list[torch.nn.Module] | None = None,
        tune: bool = True,
    ) -> dict[str, torch.Tensor]:
        """Calibrate (`heads` only, or the whole network) and fine-tune the heads (`heads`, or every head) for
        the search's head steps; the resulting weights on the CPU."""
        config = self.finetune_config
        calibrate(model, train, config.calibration_images, only=heads)
        if tune:
            finetune(
                model,
                train,
                config.head_steps,
                config,
                heads_only=True,
                augmentation=self.settings.augmentation,
                trained=heads,
            )
        return _cpu_state(model)

    def cached_exits(
        self,
        model: torch.nn.Module,
        resolution: int,
        split: str,
        learned: LearnedConfidence | None = None,
        exit_ids: tuple[int, ...] | None = None,
    ) -> CachedExits:
        """Per-exit confidences and correctness on a split (test: reporting only, never searched on);
        `exit_ids`: the stage index of each of the model's exits (default: every stage, an architecture).
        The model is moved to the evaluator's device."""
        data = self.split(split, resolution)
        logits = exit_logits(model.to(self.device), data)
        return CachedExits.from_logits(logits, data.labels.cpu().numpy(), learned, exit_ids)

    def learned_policy(
        self, model: torch.nn.Module, resolution: int, exit_ids: tuple[int, ...] | None = None
    ) -> LearnedConfidence | None:
        """The learned exit policy's model for this network, fitted on training-split logits (None when the
        search does not use the learned policy)."""
        if not self.settings.learned_policy:
            return None
        train = self.split("train", resolution)
        subset = Split(
            train.images[: self.settings.learned_policy_images],
            train.labels[: self.settings.learned_policy_images],
        )
        logits = exit_logits(model.to(self.device), subset)
        ids = exit_ids if exit_ids is not None else tuple(range(len(logits)))
        return LearnedConfidence.fit(logits, subset.labels.cpu().numpy(), ids)

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
            learned = self.learned_policy(model, architecture.resolution)
            self._stored_test_exits[key] = self.cached_exits(model, architecture.resolution, "test", learned)
            return self._stored_test_exits[key]
        trained = self.trained(spec)
        if trained.test is None:
            model = load_shared_weights(build_model(trained.spec), trained.state_dict)
            trained.test = self.cached_exits(model, trained.spec.resolution, "test", trained.learned)
        return trained.test

    def _weights_path(self, architecture: CandidateSpec) -> Path | None:
        """Where a run keeps an architecture's trained weights (None: not kept)."""
        if self.weights_dir is None:
            return None
        tag = f"-{self.settings.weights_tag}" if self.settings.weights_tag else ""
        return self.weights_dir / f"{architecture.key()}{tag}.pt"

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
        learned = self.learned_policy(model, architecture.resolution)
        val = self.cached_exits(model, architecture.resolution, "val", learned)
        test = (
            self.cached_exits(model, architecture.resolution, "test", learned)
            if self.test_during_search
            else None
        )
        with tempfile.TemporaryDirectory() as tmp:
            network = parse_onnx(export_qcdq(model.cpu(), Path(tmp) / "architecture.onnx"))
        return TrainedArchitecture(architecture, state, val, test, network, train_seconds, learned)

    def model(self, spec: CandidateSpec) -> torch.nn.Module:
        """The candidate's network with its trained weights (only its active heads)."""
        return load_shared_weights(build_model(spec), self.trained(spec).state_dict)

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
        fractions (`exit_statistics`), expected costs. When not every weight fits on chip, which weights stay
        depends on how often each layer runs: the plan is made again from the validation exit fractions and,
        if it keeps other tensors, the last two steps run once more on its costs."""
        start = time.perf_counter()
        architecture = self.trained(spec)
        trained_at = time.perf_counter()
        active = spec.active_exit_stages  # architecture exit k sits after stage k
        costing = self._costing(architecture.network, spec)
        plan, items, exits = costing.priced()
        searched, residency_fractions = spec, None
        spec, val, test = exit_statistics(
            searched, exits, architecture.val, architecture.test, active, self.settings
        )
        if plan.streamed_bytes > 0 and len(active) > 1:
            residency_fractions = val.fractions
            informed = costing.residency(residency_fractions)
            if informed.weights_on_chip != plan.weights_on_chip:
                items = costing.layer_costs(informed)
                exits = costing.exit_costs(items)
                spec, val, test = exit_statistics(
                    searched, exits, architecture.val, architecture.test, active, self.settings
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
            **_oracle(architecture.test, active, exits, test),
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


def exit_statistics(
    spec: CandidateSpec,
    exits: list[ExitCost] | tuple[ExitCost, ...],
    val: CachedExits,
    test: CachedExits | None,
    positions: tuple[int, ...],
    settings: EvaluationSettings,
) -> tuple[CandidateSpec, ExitStats, ExitStats | None]:
    """Thresholds tuned on validation for the lowest expected energy (when `settings` tune them), then the
    exit statistics on both splits; the spec returned carries the thresholds used.

    `positions`: the candidate's active exits as indices into the cached exits (architecture exits during
    the search; 0..n-1 for a candidate model that has only its active heads)."""
    if settings.threshold_tuning is not None:
        drop = spec.accuracy_drop if spec.accuracy_drop is not None else settings.threshold_tuning
        tuned, val_stats = tune_thresholds(
            val,
            positions,
            spec.policy,
            [e.energy_pj for e in exits],
            drop,
            confidence=settings.tuning_confidence,
            reference=settings.drop_reference,
        )
        spec = with_thresholds(spec, tuned)
    else:
        val_stats = val.simulate(positions, spec.active_thresholds, spec.policy)
    test_stats = test.simulate(positions, spec.active_thresholds, spec.policy) if test is not None else None
    return spec, val_stats, test_stats


def _cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def early_heads(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The model's early exit heads (every head but the final classifier's)."""
    final = str(len(model.stages) - 1)  # type: ignore[arg-type]
    return [head for name, head in model.heads.items() if name != final]  # type: ignore[union-attr]


def _allocation(spec: CandidateSpec) -> Allocation | None:
    return Allocation(spec.stage_cores, spec.head_cores) if spec.stage_cores else None


def _cores_used(spec: CandidateSpec) -> set[int]:
    """Cores holding part of the network: one without an allocation."""
    if not spec.stage_cores:
        return {0}
    return set(spec.stage_cores) | {spec.head_cores[i] for i in spec.active_exit_stages}


def finalize(evaluator: Evaluator, result: CandidateResult) -> tuple[CandidateResult, torch.nn.Module]:
    """Full quantization-aware fine-tuning of a returned network, re-measured (thresholds re-tuned if tuning).

    On a static backbone (`EvaluationSettings.static_backbone`): the network with its exits off is fine-tuned
    exactly as the static search fine-tunes it, then the early exit heads learn on it, frozen, for as many
    steps; so the final exit stays exactly as accurate as the static counterpart's. Otherwise (joint) the
    whole network is fine-tuned with every exit's loss.
    Exit costs do not change (same network); exit fractions, accuracy and expected costs are measured again.
    """
    config = evaluator.finetune_config
    result = with_test(evaluator, result)  # the test accuracy it starts from, for the before/after report
    spec = result.spec
    train = evaluator.split("train", spec.resolution)
    steps = int(round(config.final_epochs * max(1, len(train) // config.batch_size)))
    final_config = replace(config, learning_rate=config.final_learning_rate)
    augmentation = evaluator.settings.augmentation
    if evaluator.settings.static_backbone and evaluator.supernet_state is not None:
        static = evaluator.model(spec.without_early_exits()).to(evaluator.device)
        seconds = finetune(static, train, steps, final_config, heads_only=False, augmentation=augmentation)
        model = evaluator.model(spec).to(evaluator.device)
        model.load_state_dict(static.state_dict(), strict=False)
        early = early_heads(model)
        if early:
            calibrate(model, train, config.calibration_images, only=early)
            seconds += finetune(
                model, train, steps, final_config, heads_only=True, augmentation=augmentation, trained=early
            )
    else:
        model = evaluator.model(spec).to(evaluator.device)
        seconds = finetune(model, train, steps, final_config, heads_only=False, augmentation=augmentation)
    stages = spec.active_exit_stages  # the candidate model has only its active exits
    learned = evaluator.learned_policy(model, spec.resolution, stages)  # refitted on the fine-tuned network
    val_cache = evaluator.cached_exits(model, spec.resolution, "val", learned, stages)
    test_cache = evaluator.cached_exits(model, spec.resolution, "test", learned, stages)
    positions = tuple(range(len(stages)))
    searched = test_cache.simulate(positions, spec.active_thresholds, spec.policy)
    spec, val, test = exit_statistics(
        spec, result.exits, val_cache, test_cache, positions, evaluator.settings
    )
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
        test_accuracy_before_finetune=result.test.accuracy if result.test is not None else None,
        val_accuracy_before_finetune=result.val.accuracy,
        test_accuracy_finetuned_search_thresholds=searched.accuracy,
        learned_policy=learned.to_dict() if learned and spec.policy == LEARNED else None,
        **_oracle(test_cache, positions, result.exits, test),
        timings={**result.timings, "final_finetune_s": seconds},
    )
    return finalized, model.cpu()  # exported next, on the CPU


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
        **_oracle(cached, spec.active_exit_stages, result.exits, test),
    )


def _oracle(
    cached: CachedExits | None,
    positions: tuple[int, ...],
    exits: list[ExitCost] | tuple[ExitCost, ...],
    achieved: ExitStats | None,
) -> dict[str, Any]:
    """The oracle's test figures, as CandidateResult fields: the cheapest assignment of the test inputs to
    the network's exits that reaches the accuracy its policy achieved (`CachedExits.oracle`)."""
    if cached is None or achieved is None:
        return {}
    oracle = cached.oracle(positions, [e.energy_pj for e in exits], achieved.accuracy)
    return {"oracle_test": oracle, "expected_oracle_test": expected_cost(list(exits), oracle.fractions)}


def with_thresholds(spec: CandidateSpec, active_thresholds: tuple[float, ...]) -> CandidateSpec:
    """The spec with new thresholds for its active early exits."""
    values = iter(active_thresholds)
    thresholds = tuple(next(values) if on else t for on, t in zip(spec.exits, spec.thresholds, strict=True))
    return replace(spec, thresholds=thresholds)
