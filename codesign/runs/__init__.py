"""Step: runs. Setting a run up (one place loads accelerator and data), `explore`, the run store (the single
source of truth of a run), and the tables and plots rebuilt from it. `explore` itself is
`codesign.runs.explore.explore` (or `codesign.explore`): a public name equal to its module's would be
shadowed by the module."""

from codesign.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "ExploreResult": "explore",
        "RunStore": "store",
        "RunConfig": "store",
        "FinalRecord": "store",
        "prepare_run": "setup",
        "stored_workload": "setup",
        "open_run_evaluator": "setup",
        "load_run": "outputs",
        "write_outputs": "outputs",
    },
)
