"""Where a candidate's evaluation time goes: random candidates of a workload's space evaluated in this
process (one PyTorch thread, empty layer-cost cache) under cProfile, with a table of the time spent in
each step (inclusive: a step's time contains the steps it calls, shown indented).

    .venv/bin/python benchmarks/profile_candidate.py -w digits
    .venv/bin/python benchmarks/profile_candidate.py -w fashion_mnist_deep -n 8 --supernet-epochs 1
    .venv/bin/python benchmarks/profile_candidate.py -w digits --against /tmp/base   # side by side

`--against TREE` runs the same candidates (same seed, same genes) with the codesign of another checkout
(e.g. `git worktree add /tmp/base 7efed5a`) in a subprocess, one after the other, and prints both tables
and the ratio of the mean evaluation time. `--supernet-epochs N` trains the supernet (and the exit heads)
for at most N epochs, into a cache folder of the benchmark's own: for timing only, where the full
supernet would take too long (a weaker supernet changes when the heads' fine-tuning stops, so compare
two trees with the same N).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

# (indent, label, (file suffix, function) pairs tried in order: the step's name in this tree, then in older ones)
STEPS = [
    (0, "candidate evaluation", [("evaluation/evaluator.py", "evaluate")]),
    (1, "architecture (once per architecture)", [("evaluation/evaluator.py", "_train")]),
    (
        2,
        "static network fit (backbone, final head)",
        [("evaluation/weights.py", "static_weights"), ("evaluation/evaluator.py", "static_weights")],
    ),
    (
        2,
        "early heads fit",
        [("evaluation/weights.py", "inherited_model"), ("evaluation/evaluator.py", "_fit_heads")],
    ),
    (3, "calibration (BN statistics, quantizer scales)", [("network/finetune.py", "calibrate")]),
    (3, "head fine-tuning", [("network/finetune.py", "finetune_heads"), ("network/finetune.py", "finetune")]),
    (4, "stage outputs for the heads", [("network/finetune.py", "stage_features")]),
    (2, "model building (Brevitas)", [("network/model.py", "build_model")]),
    (
        2,
        "validation logits and temperatures",
        [("evaluation/statistics.py", "calibrated_exits"), ("evaluation/evaluator.py", "cached_exits")],
    ),
    (2, "test-split logits", [("evaluation/statistics.py", "cached_exits")]),
    (2, "ONNX export (QCDQ)", [("deploy/qcdq.py", "qcdq_graph"), ("deploy/qcdq.py", "export_qcdq")]),
    (2, "ONNX layer list", [("cost/graph.py", "parse_onnx")]),
    (1, "costing (residency, layer and exit costs)", [("cost/candidate.py", "priced")]),
    (1, "ZigZag, cache misses (in either of the above)", [("cost/zigzag.py", "zigzag_layer_cost")]),
    (
        1,
        "thresholds and exit fractions",
        [("evaluation/statistics.py", "exit_statistics"), ("evaluation/evaluator.py", "exit_statistics")],
    ),
]


def step_times(stats: pstats.Stats) -> list[tuple[int, str, float | None]]:
    wanted = {pair for _, _, pairs in STEPS for pair in pairs}
    by_name: dict[tuple[str, str], float] = {}
    for (filename, _, function), (_, _, _, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        for suffix, name in wanted:
            if filename.endswith(suffix) and function == name:
                by_name[(suffix, name)] = by_name.get((suffix, name), 0.0) + cumulative
    rows = []
    for indent, label, pairs in STEPS:
        found = [by_name[pair] for pair in pairs if pair in by_name]
        rows.append((indent, label, found[0] if found else None))
    return rows


def measure(workload_name: str, count: int, seed: int, supernet_epochs: int | None, cache_dir: Path) -> dict:
    """Evaluate `count` random candidates in this process; the step table and timings as a dict."""
    import numpy as np
    import torch

    from codesign.config.workload import load_workload
    from codesign.runs.setup import prepare_run

    torch.set_num_threads(1)
    workload = load_workload(workload_name)
    if supernet_epochs is not None:
        supernet = workload.supernet
        changes = {"epochs": min(supernet.epochs, supernet_epochs)}
        if hasattr(supernet, "head_epochs"):
            changes["head_epochs"] = min(supernet.head_epochs, supernet_epochs)
        workload = replace(workload, supernet=replace(supernet, **changes))
    setup = prepare_run(workload)
    checkpoint = setup.supernet(cache_dir / "supernets", report=lambda line: None)
    with tempfile.TemporaryDirectory() as tmp:
        recipe = setup.recipe(Path(tmp) / "run", Path(tmp) / "layer_costs.sqlite", checkpoint)
        evaluator = setup.evaluator(recipe)
        rng = np.random.default_rng(seed)
        genes = setup.space.genes
        specs = [setup.space.decode([int(rng.integers(len(g.choices))) for g in genes]) for _ in range(count)]
        profiler = cProfile.Profile()
        seconds = []
        for spec in specs:
            start = time.perf_counter()
            profiler.enable()
            evaluator.evaluate(spec)
            profiler.disable()
            seconds.append(time.perf_counter() - start)
        evaluator.engine.close()
    rows = step_times(pstats.Stats(profiler))
    return {
        "tree": str(Path(__file__).resolve().parents[1]),
        "candidates": count,
        "architectures": len({s.architecture().key() for s in specs}),
        "seconds": seconds,
        "steps": rows,
    }


def print_tables(results: list[dict]) -> None:
    head = f"{'step (inclusive seconds, profiled)':<52}" + "".join(
        f"{Path(r['tree']).name:>14}" for r in results
    )
    print(head)
    print("-" * len(head))
    for index, (indent, label, _) in enumerate(results[0]["steps"]):
        cells = []
        for r in results:
            value = r["steps"][index][2]
            cells.append(f"{value:>14.2f}" if value is not None else f"{'-':>14}")
        print(f"{'  ' * indent + label:<52}" + "".join(cells))
    print()
    for r in results:
        s = r["seconds"]
        print(
            f"{r['tree']}: {r['candidates']} candidates ({r['architectures']} architectures), "
            f"mean {sum(s) / len(s):.2f} s per candidate (profiled) "
            f"(min {min(s):.2f}, max {max(s):.2f}, total {sum(s):.1f} s)"
        )
    if len(results) == 2:
        mean = [sum(r["seconds"]) / len(r["seconds"]) for r in results]
        print(
            f"per-candidate time, {Path(results[0]['tree']).name} / {Path(results[1]['tree']).name}: "
            f"{mean[0] / mean[1]:.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-w", "--workload", default="digits")
    parser.add_argument("-n", "--candidates", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--supernet-epochs", type=int, default=None)
    parser.add_argument(
        "--against", type=Path, default=None, help="another checkout's root, run side by side"
    )
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # a subprocess's answer
    args = parser.parse_args()
    cache_dir = Path(os.environ.get("CODESIGN_BENCH_CACHE", Path.home() / ".cache" / "codesign-bench"))
    if args.json:
        result = measure(args.workload, args.candidates, args.seed, args.supernet_epochs, cache_dir)
        print("RESULT " + json.dumps(result))
        return
    trees = [Path(__file__).resolve().parents[1]] + ([args.against.resolve()] if args.against else [])
    results = []
    for tree in trees:
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--json",
            "-w",
            args.workload,
            "-n",
            str(args.candidates),
            "--seed",
            str(args.seed),
        ]
        if args.supernet_epochs is not None:
            command += ["--supernet-epochs", str(args.supernet_epochs)]
        env = {**os.environ, "PYTHONPATH": str(tree), "CODESIGN_BENCH_CACHE": str(cache_dir / tree.name)}
        print(f"$ PYTHONPATH={tree} {' '.join(command[1:])}", flush=True)
        done = subprocess.run(command, env=env, cwd=tree, capture_output=True, text=True)
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        if done.returncode != 0 or not lines:
            sys.exit(f"{tree}: the measurement failed:\n{done.stderr[-2000:]}")
        result = json.loads(lines[-1][len("RESULT ") :])
        result["tree"] = str(tree)
        results.append(result)
    print_tables(results)


if __name__ == "__main__":
    main()
