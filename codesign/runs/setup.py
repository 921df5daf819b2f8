"""Setting a run up: the one place that loads a workload's accelerator and dataset, fits the search space to
them, finds (or trains) the supernet, and says how to build the run's evaluator. Also opens stored runs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

from codesign.config.workload import Workload, load_workload
from codesign.cost.cache import LayerCostCache, default_cache_path
from codesign.cost.engine import CostEngine
from codesign.data.registry import load_dataset
from codesign.data.splits import Dataset, DataSubset
from codesign.errors import CodesignError
from codesign.evaluation.backends import EvaluatorRecipe, build_evaluator
from codesign.evaluation.evaluator import EvaluationSettings, Evaluator
from codesign.exits import LEARNED
from codesign.hardware.target import (
    HardwareTarget,
    load_hardware,
    load_overridden,
    load_variant,
    without_file,
)
from codesign.network.device import resolve_device
from codesign.network.exit_heads import exit_heads_checkpoint
from codesign.network.supernet import (
    default_supernet_dir,
    static_space,
    supernet_checkpoint,
    supernet_key,
)
from codesign.runs.checks import check_area, check_augmentation, check_feature_maps, check_memory
from codesign.runs.identity import workload_edits
from codesign.runs.store import RunConfig, RunStore
from codesign.space import SearchSpace

Reporter = Callable[[str], None]
SHARED_WEIGHTS_FOLDER = "architectures"  # in the supernet folder: candidates' fitted weights, for every run
# The libraries whose versions can change a run's results (recorded in its store, see `runs.identity`).
RESULT_LIBRARIES = ("codesign", "zigzag-dse", "torch", "brevitas", "onnx")


@dataclass(frozen=True)
class RunSetup:
    """A workload with everything it names loaded once: its accelerator, its dataset, its fitted space."""

    workload: Workload
    target: HardwareTarget
    dataset: Dataset
    space: SearchSpace
    data_dir: Path | None = None

    def config(self) -> RunConfig:
        """The configuration the run store keeps."""
        workload, target, space = self.workload, self.target, self.space
        return RunConfig(
            workload=workload.name,
            workload_file=workload.source,
            dataset=workload.dataset,
            accelerator=target.name,
            clock_mhz=target.clock_hz / 1e6,
            cores=target.cores,
            accelerator_file=str(target.accelerator_path),
            mapping_file=str(target.mapping_path),
            training_mode=workload.training_mode,
            training=workload.training,
            supernet=workload.supernet,
            finetune=workload.finetune,
            cost=workload.cost,
            cost_model=workload.cost_model,
            search=workload.search,
            early_exits=space.early_exits,
            hardware_overrides=dict(workload.hardware_overrides),
            hardware_search={path: list(choices) for path, choices in space.hardware},
            space=json.loads(json.dumps(asdict(space))),
            hardware=target.fingerprint,
            versions={name: version(name) for name in RESULT_LIBRARIES},
            augment=workload.augment,
            data=None if workload.data.whole else workload.data,
            memory_costs=self.memory_costs() or None,
        )

    def memory_costs(self) -> list[str]:
        """What CACTI gave each memory whose cost follows its size, on the accelerator and on every searched
        variant of it, one line each."""
        targets = [self.target]
        overrides = dict(self.workload.hardware_overrides)
        for path, choices in self.space.hardware:
            targets += [load_variant(self.target, {**overrides, path: choice}) for choice in choices]
        lines = [memory.describe() for target in targets for memory in target.cacti_memories]
        return list(dict.fromkeys(lines))

    def supernet(self, folder: Path, report: Reporter = print) -> Path | None:
        """The supernet checkpoint in the supernet folder `folder` (trained now if missing); None in scratch
        mode."""
        if self.workload.training_mode != "supernet":
            return None
        config = self.workload.supernet
        device, augmentation = resolve_device(self.workload.device), self.workload.augment
        frozen = self.exits_on_static_backbone
        space = static_space(self.space) if frozen else self.space
        path = supernet_checkpoint(
            space, self.dataset, config, folder, report, device=device, augmentation=augmentation
        )
        if not frozen:
            return path
        return exit_heads_checkpoint(
            self.space, self.dataset, config, path, folder, report, device=device, augmentation=augmentation
        )

    @property
    def exits_on_static_backbone(self) -> bool:
        """Early exit heads learn on the frozen static supernet (`training.supernet.exit_training: frozen`)."""
        return self.space.early_exits and self.workload.supernet.exit_training == "frozen"

    def recipe(
        self,
        run_dir: Path,
        cache_path: Path,
        supernet_path: Path | None,
        cost_jobs: int = 1,
        static_dir: Path | None = None,
    ) -> EvaluatorRecipe:
        """`static_dir`: where static networks' fitted weights are kept (default: the run's weights folder);
        a --baseline run's two searches share one."""
        workload, space = self.workload, self.space
        produced_by = json.dumps(
            [
                supernet_path.name if supernet_path else "scratch",
                asdict(workload.training),
                asdict(workload.finetune),
                self.dataset.name,
                *([asdict(workload.augment)] if workload.augment.active else []),  # others keep their tags
            ],
            sort_keys=True,
        )
        settings = EvaluationSettings(
            training=workload.training,
            finetune=workload.finetune,
            cost_model=workload.cost_model,
            threshold_tuning=space.max_accuracy_drop if space.tune_thresholds else None,
            tuning_confidence=space.tuning_confidence,
            drop_reference=space.drop_reference,
            weights_tag=hashlib.sha256(produced_by.encode()).hexdigest()[:8],
            learned_policy=LEARNED in space.policies,
            device=workload.device,
            augmentation=workload.augment,
            static_backbone=workload.supernet.exit_training == "frozen",
            early_exits=space.early_exits,
            static_weights_tag=self._static_weights_tag(),
        )
        return EvaluatorRecipe(
            dataset=workload.dataset,
            data_subset=workload.data,
            data_dir=self.data_dir,
            data_seed=workload.training.seed,
            accelerator=workload.accelerator,
            mapping=workload.mapping,
            hardware_overrides=workload.hardware_overrides,
            cost_options=workload.cost,
            settings=settings,
            weights_dir=run_dir / "weights",
            cache_path=cache_path,
            supernet_path=supernet_path,
            cost_jobs=cost_jobs,
            static_dir=static_dir or run_dir / "weights" / "static",
            # beside the supernet they were inherited from: its file name is part of theirs
            shared_weights_dir=supernet_path.parent / SHARED_WEIGHTS_FOLDER if supernet_path else None,
        )

    def _static_weights_tag(self) -> str:
        """What a static network's fitted weights depend on besides its own shape: the static supernet (the
        same for this space's static and early-exit searches), the fine-tuning settings and the data."""
        workload = self.workload
        augmentation = workload.augment if workload.augment.active else None
        backbone = supernet_key(static_space(self.space), self.dataset.name, workload.supernet, augmentation)
        produced_by = json.dumps(
            [
                backbone,
                asdict(workload.finetune),
                self.dataset.name,
                workload.training.seed,
                asdict(workload.augment),
            ],
            sort_keys=True,
        )
        return hashlib.sha256(produced_by.encode()).hexdigest()[:16]

    def check_mappable(self, cache_path: Path) -> None:
        """Before anything trains: ZigZag maps small layers onto the accelerator and onto every searched
        variant of it (a one-line error naming the file otherwise; cached, so free when warm)."""
        overrides = dict(self.workload.hardware_overrides)
        cache = LayerCostCache(cache_path)
        try:
            engine = CostEngine(self.target, self.workload.cost, cache)
            engine.check_mappable()
            for path, choices in self.space.hardware:
                for choice in choices:
                    engine.check_mappable(load_variant(self.target, {**overrides, path: choice}))
        finally:
            cache.close()

    def evaluator(self, recipe: EvaluatorRecipe) -> Evaluator:
        """The recipe's evaluator in this process, on the accelerator and dataset loaded here."""
        return build_evaluator(recipe, self.dataset, self.target)


def prepare_run(workload: Workload, data_dir: Path | None = None) -> RunSetup:
    resolve_device(workload.device, f"{workload.source}: training.device")  # before anything is loaded
    target = workload_target(workload)
    check_area(workload, target)
    for name in workload.compare_accelerators:  # each must load now, not after the search
        try:
            load_hardware(name)
        except CodesignError as error:
            raise CodesignError(f"{workload.source}: hardware.compare: {error}") from None
    try:
        dataset = load_dataset(
            workload.dataset, seed=workload.training.seed, data_dir=data_dir, subset=workload.data
        )
    except CodesignError as error:
        if str(error).startswith("data."):  # a subset larger than the split: the workload's field
            raise CodesignError(f"{workload.source}: {error}") from None
        raise
    return RunSetup(workload, target, dataset, prepare_space(workload, dataset, target), data_dir)


def workload_target(workload: Workload) -> HardwareTarget:
    """The workload's accelerator with its overrides; a refused override is the workload's fault, not the
    accelerator file's."""
    where = f"{workload.source}: hardware.overrides"
    return overridden_target(workload, {}, dict(workload.hardware_overrides), (f"{where}.", f"{where}: "))


def overridden_target(
    workload: Workload, base: dict[str, Any], added: dict[str, Any], blamed: tuple[str, str]
) -> HardwareTarget:
    """The workload's accelerator with `base` and then `added` overrides (`hardware.target.load_overridden`)."""
    return load_overridden(workload.accelerator, workload.mapping, base, added, blamed)


def prepare_space(workload: Workload, dataset: Dataset, target: HardwareTarget) -> SearchSpace:
    """The workload's space with the dataset's shape and the accelerator's core count filled in; every
    choice is checked against them before anything is trained."""
    space = replace(
        workload.space,
        num_classes=dataset.num_classes,
        in_channels=dataset.in_channels,
        resolution=dataset.resolution,
        cores=target.cores if workload.allocate_cores else 1,
    )
    check_feature_maps(workload, dataset, space)
    check_augmentation(workload, dataset, space)
    check_memory(workload, space)
    for path, choices in space.hardware:  # fail before any training if a searched value is invalid
        for choice in choices:
            try:
                load_variant(target, {**dict(workload.hardware_overrides), path: choice})
            except CodesignError as error:  # the accelerator file holds no such value: the workload does
                reason = without_file(error)
                raise CodesignError(
                    f"{workload.source}: hardware.search.{path}: the choice {choice!r} is refused by "
                    f"{target.accelerator_path.name}: {reason}"
                ) from None
    return space


def stored_workload(
    store: RunStore, workload_name: str | None = None, report: Reporter | None = None
) -> Workload:
    """The workload and settings a run was started with, from its store (the space it searched included),
    unless one is given explicitly. `report`: told when the workload file has been edited since (or is gone):
    the run continues as it started, not with the edits."""
    config = store.contents().config  # every stored record readable (or one line) before anything is written
    if config is None:
        raise CodesignError(f"{store.path}: config: expected a run store written by `codesign explore`")
    if workload_name:
        return load_workload(workload_name)
    try:
        current: Workload | None = load_workload(config.workload_file)
    except CodesignError:
        current = None
    if config.space is None:  # stores written before the space was recorded
        if current is None:
            raise CodesignError(
                f"{store.path}: space: this run store predates recorded search spaces and its workload file "
                f"{config.workload_file} no longer loads; restore the file, or start a new run"
            )
        space = replace(current.space, early_exits=config.early_exits)
    else:
        space = SearchSpace.from_dict(config.space)
    stored = Workload(
        name=config.workload,
        source=config.workload_file,
        dataset=config.dataset,
        accelerator=config.accelerator_file,
        mapping=config.mapping_file,
        space=space,
        hardware_overrides=tuple(config.hardware_overrides.items()),
        allocate_cores=space.cores > 1 if config.space is not None else current.allocate_cores,
        training=config.training,
        training_mode=config.training_mode,
        supernet=config.supernet,
        finetune=config.finetune,
        cost=config.cost,
        search=config.search,
        cost_model=config.cost_model,
        augment=config.augment,
        device=current.device if current else "auto",
        compare_accelerators=current.compare_accelerators if current else (),
        data=config.data or DataSubset(),
    )
    if report is not None:
        edits = ["the file no longer loads"] if current is None else workload_edits(stored, current)
        if edits:
            shown = "; ".join(edits[:4]) + (f"; and {len(edits) - 4} more" if len(edits) > 4 else "")
            report(
                f"{config.workload_file}: edited since this run started ({shown}); resuming with the workload "
                f"stored in {store.path}; to search the edited one, start a new run with -w {config.workload_file}"
            )
    return stored


def open_run_evaluator(
    run_dir: Path,
    cache_path: Path,
    data_dir: Path | None = None,
    accelerator: str | None = None,
    residency: str | None = None,
    report: Reporter = print,
    supernet_dir: Path | None = None,
) -> tuple[RunSetup, Evaluator]:
    """A stored run set up again with an evaluator for its networks: the weights the run kept, else (supernet
    mode) the supernet in `supernet_dir` (default: the user's supernet folder). For comparisons after a run;
    `accelerator`: cost the same networks on another accelerator (without the run's hardware overrides);
    `residency`: with another residency mode."""
    with RunStore.of_run(run_dir) as store:
        workload = stored_workload(store)
    if accelerator is not None and accelerator != workload.accelerator:
        workload = replace(workload, accelerator=accelerator, mapping=None, hardware_overrides=())
    if residency is not None:
        workload = replace(workload, cost_model=replace(workload.cost_model, residency=residency))
    setup = prepare_run(workload, data_dir)
    supernet = setup.supernet(supernet_dir or default_supernet_dir(), report)
    return setup, setup.evaluator(setup.recipe(run_dir, cache_path, supernet))


def workload_evaluator(
    workload: Workload,
    accelerator: str | Path | None = None,
    *,
    threshold_tuning: float | None = None,
    data_dir: Path | None = None,
    report: Reporter = print,
) -> Evaluator:
    """An evaluator for networks of `workload`'s space, as its searches fit them (the supernet found or trained
    once in the user's supernet folder; fitted weights kept beside it, so evaluators on other accelerators
    read the same weights), on `accelerator` (default: the workload's). `threshold_tuning`: the validation
    accuracy a candidate's tuned thresholds may give up against its final exit (None: as the workload says)."""
    if accelerator is not None:
        workload = replace(workload, accelerator=str(accelerator), mapping=None, hardware_overrides=())
    setup = prepare_run(workload, data_dir)
    supernet = setup.supernet(default_supernet_dir(), report)
    shared = default_supernet_dir() / SHARED_WEIGHTS_FOLDER
    recipe = setup.recipe(shared, default_cache_path(), supernet, static_dir=shared)
    recipe = replace(recipe, weights_dir=shared)
    if threshold_tuning is not None:
        recipe = replace(recipe, settings=replace(recipe.settings, threshold_tuning=threshold_tuning))
    return setup.evaluator(recipe)
