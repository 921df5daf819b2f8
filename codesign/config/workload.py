"""Workload files: dataset, accelerator, search space, training, cost and search settings.

A workload composes the typed settings of every pipeline step (`network.settings`, `cost.settings`,
`search.settings`) and checks every name against its registry, so it is read after those steps are
defined; it imports none of PyTorch, Brevitas or ZigZag. Each section has its own parser below, and
every problem is a one-line `CodesignError` naming the file and the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from codesign.config.fields import dataclass_section, is_number, known_keys, section
from codesign.config.search import parse_search
from codesign.config.space import parse_space
from codesign.cost.settings import RESIDENCY_MODES, ZIGZAG_CRITERIA, CostModelSettings, CostOptions
from codesign.data.registry import DATASETS
from codesign.data.splits import DataSubset
from codesign.errors import CodesignError, input_error
from codesign.files import library_dir, read_yaml
from codesign.hardware.target import MAPPING_FIELD
from codesign.network.device import check_device_name
from codesign.network.settings import (
    EXIT_TRAINING,
    Augmentation,
    FinetuneConfig,
    SupernetConfig,
    TrainingConfig,
)
from codesign.search.settings import SearchSettings
from codesign.space import SearchSpace

QUICK_KEY = "quick"  # a smaller budget of the same workload, applied by `--quick` (`load_workload`)
WORKLOAD_KEYS = {
    "name",
    "dataset",
    "data",
    "accelerator",
    "mapping",
    "hardware",
    "space",
    "training",
    "cost",
    "search",
}
TRAINING_KEYS = {
    "mode",
    "epochs",
    "batch_size",
    "learning_rate",
    "weight_decay",
    "exit_loss_weights",
    "seed",
    "supernet",
    "finetune",
    "augment",
    "device",
}
TRAINING_POSITIVE = frozenset({"epochs", "batch_size", "learning_rate"})
SUPERNET_POSITIVE = frozenset(
    {"epochs", "batch_size", "learning_rate", "head_epochs", "head_patience", "head_learning_rate"}
)
FINETUNE_POSITIVE = frozenset(
    {
        "calibration_images",
        "batch_size",
        "learning_rate",
        "final_learning_rate",
        "head_check_steps",
        "head_patience",
        "head_validation_images",
        "head_train_images",
    }
)
# "supernet": candidates inherit weights from a weight-sharing supernet trained once per space;
# "scratch": every architecture is trained from scratch with `training`.
TRAINING_MODES = ("supernet", "scratch")


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
    training_mode: str = "supernet"
    supernet: SupernetConfig = field(default_factory=SupernetConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    cost: CostOptions = field(default_factory=CostOptions)
    search: SearchSettings = field(default_factory=SearchSettings)
    cost_model: CostModelSettings = field(default_factory=CostModelSettings)
    mapping: str | None = None  # None: <accelerator>.mapping.yaml beside the accelerator file
    augment: Augmentation = field(default_factory=Augmentation)  # in every training loop
    # Where networks train and run (not part of a run's identity: results agree within floating-point noise)
    device: str = "auto"
    # Accelerators every returned network is also costed on, side by side (compare.csv; not searched)
    compare_accelerators: tuple[str, ...] = ()
    data: DataSubset = field(default_factory=DataSubset)  # how many images of each split (default: all)


@dataclass(frozen=True)
class _HardwareSection:
    overrides: tuple[tuple[str, Any], ...]
    searched: tuple[tuple[str, tuple[Any, ...]], ...]
    allocate_cores: bool
    compare: tuple[str, ...] = ()


@dataclass(frozen=True)
class _TrainingSection:
    training: TrainingConfig
    mode: str
    supernet: SupernetConfig
    finetune: FinetuneConfig
    augment: Augmentation
    device: str


def parse_workload(data: Any, source: str) -> Workload:
    if not isinstance(data, dict):
        raise input_error(source, "document", "a mapping with 'dataset', 'accelerator' and 'space'")
    known_keys(source, "", data, WORKLOAD_KEYS)
    dataset = data.get("dataset", "digits")
    if not isinstance(dataset, str) or dataset not in DATASETS:
        raise input_error(source, "dataset", f"one of {list(DATASETS)}", dataset)
    accelerator = data.get("accelerator", "edge_tpu_like")
    if not isinstance(accelerator, str):
        raise input_error(
            source, "accelerator", "a library name or a path to an accelerator YAML", accelerator
        )
    mapping = data.get("mapping")
    if mapping is not None and not isinstance(mapping, str):
        raise input_error(source, "mapping", "a path to a ZigZag mapping YAML", mapping)
    hardware = _parse_hardware(source, section(source, data, "hardware"))
    space = parse_space(source, data, hardware.searched)
    training = _parse_training(source, dict(section(source, data, "training")), len(space.stages))
    return Workload(
        name=_name(source, data.get("name", Path(source).stem)),
        source=source,
        dataset=dataset,
        accelerator=accelerator,
        space=space,
        hardware_overrides=hardware.overrides,
        allocate_cores=hardware.allocate_cores,
        training=training.training,
        training_mode=training.mode,
        supernet=training.supernet,
        finetune=training.finetune,
        augment=training.augment,
        device=training.device,
        cost=_parse_cost(source, section(source, data, "cost")),
        search=parse_search(source, section(source, data, "search")),
        cost_model=_parse_cost_model(source, section(source, data, "cost")),
        mapping=_beside(source, mapping) if mapping else None,
        compare_accelerators=hardware.compare,
        data=_parse_data(source, data.get("data")),
    )


def _parse_data(source: str, data: Any) -> DataSubset:
    """`data: {train_images, val_images, test_images}`: a stratified subset of each split (absent: all of it)."""
    if data is None:
        return DataSubset()
    fields = list(DataSubset.__dataclass_fields__)
    if not isinstance(data, dict):
        raise input_error(source, "data", f"a mapping with keys among {fields}", data)
    known_keys(source, "data.", data, set(fields))
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise input_error(source, f"data.{key}", "a positive integer (images)", value)
    return DataSubset(**data)


def _name(source: str, name: Any) -> str:
    """The run's name: a word that can start a folder name."""
    if isinstance(name, bool) or not isinstance(name, str | int | float) or not str(name).strip():
        raise input_error(source, "name", "a short text (it names the run folders)", name)
    if "/" in str(name) or str(name).startswith("."):
        raise input_error(source, "name", "a name without '/' that does not start with '.'", name)
    return str(name)


def _parse_hardware(source: str, hardware_data: dict[str, Any]) -> _HardwareSection:
    known_keys(source, "hardware.", hardware_data, {"overrides", "search", "allocate_cores", "compare"})
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
    if MAPPING_FIELD in searched:  # dataflow as a gene: mapping files, relative to the workload file
        files = searched[MAPPING_FIELD]
        if not all(isinstance(f, str) for f in files):
            raise input_error(
                source, f"hardware.search.{MAPPING_FIELD}", "a list of mapping YAML paths", files
            )
        searched = {**searched, MAPPING_FIELD: [_beside(source, f) for f in files]}
    allocate = hardware_data.get("allocate_cores", True)
    if not isinstance(allocate, bool):
        raise input_error(source, "hardware.allocate_cores", "true or false", allocate)
    compare = hardware_data.get("compare", []) or []
    if not isinstance(compare, list) or not all(isinstance(name, str) and name for name in compare):
        raise input_error(
            source, "hardware.compare", "a list of library names or accelerator YAML paths", compare
        )
    return _HardwareSection(
        compare=tuple(
            name if "/" not in name and not name.endswith(".yaml") else _beside(source, name)
            for name in compare
        ),
        overrides=tuple((str(k), v) for k, v in overrides.items()),
        searched=tuple((str(path), tuple(choices)) for path, choices in searched.items()),
        allocate_cores=allocate,
    )


def _beside(source: str, path: str) -> str:
    """A path from a workload file: as given if absolute, else relative to the workload's folder."""
    given = Path(path).expanduser()
    return str(given if given.is_absolute() else (Path(source).parent / given).resolve())


def _parse_training(source: str, training_data: dict[str, Any], num_stages: int) -> _TrainingSection:
    known_keys(source, "training.", training_data, TRAINING_KEYS)
    mode = training_data.pop("mode", "supernet")
    if mode not in TRAINING_MODES:
        raise input_error(source, "training.mode", "'supernet' or 'scratch'", mode)
    supernet_data = training_data.pop("supernet", None)
    exit_training = SupernetConfig.exit_training
    if isinstance(supernet_data, dict) and "exit_training" in supernet_data:
        supernet_data = dict(supernet_data)
        exit_training = supernet_data.pop("exit_training")
        if exit_training not in EXIT_TRAINING:
            raise input_error(
                source, "training.supernet.exit_training", f"one of {list(EXIT_TRAINING)}", exit_training
            )
    supernet = replace(
        dataclass_section(source, "training.supernet", supernet_data, SupernetConfig, SUPERNET_POSITIVE),
        exit_training=exit_training,
    )
    if supernet.exit_gradient > 1:
        raise input_error(
            source, "training.supernet.exit_gradient", "a number in [0, 1]", supernet.exit_gradient
        )
    finetune = dataclass_section(
        source, "training.finetune", training_data.pop("finetune", None), FinetuneConfig, FINETUNE_POSITIVE
    )
    augment = _parse_augment(source, training_data.pop("augment", None))
    device = check_device_name(training_data.pop("device", "auto"), f"{source}: training.device")
    weights = training_data.pop("exit_loss_weights", None)
    training = dataclass_section(source, "training", training_data, TrainingConfig, TRAINING_POSITIVE)
    if weights is not None:
        if (
            not isinstance(weights, list)
            or len(weights) != num_stages
            or not all(is_number(w) and w >= 0 for w in weights)
        ):
            raise input_error(
                source,
                "training.exit_loss_weights",
                f"{num_stages} non-negative numbers (one per exit, final last: one per stage)",
                weights,
            )
        training = replace(training, exit_loss_weights=tuple(float(w) for w in weights))
    return _TrainingSection(training, mode, supernet, finetune, augment, device)


def _parse_augment(source: str, data: Any) -> Augmentation:
    if data is None:
        return Augmentation()
    expected = "a mapping {crop_padding: <pixels, an integer >= 0>, flip: <true or false>}"
    if not isinstance(data, dict):
        raise input_error(source, "training.augment", expected, data)
    known_keys(source, "training.augment.", data, {"crop_padding", "flip"})
    padding, flip = data.get("crop_padding", 0), data.get("flip", False)
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise input_error(source, "training.augment.crop_padding", "an integer >= 0 (pixels)", padding)
    if not isinstance(flip, bool):
        raise input_error(source, "training.augment.flip", "true or false", flip)
    return Augmentation(crop_padding=padding, flip=flip)


def _parse_cost(source: str, cost_data: dict[str, Any]) -> CostOptions:
    known_keys(source, "cost.", cost_data, {"opt", "lpf_limit", "nb_spatial_mappings", "residency"})
    cost_data = {k: v for k, v in cost_data.items() if k != "residency"}
    opt = cost_data.get("opt", CostOptions.opt)
    if opt not in ZIGZAG_CRITERIA:
        raise input_error(source, "cost.opt", f"one of {list(ZIGZAG_CRITERIA)}", opt)
    numbers = dataclass_section(
        source,
        "cost",
        {k: v for k, v in cost_data.items() if k != "opt"},
        CostOptions,
        frozenset({"lpf_limit", "nb_spatial_mappings"}),
    )
    return replace(numbers, opt=opt)


def _parse_cost_model(source: str, cost_data: dict[str, Any]) -> CostModelSettings:
    residency = cost_data.get("residency", CostModelSettings.residency)
    if residency not in RESIDENCY_MODES:
        raise input_error(source, "cost.residency", f"one of {list(RESIDENCY_MODES)}", residency)
    return CostModelSettings(residency=residency)


def workload_dir() -> Path:
    """The workload presets shipped with codesign."""
    return library_dir("workloads")


def load_workload(name_or_path: str | Path, quick: bool = False) -> Workload:
    """A workload preset name from `workloads/` (e.g. `digits`) or a path to a workload YAML.

    A workload may start from another (`extends: <preset name or path>`) and change only some fields: its
    mappings are merged into the base's, key by key; anything else (lists, numbers, text) replaces it.
    `quick`: its `quick:` section (a smaller budget, merged the same way) applies on top."""
    path = _workload_path(name_or_path)
    data = _with_bases(path, ())
    if isinstance(data, dict) and QUICK_KEY in data:
        data = dict(data)
        smaller = data.pop(QUICK_KEY)
        if not isinstance(smaller, dict):
            raise input_error(
                str(path), QUICK_KEY, "a mapping of workload fields (the --quick budget)", smaller
            )
        if quick:
            data = _merged(data, smaller)
        else:  # checked now, so that a broken quick section is found without --quick too
            parse_workload(_merged(data, smaller), str(path))
    elif quick:
        raise CodesignError(
            f"{path}: {QUICK_KEY}: expected a `quick:` section for --quick (a smaller budget of this workload); "
            "this workload has none"
        )
    return parse_workload(data, str(path))


def _workload_path(name_or_path: str | Path, relative_to: Path | None = None) -> Path:
    path = Path(name_or_path)
    if path.suffix:
        return path if path.is_absolute() or relative_to is None else relative_to / path
    presets_dir = workload_dir()
    preset = presets_dir / f"{name_or_path}.yaml"
    if not preset.is_file():
        presets = sorted(p.stem for p in presets_dir.glob("*.yaml"))
        raise CodesignError(
            f"workload {name_or_path!r}: name: expected one of {presets} or a path to a YAML file"
        )
    return preset


def _with_bases(path: Path, seen: tuple[Path, ...]) -> Any:
    """The workload file's contents on top of the workload it `extends` (and so on)."""
    data = read_yaml(path, "workload")
    if not isinstance(data, dict) or "extends" not in data:
        return data
    base_name = data["extends"]
    if not isinstance(base_name, str):
        raise input_error(
            str(path), "extends", "a workload preset name or a path to a workload YAML", base_name
        )
    base_path = _workload_path(base_name, path.parent)
    if base_path.resolve() in seen or base_path.resolve() == path.resolve():
        raise input_error(str(path), "extends", "a workload that does not extend this one again", base_name)
    base = _with_bases(base_path, (*seen, path.resolve()))
    if not isinstance(base, dict):
        raise input_error(str(base_path), "document", "a mapping (the workload another one extends)")
    return _merged(base, {key: value for key, value in data.items() if key != "extends"})


def _merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = _merged(base[key], value)
        else:
            merged[key] = value
    return merged
