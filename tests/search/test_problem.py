from __future__ import annotations

import numpy as np


def test_a_static_network_encodes_into_an_early_exit_space_and_seeds_its_first_population():

    from codesign.config.workload import load_workload
    from codesign.search.operators import SeededSampling
    from codesign.search.problem import CodesignProblem
    from codesign.space import SearchSpace
    from codesign.spec import StageSpec

    workload = load_workload("digits")
    space = SearchSpace(
        stages=workload.space.stages, num_classes=10, in_channels=1, resolution=8, exit_fractions=(0.5, 0.9)
    )
    static = SearchSpace(**{**space.__dict__, "early_exits": False})
    rng = np.random.default_rng(0)
    seeds = [static.decode([int(rng.integers(len(g.choices))) for g in static.genes]) for _ in range(3)]
    for seed in seeds:
        decoded = space.decode(space.encode(seed))
        assert not any(decoded.exits) and decoded.stages == seed.stages and decoded.key() == seed.key()
    foreign = seeds[0].__class__(
        **{
            **seeds[0].__dict__,
            "stages": (StageSpec(depth=9, width=3, kernel=3, stride=1, weight_bits=8, act_bits=8),) * 3,
        }
    )
    assert space.encode(foreign) is None  # a backbone this space cannot express is no seed

    problem = CodesignProblem(space, lambda specs: [], ("accuracy", "energy"))
    rows = problem.seed_rows([*seeds, seeds[0], foreign])
    assert len(rows) == 3
    first = SeededSampling(rows, problem.exit_columns(), problem.exit_gene_columns())._do(
        problem, 12, random_state=np.random.default_rng(1)
    )
    decoded = [problem.decode(x) for x in first]
    assert [d.key() for d in decoded[:3]] == [s.key() for s in seeds]
    twins = decoded[3:6]  # each seed's backbone with every early exit on
    assert all(all(t.exits) for t in twins)
    assert [(t.stages, t.resolution, t.hardware) for t in twins] == [
        (s.stages, s.resolution, s.hardware) for s in seeds
    ]
    assert len(decoded) >= 12 and len(decoded[6:]) >= 6  # at least half a population drawn at random
    assert sum(not any(d.exits) for d in decoded[6:]) >= 1  # a share of the random rest is static
    assert len(problem.exit_gene_columns()) > 0
    assert not set(problem.exit_gene_columns()) & set(problem.exit_columns())
