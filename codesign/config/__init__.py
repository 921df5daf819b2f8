"""Step: the workload file. Composes every step's typed settings and checks every name against its
registry; reading a workload imports none of PyTorch, Brevitas or ZigZag."""

from codesign.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "Workload": "workload",
        "load_workload": "workload",
        "parse_workload": "workload",
        "parse_search": "search",
    },
)
