"""Step: candidates end to end. The result record, the evaluator (spec -> accuracy, exit fractions, costs),
and where candidates are evaluated (this process, worker processes, Dask)."""

from codesign.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "CandidateResult": "result",
        "Evaluator": "evaluator",
        "EvaluationSettings": "settings",
        "finalize": "finalize",
        "with_test": "finalize",
        "EvaluatorRecipe": "backends",
        "build_evaluator": "backends",
        "make_backend": "backends",
    },
)
