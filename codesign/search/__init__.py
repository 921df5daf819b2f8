"""Step: search. Objectives (`OBJECTIVES`), algorithms (`ALGORITHMS`), surrogate predictors (`PREDICTORS`),
the pymoo problem, and one entry point `run_search`; typed settings in `settings`."""

from codesign.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "OBJECTIVES": "objectives",
        "ALGORITHMS": "algorithms",
        "PREDICTORS": "surrogate",
        "SearchSettings": "settings",
        "Constraints": "settings",
        "SurrogateSettings": "settings",
        "pareto_front": "objectives",
        "run_search": "run",
        "CodesignProblem": "problem",
    },
)
