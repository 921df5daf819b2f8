"""Workload files: dataset, search space, training, cost and search settings, validated with one-line errors."""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from codesign.cost.zigzag import CostOptions
from codesign.errors import CodesignError, input_error
from codesign.files import read_yaml
from codesign.network.finetune import FinetuneConfig
from codesign.network.training import SupernetConfig, TrainingConfig
from codesign.spec import BLOCKS, POLICIES, CandidateSpec, ExitBranch, StageSpec

WORKLOAD_DIR = Path(__file__).resolve().parents[2] / "workloads"
OBJECTIVES = ("accuracy", "energy", "latency", "edp", "worst_latency", "size")
DEFAULT_OBJECTIVES = ("accuracy", "energy", "latency")


@dataclass(frozen=True)
class StageChoices:
    depth: tuple[int, ...]
    width: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: int
    weight_bits: tuple[int, ...]
    act_bits: tuple[int, ...]
    block: tuple[str, ...] = ("conv",)
    expansion: tuple[int, ...] = (1,)


@dataclass(frozen=True)
class BranchChoices:
    """Choices for every early exit's branch (AEBNAS-style)."""

    convs: tuple[int, ...] = (0,)
    channels: tuple[int, ...] = (16,)
    kernel: tuple[int, ...] = (3,)
    pool: tuple[int, ...] = (2,)
    # Stride of a conv head's first conv. Left out of the repr, which keys cached supernets: spaces
    # without strided heads keep the supernets they already trained (see `supernet.supernet_key`).
    stride: tuple[int, ...] = field(default=(1,), repr=False)


@dataclass(frozen=True)
class Gene:
    """One decision variable: an index into `choices`."""

    name: str
    choices: tuple[Any, ...]


@dataclass(frozen=True)
class SearchSpace:
    stages: tuple[StageChoices, ...]
    thresholds: tuple[float, ...]
    num_classes: int = 10
    in_channels: int = 1
    resolution: int = 8
    # Accelerator fields searched with the network: (dotted path, choices).
    hardware: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    # Cores to allocate stages and exit heads over (1: single core, no allocation genes).
    cores: int = 1
    branches: BranchChoices = field(default_factory=BranchChoices)
    final_branch: ExitBranch = field(default_factory=ExitBranch)
    policies: tuple[str, ...] = ("score_margin",)
    resolutions: tuple[int, ...] = ()  # input resolutions to search; () = the dataset's
    # Thresholds tuned per candidate on validation (AEBNAS-style) instead of searched as genes.
    tune_thresholds: bool = False
    # Validation accuracy the tuned thresholds may give up against the final exit; more than one value:
    # a searched gene, so the search can also return early-exit networks that match static accuracy.
    accuracy_drops: tuple[float, ...] = (0.01,)
    # One-sided confidence with which the tuned thresholds must keep the accuracy drop on unseen inputs
    # (0: on the validation split itself); see `exits.tune_thresholds`.
    tuning_confidence: float = 0.0
    # False: static networks only (every early exit off, no exit genes): the baseline an EENN front is
    # compared with, searched over the same backbones.
    early_exits: bool = True

    @property
    def max_accuracy_drop(self) -> float:
        """The evaluator's default drop (the first choice)."""
        return self.accuracy_drops[0]

    @property
    def genes(self) -> tuple[Gene, ...]:
        genes: list[Gene] = []
        if self.resolutions:
            genes.append(Gene("resolution", self.resolutions))
        for i, stage in enumerate(self.stages):
            for attr in ("block", "depth", "width", "kernel", "expansion", "weight_bits", "act_bits"):
                genes.append(Gene(f"stage{i}.{attr}", getattr(stage, attr)))
        for i in range(len(self.stages) - 1 if self.early_exits else 0):
            genes.append(Gene(f"exit{i}.on", (False, True)))
            if not self.tune_thresholds:
                genes.append(Gene(f"exit{i}.threshold", self.thresholds))
            for attr in ("convs", "channels", "kernel", "pool"):
                genes.append(Gene(f"exit{i}.{attr}", getattr(self.branches, attr)))
            if len(self.branches.stride) > 1:  # only then: the genomes of other spaces stay as they were
                genes.append(Gene(f"exit{i}.stride", self.branches.stride))
        if self.early_exits:
            genes.append(Gene("policy", self.policies))
        if self.early_exits and self.tune_thresholds and len(self.accuracy_drops) > 1:
            genes.append(Gene("accuracy_drop", self.accuracy_drops))
        for path, choices in self.hardware:
            genes.append(Gene(f"hw.{path}", choices))
        if self.cores > 1:
            for i in range(len(self.stages)):
                genes.append(Gene(f"core.stage{i}", tuple(range(self.cores))))
                genes.append(Gene(f"core.head{i}", tuple(range(self.cores))))
        return tuple(genes)

    def decode(self, indices: list[int] | tuple[int, ...]) -> CandidateSpec:
        genes = self.genes
        if len(indices) != len(genes):
            raise ValueError(f"expected {len(genes)} genes, got {len(indices)}")
        values = {g.name: g.choices[int(i) % len(g.choices)] for g, i in zip(genes, indices, strict=True)}
        stages = tuple(
            StageSpec(
                depth=values[f"stage{i}.depth"],
                width=values[f"stage{i}.width"],
                kernel=values[f"stage{i}.kernel"],
                stride=stage.stride,
                weight_bits=values[f"stage{i}.weight_bits"],
                act_bits=values[f"stage{i}.act_bits"],
                block=values[f"stage{i}.block"],
                expansion=values[f"stage{i}.expansion"] if values[f"stage{i}.block"] == "mbconv" else 1,
            )
            for i, stage in enumerate(self.stages)
        )
        early = range(len(self.stages) - 1)
        exits = tuple(values.get(f"exit{i}.on", False) for i in early)
        # A switched-off exit has no branch: the first choices keep equal networks equal specs.
        branches = tuple(
            ExitBranch(
                convs=values[f"exit{i}.convs"] if exits[i] else self.branches.convs[0],
                channels=values[f"exit{i}.channels"] if exits[i] else self.branches.channels[0],
                kernel=values[f"exit{i}.kernel"] if exits[i] else self.branches.kernel[0],
                pool=values[f"exit{i}.pool"] if exits[i] else self.branches.pool[0],
                stride=values.get(f"exit{i}.stride", self.branches.stride[0]) if exits[i] else 1,
            )
            for i in early
        ) + (self.final_branch,)
        branches = tuple(
            replace(b, channels=self.branches.channels[0], kernel=self.branches.kernel[0], stride=1)
            if b.convs == 0
            else b
            for b in branches[:-1]
        ) + (branches[-1],)
        hardware = tuple(sorted((path, json.dumps(values[f"hw.{path}"])) for path, _ in self.hardware))
        stage_cores: tuple[int, ...] = ()
        head_cores: tuple[int, ...] = ()
        if self.cores > 1:
            stage_cores = tuple(values[f"core.stage{i}"] for i in range(len(self.stages)))
            # a switched-off head has no core: 0 keeps equal networks equal specs
            head_cores = tuple(
                values[f"core.head{i}"] if i == len(self.stages) - 1 or exits[i] else 0
                for i in range(len(self.stages))
            )
        return CandidateSpec(
            stages=stages,
            exits=exits,
            # A switched-off (or tuned) exit has no threshold gene; 1.0 keeps equal networks equal specs.
            thresholds=tuple(
                values[f"exit{i}.threshold"] if exits[i] and not self.tune_thresholds else 1.0 for i in early
            ),
            num_classes=self.num_classes,
            in_channels=self.in_channels,
            resolution=values.get("resolution", self.resolution),
            branches=branches,
            policy=values.get("policy", self.policies[0]),
            hardware=hardware,
            stage_cores=stage_cores,
            head_cores=head_cores,
            # without an early exit there is nothing to tune: None keeps equal networks equal specs
            accuracy_drop=values["accuracy_drop"] if "accuracy_drop" in values and any(exits) else None,
        )

    def size(self) -> int:
        total = 1
        for gene in self.genes:
            total *= len(gene.choices)
        return total

    def all_indices(self) -> itertools.product:
        return itertools.product(*(range(len(g.choices)) for g in self.genes))


ALGORITHMS = ("nsga2", "nsga3", "unsga3", "ctaea", "smsemoa", "spea2")
PREDICTORS = ("rbf", "mlp", "tree", "gp")


@dataclass(frozen=True)
class Constraints:
    """Hard limits a returned network must meet (checked on validation figures, like the objectives)."""

    min_accuracy: float | None = None  # validation accuracy with early exits active, as a fraction
    max_latency_ms: float | None = None  # worst-case latency over the exits taken: the real-time budget
    max_energy_uj: float | None = None  # expected energy per inference
    weights_on_chip: bool = False  # all weights (at their bit widths) fit the accelerator's on-chip memories

    @property
    def active(self) -> tuple[str, ...]:
        names = [
            n for n in ("min_accuracy", "max_latency_ms", "max_energy_uj") if getattr(self, n) is not None
        ]
        return (*names, "weights_on_chip") if self.weights_on_chip else tuple(names)


@dataclass(frozen=True)
class SurrogateSettings:
    """Surrogate-assisted search: an archive of `initial` real evaluations, then `iterations` rounds of
    predictors (chosen per objective by cross-validated Kendall tau) -> NSGA-II on the predictions ->
    the `per_iteration` most promising unseen candidates evaluated for real."""

    initial: int = 12
    per_iteration: int = 6
    iterations: int = 8
    predictors: tuple[str, ...] = PREDICTORS

    @property
    def budget(self) -> int:
        return self.initial + self.iterations * self.per_iteration

    def with_budget(self, candidates: int) -> SurrogateSettings:
        """As many rounds as fit `candidates` after the initial archive (at least one)."""
        return replace(self, iterations=max(1, (candidates - self.initial) // self.per_iteration))


@dataclass(frozen=True)
class SearchSettings:
    population: int = 12
    generations: int = 5
    seed: int = 0
    objectives: tuple[str, ...] = DEFAULT_OBJECTIVES
    algorithm: str = "nsga2"
    constraints: Constraints = field(default_factory=Constraints)
    surrogate: SurrogateSettings | None = None  # None: the algorithm evaluates every candidate for real

    @property
    def budget(self) -> int:
        """Candidates the search asks for (real evaluations at most; repeats come from the run store)."""
        return self.surrogate.budget if self.surrogate else self.population * self.generations

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchSettings:
        """Inverse of `dataclasses.asdict` (a run's stored configuration)."""
        surrogate = data.get("surrogate")
        return cls(
            population=data["population"],
            generations=data["generations"],
            seed=data["seed"],
            objectives=tuple(data["objectives"]),
            algorithm=data.get("algorithm", "nsga2"),
            constraints=Constraints(**data.get("constraints", {})),
            surrogate=SurrogateSettings(**{**surrogate, "predictors": tuple(surrogate["predictors"])})
            if surrogate
            else None,
        )


def default_surrogate(search: SearchSettings) -> SurrogateSettings:
    """Surrogate settings with the same budget of candidates as `population` x `generations` of the algorithm."""
    settings = SurrogateSettings(max(4, search.population), max(2, search.population // 2), 1)
    return settings.with_budget(search.population * search.generations)


@dataclass(frozen=True)
class Workload:
    name: str
    source: str
    dataset: str
    accelerator: str
    space: SearchSpace
    hardware_overrides: tuple[tuple[str, Any], ...] = ()
    allocate_cores: bool = True
    training: TrainingConfig = field(default_factory=TrainingConfig)
    # "supernet": candidates inherit weights from a weight-sharing supernet trained once per space;
    # "scratch": every architecture is trained from scratch with `training`.
    training_mode: str = "supernet"
    supernet: SupernetConfig = field(default_factory=SupernetConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    cost: CostOptions = field(default_factory=CostOptions)
    search: SearchSettings = field(default_factory=SearchSettings)


def _int_list(
    source: str, field_name: str, value: Any, allowed: tuple[int, ...] | None = None, minimum: int = 1
) -> tuple[int, ...]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in items):
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise input_error(source, field_name, f"{what} or a non-empty list of them", value)
    if allowed is not None and any(v not in allowed for v in items):
        raise input_error(source, field_name, f"values among {list(allowed)}", value)
    return tuple(items)


def _str_list(source: str, field_name: str, value: Any, allowed: tuple[str, ...]) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, str) and v in allowed for v in items):
        raise input_error(source, field_name, f"one or a list of {list(allowed)}", value)
    return tuple(items)


def _dataclass_section(source: str, field_name: str, value: Any, cls: type) -> Any:
    if value is None:
        return cls()
    if not isinstance(value, dict):
        raise input_error(
            source, field_name, f"a mapping with keys among {sorted(cls.__dataclass_fields__)}", value
        )
    _known_keys(source, f"{field_name}.", value, set(cls.__dataclass_fields__))
    defaults = cls()
    for key, given in value.items():
        expected = type(getattr(defaults, key))
        if not isinstance(given, (int, float)) or isinstance(given, bool) or given < 0:
            raise input_error(source, f"{field_name}.{key}", f"a non-negative {expected.__name__}", given)
        if expected is int and not float(given).is_integer():
            raise input_error(source, f"{field_name}.{key}", "an integer", given)
    return cls(**{k: type(getattr(defaults, k))(v) for k, v in value.items()})


def _section(source: str, data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name, {}) or {}
    if not isinstance(value, dict):
        raise input_error(source, name, "a mapping", value)
    return value


def _known_keys(source: str, prefix: str, value: dict[str, Any], known: set[str]) -> None:
    for key in value:
        if key not in known:
            raise input_error(source, f"{prefix}{key}", f"one of {sorted(known)}", key)


def parse_workload(data: Any, source: str) -> Workload:
    if not isinstance(data, dict):
        raise input_error(source, "document", "a mapping with 'dataset', 'accelerator' and 'space'")
    _known_keys(
        source,
        "",
        data,
        {"name", "dataset", "accelerator", "hardware", "space", "training", "cost", "search"},
    )
    dataset = data.get("dataset", "digits")
    if not isinstance(dataset, str):
        raise input_error(source, "dataset", "a dataset name", dataset)
    accelerator = data.get("accelerator", "edge_tpu_like")
    if not isinstance(accelerator, str):
        raise input_error(
            source, "accelerator", "a library name or a path to an accelerator YAML", accelerator
        )
    space_data = _section(source, data, "space")
    _known_keys(
        source,
        "space.",
        space_data,
        {
            "stages",
            "thresholds",
            "threshold_tuning",
            "exit_branches",
            "final_head",
            "policies",
            "resolution",
            "early_exits",
        },
    )
    stages_data = space_data.get("stages")
    if not isinstance(stages_data, list) or len(stages_data) < 2:
        raise input_error(source, "space.stages", "a list of at least 2 stage entries", stages_data)
    stages = []
    stage_keys = {"depth", "width", "kernel", "stride", "weight_bits", "act_bits", "block", "expansion"}
    for i, stage in enumerate(stages_data):
        where = f"space.stages[{i}]"
        if not isinstance(stage, dict):
            raise input_error(source, where, "a mapping with depth, width, kernel, stride", stage)
        _known_keys(source, f"{where}.", stage, stage_keys)
        for key in ("depth", "width"):
            if key not in stage:
                raise input_error(source, f"{where}.{key}", "a positive integer or a list of them")
        stride = stage.get("stride", 1)
        if not isinstance(stride, int) or stride not in (1, 2):
            raise input_error(source, f"{where}.stride", "1 or 2", stride)
        stages.append(
            StageChoices(
                depth=_int_list(source, f"{where}.depth", stage["depth"]),
                width=_int_list(source, f"{where}.width", stage["width"]),
                kernel=_int_list(source, f"{where}.kernel", stage.get("kernel", 3), (1, 3, 5, 7)),
                stride=stride,
                weight_bits=_int_list(
                    source, f"{where}.weight_bits", stage.get("weight_bits", 8), (2, 3, 4, 5, 6, 7, 8)
                ),
                act_bits=_int_list(
                    source, f"{where}.act_bits", stage.get("act_bits", 8), (2, 3, 4, 5, 6, 7, 8)
                ),
                block=_str_list(source, f"{where}.block", stage.get("block", "conv"), BLOCKS),
                expansion=_int_list(source, f"{where}.expansion", stage.get("expansion", 1)),
            )
        )
    thresholds = space_data.get("thresholds", [0.5, 0.7, 0.8, 0.9, 0.95])
    if (
        not isinstance(thresholds, list)
        or not thresholds
        or not all(isinstance(t, (int, float)) and 0.0 <= t <= 1.0 for t in thresholds)
    ):
        raise input_error(source, "space.thresholds", "a non-empty list of numbers in [0, 1]", thresholds)
    hardware_data = _section(source, data, "hardware")
    _known_keys(source, "hardware.", hardware_data, {"overrides", "search", "allocate_cores"})
    overrides = hardware_data.get("overrides", {}) or {}
    searched = hardware_data.get("search", {}) or {}
    if not isinstance(overrides, dict):
        raise input_error(
            source, "hardware.overrides", "a mapping from accelerator field paths to numbers", overrides
        )
    if not isinstance(searched, dict):
        raise input_error(
            source, "hardware.search", "a mapping from accelerator field paths to lists of choices", searched
        )
    for path, choices in searched.items():
        if not isinstance(choices, list) or len(choices) < 1:
            raise input_error(source, f"hardware.search.{path}", "a non-empty list of choices", choices)
    allocate = hardware_data.get("allocate_cores", True)
    if not isinstance(allocate, bool):
        raise input_error(source, "hardware.allocate_cores", "true or false", allocate)
    branch_data = space_data.get("exit_branches", {}) or {}
    if not isinstance(branch_data, dict):
        raise input_error(
            source, "space.exit_branches", "a mapping with convs, channels, kernel, pool, stride", branch_data
        )
    _known_keys(
        source, "space.exit_branches.", branch_data, {"convs", "channels", "kernel", "pool", "stride"}
    )
    branches = BranchChoices(
        convs=_int_list(
            source, "space.exit_branches.convs", branch_data.get("convs", 0), (0, 1, 2, 3), minimum=0
        ),
        channels=_int_list(source, "space.exit_branches.channels", branch_data.get("channels", 16)),
        kernel=_int_list(source, "space.exit_branches.kernel", branch_data.get("kernel", 3), (1, 3, 5)),
        pool=_int_list(source, "space.exit_branches.pool", branch_data.get("pool", 2), (1, 2, 3, 4)),
        stride=_int_list(source, "space.exit_branches.stride", branch_data.get("stride", 1), (1, 2)),
    )
    final_data = space_data.get("final_head", {}) or {}
    if not isinstance(final_data, dict):
        raise input_error(
            source, "space.final_head", "a mapping with convs, channels, kernel, pool", final_data
        )
    _known_keys(source, "space.final_head.", final_data, {"convs", "channels", "kernel", "pool"})
    try:
        final_branch = ExitBranch(**{k: int(v) for k, v in final_data.items()})
    except (TypeError, ValueError):
        raise input_error(
            source, "space.final_head", "integers for convs, channels, kernel, pool", final_data
        ) from None
    early_exits = space_data.get("early_exits", True)
    if not isinstance(early_exits, bool):
        raise input_error(source, "space.early_exits", "true or false", early_exits)
    policies = _str_list(source, "space.policies", space_data.get("policies", "score_margin"), POLICIES)
    resolutions = ()
    if "resolution" in space_data:
        resolutions = _int_list(source, "space.resolution", space_data["resolution"])
    tuning = space_data.get("threshold_tuning")
    tune, drops, tuning_confidence = False, (0.01,), 0.0
    if tuning is not None:
        raw = tuning.get("max_accuracy_drop", 0.01) if isinstance(tuning, dict) else None
        raw_list = raw if isinstance(raw, list) else [raw]
        if (
            not isinstance(tuning, dict)
            or set(tuning) - {"max_accuracy_drop", "confidence"}
            or not raw_list
            or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and -0.1 <= v < 1 for v in raw_list
            )
        ):
            raise input_error(
                source,
                "space.threshold_tuning",
                "a mapping {max_accuracy_drop: <fraction, e.g. 0.01, or a list of them to search>, "
                "confidence: <optional, in [0, 1)>}",
                tuning,
            )
        raw_confidence = tuning.get("confidence", 0.0)
        if (
            isinstance(raw_confidence, bool)
            or not isinstance(raw_confidence, int | float)
            or not (0 <= raw_confidence < 1)
        ):
            raise input_error(
                source, "space.threshold_tuning.confidence", "a number in [0, 1), e.g. 0.9", raw_confidence
            )
        tune, drops = True, tuple(float(v) for v in raw_list)
        tuning_confidence = float(raw_confidence)
    space = SearchSpace(
        stages=tuple(stages),
        thresholds=tuple(float(t) for t in thresholds),
        hardware=tuple((str(path), tuple(choices)) for path, choices in searched.items()),
        branches=branches,
        final_branch=final_branch,
        policies=policies,
        resolutions=resolutions,
        tune_thresholds=tune,
        accuracy_drops=drops,
        tuning_confidence=tuning_confidence,
        early_exits=early_exits,
    )

    training_data = dict(_section(source, data, "training"))
    _known_keys(
        source,
        "training.",
        training_data,
        {
            "mode",
            "epochs",
            "batch_size",
            "learning_rate",
            "weight_decay",
            "exit_loss_weights",
            "seed",
            "supernet",
            "finetune",
        },
    )
    mode = training_data.pop("mode", "supernet")
    if mode not in ("supernet", "scratch"):
        raise input_error(source, "training.mode", "'supernet' or 'scratch'", mode)
    supernet = _dataclass_section(
        source, "training.supernet", training_data.pop("supernet", None), SupernetConfig
    )
    if supernet.exit_gradient > 1:
        raise input_error(
            source, "training.supernet.exit_gradient", "a number in [0, 1]", supernet.exit_gradient
        )
    finetune_config = _dataclass_section(
        source, "training.finetune", training_data.pop("finetune", None), FinetuneConfig
    )
    training = TrainingConfig()
    try:
        training = replace(training, **{k: v for k, v in training_data.items() if k != "exit_loss_weights"})
        if training_data.get("exit_loss_weights") is not None:
            training = replace(
                training, exit_loss_weights=tuple(float(w) for w in training_data["exit_loss_weights"])
            )
    except (TypeError, ValueError) as exc:
        raise input_error(source, "training", f"valid training settings ({exc})") from None
    for key in ("epochs", "batch_size"):
        if not isinstance(getattr(training, key), int) or getattr(training, key) < 1:
            raise input_error(source, f"training.{key}", "a positive integer", getattr(training, key))

    cost_data = _section(source, data, "cost")
    _known_keys(source, "cost.", cost_data, {"opt", "lpf_limit", "nb_spatial_mappings"})
    try:
        cost = CostOptions(**cost_data)
    except (TypeError, ValueError) as exc:
        raise input_error(
            source, "cost", f"opt in energy/latency/EDP and integer lpf_limit ({exc})"
        ) from None

    search = parse_search(source, _section(source, data, "search"))
    return Workload(
        name=str(data.get("name", Path(source).stem)),
        source=source,
        dataset=dataset,
        accelerator=accelerator,
        space=space,
        hardware_overrides=tuple((str(k), v) for k, v in overrides.items()),
        allocate_cores=allocate,
        training=training,
        training_mode=mode,
        supernet=supernet,
        finetune=finetune_config,
        cost=cost,
        search=search,
    )


def parse_search(
    source: str, search_data: dict[str, Any], base: SearchSettings | None = None
) -> SearchSettings:
    """The `search:` section of a workload (or command-line overrides of it, applied to `base`)."""
    _known_keys(
        source,
        "search.",
        search_data,
        {"population", "generations", "seed", "objectives", "algorithm", "constraints", "surrogate"},
    )
    search = base or SearchSettings()
    for key in ("population", "generations", "seed"):
        if key in search_data:
            value = search_data[key]
            if not isinstance(value, int) or value < (0 if key == "seed" else 1):
                raise input_error(source, f"search.{key}", "a positive integer", value)
            search = replace(search, **{key: value})
    if "objectives" in search_data:
        objectives = search_data["objectives"]
        if (
            not isinstance(objectives, list)
            or "accuracy" not in objectives
            or not set(objectives) <= set(OBJECTIVES)
            or len(objectives) < 2
        ):
            raise input_error(
                source,
                "search.objectives",
                f"'accuracy' plus at least one of {list(OBJECTIVES[1:])}",
                objectives,
            )
        search = replace(search, objectives=tuple(objectives))
    if "algorithm" in search_data:
        if search_data["algorithm"] not in ALGORITHMS:
            raise input_error(
                source, "search.algorithm", f"one of {list(ALGORITHMS)}", search_data["algorithm"]
            )
        search = replace(search, algorithm=search_data["algorithm"])
    if "constraints" in search_data:
        search = replace(
            search,
            constraints=_constraints(
                source,
                {
                    **asdict(search.constraints),
                    **_section(
                        source, {"search.constraints": search_data["constraints"]}, "search.constraints"
                    ),
                },
            ),
        )
    if "surrogate" in search_data:
        search = replace(search, surrogate=_surrogate(source, search_data["surrogate"], search))
    elif search.surrogate is not None and ({"population", "generations"} & set(search_data)):
        # a new population or generation count on the command line moves the surrogate's budget with it
        search = replace(
            search, surrogate=search.surrogate.with_budget(search.population * search.generations)
        )
    return search


def _constraints(source: str, data: dict[str, Any]) -> Constraints:
    _known_keys(
        source,
        "search.constraints.",
        data,
        {"min_accuracy", "max_latency_ms", "max_energy_uj", "weights_on_chip"},
    )
    values: dict[str, Any] = {}
    for key in ("min_accuracy", "max_latency_ms", "max_energy_uj"):
        if data.get(key) is None:
            continue
        value = data[key]
        limit_ok = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
        if not limit_ok or (key == "min_accuracy" and value >= 1):
            what = "a fraction in (0, 1), e.g. 0.9" if key == "min_accuracy" else "a positive number"
            raise input_error(source, f"search.constraints.{key}", what, value)
        values[key] = float(value)
    if "weights_on_chip" in data:
        if not isinstance(data["weights_on_chip"], bool):
            raise input_error(
                source, "search.constraints.weights_on_chip", "true or false", data["weights_on_chip"]
            )
        values["weights_on_chip"] = data["weights_on_chip"]
    return Constraints(**values)


def _surrogate(source: str, value: Any, search: SearchSettings) -> SurrogateSettings | None:
    if value is False or value is None:
        return None
    if value is True:
        return default_surrogate(search)
    data = _section(source, {"search.surrogate": value}, "search.surrogate")
    _known_keys(source, "search.surrogate.", data, {"initial", "per_iteration", "iterations", "predictors"})
    settings = default_surrogate(search)
    for key, minimum in (("initial", 4), ("per_iteration", 1), ("iterations", 1)):
        if key in data:
            if not isinstance(data[key], int) or isinstance(data[key], bool) or data[key] < minimum:
                raise input_error(source, f"search.surrogate.{key}", f"an integer >= {minimum}", data[key])
            settings = replace(settings, **{key: data[key]})
    if "predictors" in data:
        settings = replace(
            settings,
            predictors=_str_list(source, "search.surrogate.predictors", data["predictors"], PREDICTORS),
        )
    return settings


def load_workload(name_or_path: str | Path) -> Workload:
    """A workload preset name from `workloads/` (e.g. `digits`) or a path to a workload YAML."""
    path = Path(name_or_path)
    if not path.suffix:
        preset = WORKLOAD_DIR / f"{name_or_path}.yaml"
        if not preset.is_file():
            presets = sorted(p.stem for p in WORKLOAD_DIR.glob("*.yaml"))
            raise CodesignError(
                f"workload {name_or_path!r}: name: expected one of {presets} or a path to a YAML file"
            )
        path = preset
    data = read_yaml(path, "workload")
    return parse_workload(data, str(path))
