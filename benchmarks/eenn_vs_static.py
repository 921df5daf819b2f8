"""Does early exit earn its place? From one explore run, compare the Pareto front of the early-exit
networks with the front of their static counterparts (same backbones, final exit only) on the same
accelerator, at matched test accuracy: at the static front's best accuracy and at two lower levels.

Both sides use the weights the search evaluated (inherited + calibrated, before the final fine-tuning),
evaluated now on the full test split, so neither side gets extra training.

    .venv/bin/python benchmarks/eenn_vs_static.py runs/bench-fashion-mnist
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import torch

from codesign.backends import EvaluatorRecipe, build_evaluator
from codesign.cost_cache import default_cache_path
from codesign.data import load_dataset
from codesign.evaluator import with_test
from codesign.exploration import prepare_space
from codesign.hardware import load_hardware
from codesign.store import RunStore
from codesign.supernet import supernet_checkpoint
from codesign.workload import load_workload


def front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Non-dominated (accuracy up, energy down) points, by accuracy."""
    best: list[tuple[float, float]] = []
    for accuracy, energy in sorted(points, key=lambda p: (-p[0], p[1])):
        if not best or energy < best[-1][1]:
            best.append((accuracy, energy))
    return sorted(best)


def cheapest(points: list[tuple[float, float]], accuracy: float) -> float | None:
    energies = [e for a, e in points if a >= accuracy - 1e-12]
    return min(energies) if energies else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    store = RunStore(args.run / "run.db")
    config = store.get_meta("config")
    workload = load_workload(config["workload_file"])
    workload = replace(workload, accelerator=config["accelerator_file"])
    target = load_hardware(workload.accelerator, overrides=dict(workload.hardware_overrides))
    dataset = load_dataset(workload.dataset, seed=workload.training.seed, data_dir=args.data_dir)
    space = prepare_space(workload, dataset, target)
    cache = default_cache_path()
    supernet = None
    if workload.training_mode == "supernet":
        supernet = supernet_checkpoint(space, dataset, workload.supernet, cache.parent / "supernets")
    evaluator = build_evaluator(EvaluatorRecipe(workload, space, args.run, cache, supernet, args.data_dir))
    results = [with_test(evaluator, r) for _, r in store.items()]
    early = [(r.test.accuracy, r.expected_test.energy_pj) for r in results if r.num_exits > 1]
    static = [(r.static_test_accuracy, r.static.energy_pj) for r in results]
    static_front, early_front = front(static), front(early + static)  # an EENN may also use no early exit
    best = static_front[-1][0]
    print(
        f"{args.run}: {len(results)} candidates on {target.name}; test split, weights as evaluated by the search"
    )
    print(f"static front: {len(static_front)} networks, best test accuracy {100 * best:.2f}%")
    print(f"{'accuracy >=':>12} {'static nJ':>10} {'early-exit nJ':>14} {'ratio':>6}")
    for level in (best, best - 0.005, best - 0.01):
        s, e = cheapest(static_front, level), cheapest(early_front, level)
        ratio = f"{e / s:.2f}" if s and e else "-"
        print(
            f"{100 * level:11.2f}% {s / 1e3 if s else float('nan'):10.1f} {e / 1e3 if e else float('nan'):14.1f} {ratio:>6}"
        )


if __name__ == "__main__":
    main()
