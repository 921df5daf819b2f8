"""The co-design search as a pymoo problem: integer genes -> CandidateSpec -> objectives and constraints."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from pymoo.core.problem import Problem

from codesign.evaluation.result import CandidateResult
from codesign.search.objectives import constraint_values, objective_values
from codesign.search.operators import exit_twins
from codesign.search.settings import Constraints
from codesign.space import SearchSpace
from codesign.spec import CandidateSpec

# Evaluates (or reads back) a batch of candidates; the search's only way to the outside world.
EvaluateBatchFn = Callable[[list[CandidateSpec]], list[CandidateResult]]


class CodesignProblem(Problem):
    """Decision variables are the indices of the space's genes that have more than one choice."""

    def __init__(
        self,
        space: SearchSpace,
        evaluate_batch: EvaluateBatchFn,
        objectives: tuple[str, ...],
        constraints: Constraints | None = None,
    ):
        self.space = space
        self.evaluate_batch = evaluate_batch
        self.objectives = objectives
        self.constraints = constraints or Constraints()
        genes = space.genes
        self.free = [i for i, g in enumerate(genes) if len(g.choices) > 1]
        self.num_genes = len(genes)
        upper = np.array([len(genes[i].choices) - 1 for i in self.free])
        super().__init__(
            n_var=len(self.free),
            n_obj=len(objectives),
            n_ieq_constr=len(self.constraints.active),
            xl=np.zeros(len(self.free)),
            xu=upper,
            vtype=int,
        )

    def decode(self, x: np.ndarray) -> CandidateSpec:
        indices = [0] * self.num_genes
        for position, gene_index in enumerate(self.free):
            indices[gene_index] = int(round(float(x[position])))
        return self.space.decode(indices)

    def seed_rows(self, seeds: Sequence[CandidateSpec]) -> np.ndarray:
        """The free-gene vectors of these static networks (`SearchSpace.encode`; ones the space cannot
        express are left out), without repeats."""
        rows = []
        for spec in seeds:
            indices = self.space.encode(spec)
            if indices is not None:
                rows.append(tuple(indices[i] for i in self.free))
        unique = list(dict.fromkeys(rows))
        return np.array(unique, dtype=float).reshape(len(unique), self.n_var)

    def exit_columns(self) -> list[int]:
        """Columns of the exits' on/off genes."""
        genes = self.space.genes
        return [column for column, index in enumerate(self.free) if genes[index].name.endswith(".on")]

    def exit_gene_columns(self) -> list[int]:
        """Columns of the genes that shape the exits besides their on/off genes: branches, policy, accuracy drop."""
        genes = self.space.genes

        def shapes_exits(name: str) -> bool:
            return (name.startswith("exit") and not name.endswith(".on")) or name in (
                "policy",
                "accuracy_drop",
            )

        return [column for column, index in enumerate(self.free) if shapes_exits(genes[index].name)]

    def exit_twins(self, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The early-exit twins of these static rows (`operators.exit_twins`)."""
        low, high = self.xl.astype(int), self.xu.astype(int)
        return exit_twins(rows, self.exit_columns(), self.exit_gene_columns(), low, high, rng)

    def _evaluate(self, X: np.ndarray, out: dict, *args: object, **kwargs: object) -> None:
        results = self.evaluate_batch([self.decode(x) for x in X])
        out["F"] = np.array([objective_values(r, self.objectives) for r in results])
        if self.n_ieq_constr:
            out["G"] = np.array([constraint_values(r, self.constraints) for r in results])
