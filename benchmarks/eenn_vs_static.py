"""Does early exit earn its place? From one explore run, compare the Pareto front of the early-exit
networks with the front of static networks (final exit only) on the same accelerator, at matched test
accuracy: at the static front's best accuracy and at two lower levels.

The static front holds the static counterpart of every backbone the run evaluated and, with
`--static-run`, every network of a search over the same space with all exits off (`codesign explore
--static`, same budget): the static side then gets its own search and its own supernet, trained without
exit heads. Every network is evaluated now on the full test split with the weights its search evaluated
(inherited + calibrated, before the final fine-tuning), so neither side gets extra training; test figures
are kept in RUN/test_figures.json for the next comparison.

Two tables: fronts chosen on the test split itself (each side's luckiest networks; the side with more
networks gains), and fronts chosen on validation as the search returns them, then measured on test.

    .venv/bin/python benchmarks/eenn_vs_static.py runs/bench-fashion-mnist-deep \
        --static-run runs/bench-fashion-mnist-deep-static
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from codesign.config.workload import Workload
from codesign.cost.cache import default_cache_path
from codesign.cost.records import ExitCost
from codesign.evaluation.finalize import with_test
from codesign.evaluation.result import CandidateResult
from codesign.files import atomic_write_text
from codesign.hardware.memory import off_chip_level
from codesign.hardware.target import load_hardware
from codesign.runs.setup import open_run_evaluator, stored_workload
from codesign.runs.store import RunStore


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


@dataclass(frozen=True)
class Network:
    val_accuracy: float
    val_energy_pj: float
    test_accuracy: float
    test_energy_pj: float
    test_offchip_pj: float = float("nan")  # the part of test_energy_pj spent in the off-chip memory
    # an early-exit network's own static counterpart (the same backbone, final exit only), on test
    own_static_accuracy: float = float("nan")
    own_static_energy_pj: float = float("nan")


def off_chip(cost: ExitCost, outer: str) -> float:
    """Energy of an exit spent in the off-chip memory: 0 where nothing was (the part is then absent), nan
    for results stored before energies were split by part."""
    return cost.energy_by_part.get(outer, 0.0) if cost.energy_by_part else float("nan")


def test_figures(
    run: Path, data_dir: Path | None, accelerator: str | None = None, residency: str | None = None
) -> tuple[list[Network], list[Network], str, str]:
    """A run's early-exit networks and static counterparts with validation and test figures; with the
    accelerator's and the dataset's names. `accelerator` / `residency`: energies re-costed on that library
    accelerator / with that residency mode (same networks, same exit fractions) instead of the run's own.

    Test figures (accuracy, expected energy, static accuracy, exit fractions) are kept in
    RUN/test_figures.json, written atomically every few candidates, so a second comparison, or one resumed
    after a kill, evaluates only what is missing; everything else comes from the run store.
    """
    with RunStore.of_run(run) as store:
        workload = stored_workload(store)
        items = store.items()
    target = load_hardware(workload.accelerator, overrides=dict(workload.hardware_overrides))
    cache_path = run / "test_figures.json"
    cached: dict[str, dict] = json.loads(cache_path.read_text()) if cache_path.is_file() else {}

    def save() -> None:
        atomic_write_text(cache_path, json.dumps(cached))

    # Test exit fractions let `--accelerator` re-cost a network without running it again.
    missing = [
        r
        for _, r in items
        if r.spec.key() not in cached or (r.num_exits > 1 and "fractions" not in cached[r.spec.key()])
    ]
    if missing:
        _, evaluator = open_run_evaluator(run, default_cache_path(), data_dir)
        start = time.perf_counter()
        for done, result in enumerate(missing, 1):
            result = with_test(evaluator, result)
            cached[result.spec.key()] = {
                "accuracy": result.test.accuracy,
                "energy_pj": result.expected_test.energy_pj,
                "static_accuracy": result.static_test_accuracy,
                "fractions": list(result.test.fractions),
            }
            checkpoint(run, done, len(missing), "on the test split", start, save)
    results = [(r, cached[r.spec.key()]) for _, r in items]
    if accelerator is not None or residency is not None:
        recost = recosted(
            run, workload, results, accelerator or workload.accelerator, residency, data_dir, save
        )
        return *recost, workload.dataset
    outer = off_chip_level(target).name
    early = [
        Network(
            r.val.accuracy,
            r.expected_val.energy_pj,
            test["accuracy"],
            test["energy_pj"],
            expected_energy([off_chip(e, outer) for e in r.exits], test["fractions"]),
            test["static_accuracy"],
            r.static.energy_pj,
        )
        for r, test in results
        if r.num_exits > 1
    ]
    static = [
        Network(
            r.static_val_accuracy,
            r.static.energy_pj,
            test["static_accuracy"],
            r.static.energy_pj,
            off_chip(r.static, outer),
        )
        for r, test in results
    ]
    return early, static, target.name, workload.dataset


def checkpoint(run: Path, done: int, total: int, what: str, start: float, save: Callable[[], None]) -> None:
    """Every 10 candidates and at the end: the cache written, progress printed."""
    if done % 10 == 0 or done == total:
        save()
        print(f"{run}: {done}/{total} candidates {what} ({time.perf_counter() - start:.0f} s)", flush=True)


def recosted(
    run: Path,
    workload: Workload,
    results: list[tuple[CandidateResult, dict]],
    accelerator: str,
    residency: str | None,
    data_dir: Path | None,
    save: Callable[[], None],
) -> tuple[list[Network], list[Network], str]:
    """The run's networks with every exit re-costed on another accelerator (ZigZag on the stored weights'
    exported graphs), weighted by the exit fractions measured on validation and test. Approximate as a
    comparison of searches: the networks were chosen by a search that saw the run's own accelerator.
    Per-exit energies are kept in the same cache under `recost`."""
    if any(r.spec.hardware or r.spec.stage_cores for r, _ in results):
        sys.exit(
            f"{run}: candidates carry searched hardware parameters or core allocations; re-costing them on "
            f"{accelerator} would drop those"
        )
    target = load_hardware(accelerator)
    outer = off_chip_level(target).name
    label = target.name + (f" (residency {residency})" if residency else "")
    missing = [(r, test) for r, test in results if label not in test.get("recost", {})]
    if missing:
        _, evaluator = open_run_evaluator(
            run, default_cache_path(), data_dir, accelerator=accelerator, residency=residency
        )
        start = time.perf_counter()
        for done, (result, test) in enumerate(missing, 1):
            spec = result.spec
            exits = evaluator.exit_costs(spec)
            final = evaluator.exit_costs(spec, (spec.num_stages - 1,))[0]
            test.setdefault("recost", {})[label] = {
                "exits": [e.energy_pj for e in exits],
                "static": final.energy_pj,
                "exits_offchip": [e.energy_by_part.get(outer, 0.0) for e in exits],
                "static_offchip": final.energy_by_part.get(outer, 0.0),
            }
            checkpoint(run, done, len(missing), f"re-costed on {label}", start, save)
    early, static = [], []
    for result, test in results:
        costs = test["recost"][label]
        if result.num_exits > 1:
            early.append(
                Network(
                    result.val.accuracy,
                    expected_energy(costs["exits"], result.val.fractions),
                    test["accuracy"],
                    expected_energy(costs["exits"], test["fractions"]),
                    expected_energy(costs["exits_offchip"], test["fractions"]),
                    test["static_accuracy"],
                    costs["static"],
                )
            )
        static.append(
            Network(
                result.static_val_accuracy,
                costs["static"],
                test["static_accuracy"],
                costs["static"],
                costs["static_offchip"],
            )
        )
    return early, static, label


def expected_energy(exit_energies: list[float], fractions: list[float] | tuple[float, ...]) -> float:
    return sum(f * e for f, e in zip(fractions, exit_energies, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="an explore run with early exits")
    parser.add_argument("--static-run", type=Path, help="an explore --static run of the same space")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument(
        "--accelerator",
        help="re-cost both sides' networks on this library accelerator (same networks and exit fractions; "
        "the searches chose them on their own accelerator)",
    )
    parser.add_argument(
        "--residency",
        choices=["auto", "offchip"],
        help="re-cost both sides' networks with this residency mode (same networks and exit fractions)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    early, static, accelerator, dataset = test_figures(
        args.run, args.data_dir, args.accelerator, args.residency
    )
    candidates = len(static)  # one static counterpart per candidate of the run
    sources = f"{candidates} static counterparts from {args.run}"
    if args.static_run:
        _, searched, static_accelerator, static_dataset = test_figures(
            args.static_run, args.data_dir, args.accelerator, args.residency
        )
        if (static_accelerator, static_dataset) != (accelerator, dataset):
            sys.exit(
                f"{args.static_run}: config.json: expected a run on {accelerator} / {dataset}, "
                f"got {static_accelerator} / {static_dataset}"
            )
        static += searched
        sources += f" + {len(searched)} networks of the static search {args.static_run}"
    with RunStore.of_run(args.run) as store:
        searched_on = stored_workload(store).accelerator
    recost = f" (re-costed: the searches ran on {searched_on})" if args.accelerator or args.residency else ""
    print(
        f"{args.run}: {candidates} candidates on {accelerator}{recost}; weights as evaluated by the search\n"
        f"static side: {sources}"
    )
    # An EENN's validation accuracy has run further above its test accuracy than a static network's (its
    # thresholds are tuned there, and its early exits meet the test split too): the gap shows how far
    # validation-chosen fronts can be trusted on each side.
    print(
        f"validation - test accuracy, mean over networks: early exit {gap(early):+.2f} points, "
        f"static {gap(static):+.2f} points"
    )
    print(
        f"share of the expected test energy spent off chip, mean over networks: early exit "
        f"{offchip_share(early):.1f}%, static {offchip_share(static):.1f}%"
    )
    per_network = [
        n.test_energy_pj / n.own_static_energy_pj
        for n in early
        if n.test_accuracy >= n.own_static_accuracy - 0.001  # at most 0.1 point below its counterpart
    ]
    if per_network:
        print(
            f"early-exit networks within 0.1 point of their own static counterpart's test accuracy: "
            f"{len(per_network)} of {len(early)}, test energy against it: median "
            f"{statistics.median(per_network):.2f}x, best {min(per_network):.2f}x"
        )
    static_on_test = on_test(static)
    report(
        "fronts chosen on the test split",
        front(static_on_test),
        front(on_test(early) + static_on_test),  # an EENN may use no exit
        front(on_test(early)),
    )
    # A user picks from the front the search returned (validation figures) and then meets the test split:
    # no selection on test, which would favour whichever side has more networks to be lucky with.
    static_chosen, early_chosen = chosen_on_validation(static), chosen_on_validation(early)
    report(
        "fronts chosen on validation (as the search returns them), measured on the test split",
        front(on_test(static_chosen)),
        front(on_test(early_chosen + static_chosen)),
        front(on_test(early_chosen)),
        best=max(static_chosen, key=lambda n: (n.val_accuracy, -n.val_energy_pj)).test_accuracy,
    )


def offchip_share(networks: list[Network]) -> float:
    shares = [100 * n.test_offchip_pj / n.test_energy_pj for n in networks if n.test_energy_pj > 0]
    return statistics.fmean(shares) if shares else float("nan")


def gap(networks: list[Network]) -> float:
    """Mean validation minus test accuracy in points (nan without networks, e.g. a run with no early exits)."""
    if not networks:
        return float("nan")
    return 100 * sum(n.val_accuracy - n.test_accuracy for n in networks) / len(networks)


def on_test(networks: list[Network]) -> list[tuple[float, float]]:
    return [(n.test_accuracy, n.test_energy_pj) for n in networks]


def chosen_on_validation(networks: list[Network]) -> list[Network]:
    """The networks on the (validation accuracy up, validation energy down) front."""
    keep = set(front([(n.val_accuracy, n.val_energy_pj) for n in networks]))
    return [n for n in networks if (n.val_accuracy, n.val_energy_pj) in keep]


def report(
    title: str,
    static_front: list[tuple[float, float]],
    early_front: list[tuple[float, float]],
    early_only: list[tuple[float, float]],
    best: float | None = None,
) -> None:
    """Energy ratio at the static front's best test accuracy (by default its most accurate point) and 0.5 / 1
    point below it."""
    best = static_front[-1][0] if best is None else best
    print(f"\n{title}: static best test accuracy {100 * best:.2f}%")
    print(f"{'accuracy >=':>12} {'static nJ':>10} {'early-exit nJ':>14} {'ratio':>6}")
    for level in (best, best - 0.005, best - 0.01):
        s, e = cheapest(static_front, level), cheapest(early_front, level)
        ratio = f"{e / s:.2f}" if s and e else "-"
        print(
            f"{100 * level:11.2f}% {s / 1e3 if s else float('nan'):10.1f} {e / 1e3 if e else float('nan'):14.1f} {ratio:>6}"
        )
    print("fronts (test accuracy %, energy nJ)")
    print("static:    ", "  ".join(f"{100 * a:.2f}/{e / 1e3:.0f}" for a, e in static_front))
    print("early exit:", "  ".join(f"{100 * a:.2f}/{e / 1e3:.0f}" for a, e in early_only))


if __name__ == "__main__":
    main()
