"""The ways to a candidate's ONNX layer list, timed on the same networks: the written and checked QCDQ file
read back (returned networks), the search's in-memory export (`deploy.qcdq.qcdq_graph`), and torch's
dynamo exporter; each layer list compared with the file's.

    .venv/bin/python benchmarks/export_paths.py -w digits -n 12
    .venv/bin/python benchmarks/export_paths.py -w fashion_mnist_deep -n 8

Networks: random architectures of the workload's space (every exit head present), built and exported
untrained (the graph and its layers do not depend on the weights' values).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-w", "--workload", default="digits")
    parser.add_argument("-n", "--networks", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import numpy as np
    import torch

    from codesign.config.workload import load_workload
    from codesign.cost.graph import parse_onnx
    from codesign.data.registry import load_dataset
    from codesign.deploy.qcdq import export_qcdq, qcdq_graph
    from codesign.network.model import build_model
    from codesign.runs.setup import prepare_space

    torch.set_num_threads(1)
    workload = load_workload(args.workload)
    dataset = load_dataset(workload.dataset, seed=workload.training.seed)
    from codesign.runs.setup import workload_target

    space = prepare_space(workload, dataset, workload_target(workload))
    rng = np.random.default_rng(args.seed)
    specs = [
        space.decode([int(rng.integers(len(g.choices))) for g in space.genes]).architecture()
        for _ in range(args.networks)
    ]
    times: dict[str, list[float]] = {"file": [], "in memory": [], "dynamo": []}
    equal, dynamo_error = 0, None
    with tempfile.TemporaryDirectory() as tmp:
        for index, spec in enumerate(specs):
            model = build_model(spec).eval()
            start = time.perf_counter()
            from_file = parse_onnx(export_qcdq(model, Path(tmp) / f"{index}.onnx"))
            times["file"].append(time.perf_counter() - start)
            start = time.perf_counter()
            in_memory = parse_onnx(qcdq_graph(model), source=f"{index}.onnx")
            times["in memory"].append(time.perf_counter() - start)
            equal += in_memory == from_file
            start = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    from brevitas.export import export_onnx_qcdq

                    export_onnx_qcdq(
                        model,
                        args=torch.zeros(1, spec.in_channels, spec.resolution, spec.resolution),
                        export_path=str(Path(tmp) / f"{index}-dynamo.onnx"),
                        dynamo=True,
                    )
                times["dynamo"].append(time.perf_counter() - start)
            except Exception as exc:  # noqa: BLE001 - reported below
                dynamo_error = dynamo_error or f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
    print(f"{args.workload}: {len(specs)} architectures (every exit head present)")
    for name, values in times.items():
        if values:
            print(
                f"  {name:>10}: median {statistics.median(values) * 1e3:.0f} ms per network (total {sum(values):.2f} s)"
            )
    if dynamo_error:
        print(f"      dynamo: fails on these networks ({dynamo_error})")
    print(f"  in-memory layer list equal to the file's: {equal} of {len(specs)}")


if __name__ == "__main__":
    main()
