"""Step: layer costs and expected costs. ONNX -> layer list, ZigZag per layer (cached), precision-aware
adjustments and non-compute operators, per-exit and expected costs, cost reports."""

from codesign.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "CostOptions": "settings",
        "CostModelSettings": "settings",
        "LayerCost": "records",
        "ItemCost": "records",
        "ExitCost": "records",
        "ExpectedCost": "records",
        "CostEngine": "engine",
        "LayerCostCache": "cache",
        "default_cache_path": "cache",
        "Allocation": "exits",
        "per_exit_costs": "exits",
        "expected_cost": "exits",
        "parse_onnx": "graph",
        "cost_onnx": "report",
    },
)
