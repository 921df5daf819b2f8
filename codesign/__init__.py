"""codesign: hardware/network co-design of quantized early-exit neural networks on edge accelerators.

The public Python API (what the notebooks use), in the order data flows through it:

- workloads and data: `load_workload`, `load_dataset`, `CandidateSpec`, `StageSpec`, `ExitBranch`
- accelerators: `load_hardware`, `library_names`, `key_figures`, `on_chip_weight_bytes`
- training: `TrainingConfig`, `train_architecture`, `build_model`, `load_shared_weights`
- exit statistics: `exit_logits`, `CachedExits` (`.simulate`), `tune_thresholds`
- ONNX: `export_qcdq`
- costs: `cost_onnx` (per-layer and per-exit tables), `Allocation` (stages/heads to cores), `CostOptions`,
  `CostEngine`, `LayerCostCache`,
  `default_cache_path`
- candidates end to end: `Evaluator` (spec -> accuracy, exit fractions, per-exit and expected cost),
  `workload_evaluator` (one fitting networks as a workload's searches do, on any accelerator)
- search: `explore`, `SearchSettings`, `Constraints`, `SurrogateSettings`, `pareto_front`, `RunStore`,
  `load_run` (a run folder's results as a pandas DataFrame)

Names are imported on first use, so `import codesign` stays fast.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

# Brevitas announces an optional CUDA kernel package on import; irrelevant on CPU.
warnings.filterwarnings("ignore", message="fast_hadamard_transform package not found")

__version__ = "0.3.1"

_PUBLIC = {
    "load_workload": "codesign.config.workload",
    "SearchSettings": "codesign.search.settings",
    "Constraints": "codesign.search.settings",
    "SurrogateSettings": "codesign.search.settings",
    "load_dataset": "codesign.data.registry",
    "CandidateSpec": "codesign.spec",
    "StageSpec": "codesign.spec",
    "ExitBranch": "codesign.spec",
    "load_hardware": "codesign.hardware.target",
    "library_names": "codesign.hardware.target",
    "key_figures": "codesign.hardware.memory",
    "on_chip_weight_bytes": "codesign.hardware.memory",
    "TrainingConfig": "codesign.network.settings",
    "train_architecture": "codesign.network.training",
    "exit_logits": "codesign.network.training",
    "build_model": "codesign.network.model",
    "load_shared_weights": "codesign.network.model",
    "CachedExits": "codesign.exits",
    "tune_thresholds": "codesign.thresholds",
    "export_qcdq": "codesign.deploy.qcdq",
    "cost_onnx": "codesign.cost.report",
    "Allocation": "codesign.cost.exits",
    "CostOptions": "codesign.cost.settings",
    "CostEngine": "codesign.cost.engine",
    "LayerCostCache": "codesign.cost.cache",
    "default_cache_path": "codesign.cost.cache",
    "Evaluator": "codesign.evaluation.evaluator",
    "explore": "codesign.runs.explore",
    "workload_evaluator": "codesign.runs.setup",
    "load_run": "codesign.runs.outputs",
    "pareto_front": "codesign.search.objectives",
    "RunStore": "codesign.runs.store",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'codesign' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
