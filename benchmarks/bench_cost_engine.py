"""Cost engine vs ZigZag on the same network, in one run.

Prints: direct `zigzag.api.get_hardware_performance_zigzag` time and totals; our cold time (empty
layer-cost cache, 1 and N worker processes); our warm time (cache filled) for costing the layer list,
with ONNX parsing timed separately; and the relative difference of the totals (extras off). Then the
whole network with residency `auto` against `offchip` (ZigZag's assumption): cold and warm times (target:
cold auto within 1.2x of cold offchip), totals, and the share of the energy spent in the off-chip memory.

    .venv/bin/python benchmarks/bench_cost_engine.py --network mobilenetv2 --lpf-limit 4
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import onnx

from codesign.cost.cache import LayerCostCache
from codesign.cost.engine import CostEngine
from codesign.cost.graph import layers_from_onnx, parse_onnx
from codesign.cost.settings import CostOptions
from codesign.hardware.target import load_hardware, zigzag_accelerator_file

ZIGZAG_WORKLOADS = Path(__import__("zigzag").__file__).parent / "inputs" / "workload"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--network", default="mobilenetv2", help="resnet18 | mobilenetv2 | alexnet | path.onnx"
    )
    parser.add_argument("--accelerator", default="edge_tpu_like")
    parser.add_argument("--lpf-limit", type=int, default=4)
    parser.add_argument("--opt", default="EDP")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    path = Path(args.network) if args.network.endswith(".onnx") else ZIGZAG_WORKLOADS / f"{args.network}.onnx"
    target = load_hardware(args.accelerator)
    options = CostOptions(opt=args.opt, lpf_limit=args.lpf_limit)
    work = Path(tempfile.mkdtemp(prefix="codesign-bench-"))

    start = time.perf_counter()
    layers = layers_from_onnx(path)
    parse_s = time.perf_counter() - start
    unique = len({repr(layer.geometry_key()) for layer in layers})
    print(
        f"network {path.name}: {len(layers)} compute layers ({unique} distinct), {sum(la.macs for la in layers):,} MACs"
    )
    print(
        f"accelerator {target.name}, ZigZag opt={options.opt} lpf_limit={options.lpf_limit}, {os.cpu_count()} cores"
    )
    print(f"ONNX parsing to layer list: {parse_s * 1e3:.1f} ms")

    from zigzag.api import get_hardware_performance_zigzag

    inferred = work / "inferred.onnx"
    onnx.save(
        onnx.shape_inference.infer_shapes(onnx.load(str(path), load_external_data=False)), str(inferred)
    )
    start = time.perf_counter()
    energy, latency, _ = get_hardware_performance_zigzag(
        str(inferred),
        str(zigzag_accelerator_file(target, work)),
        str(target.mapping_path),
        opt=options.opt,
        lpf_limit=options.lpf_limit,
        dump_folder=str(work / "zigzag"),
        loma_show_progress_bar=False,
    )
    direct_s = time.perf_counter() - start
    print(f"direct ZigZag:          {direct_s:8.2f} s   energy {energy:.6e} pJ  latency {latency:.6e} cycles")

    results = {}
    for jobs in sorted({1, args.jobs}):
        cache = LayerCostCache(work / f"cold-{jobs}.sqlite")
        start = time.perf_counter()
        with CostEngine(target, options, cache, jobs=jobs) as engine:
            costs = engine.layer_costs(layers)
        results[jobs] = time.perf_counter() - start
        e = sum(c.energy_pj for c in costs)
        lat = sum(c.latency_cycles for c in costs)
        print(
            f"codesign cold, {jobs} worker{'s' if jobs > 1 else ' '}: {results[jobs]:8.2f} s   energy {e:.6e} pJ  "
            f"latency {lat:.6e} cycles  (rel. diff {abs(e - energy) / energy:.1e} / {abs(lat - latency) / latency:.1e})"
        )
    warm_cache = work / f"cold-{max(results)}.sqlite"
    times = []
    for _ in range(20):
        start = time.perf_counter()
        engine = CostEngine(target, options, LayerCostCache(warm_cache))  # fresh engine: nothing in memory
        costs = engine.layer_costs(layers)
        times.append(time.perf_counter() - start)
        assert engine.stats.zigzag_calls == 0
    print(
        f"codesign warm (SQLite, new engine each time, {len(layers)} layers): median {statistics.median(times) * 1e3:.1f} ms, "
        f"max {max(times) * 1e3:.1f} ms over {len(times)} runs; ZigZag calls: 0"
    )
    print(
        f"speed-up cold vs direct: {direct_s / min(results.values()):.2f}x; warm vs direct: "
        f"{direct_s / statistics.median(times):,.0f}x"
    )
    residency_modes(parse_onnx(path), target, options, work, max(results))


def residency_modes(network, target, options: CostOptions, work: Path, jobs: int) -> None:  # noqa: ANN001
    """Cold and warm network costs with residency auto vs offchip, and where the energy goes."""
    from codesign.cost.network import network_costs
    from codesign.cost.residency import plan_residency
    from codesign.cost.settings import CostModelSettings
    from codesign.hardware.memory import off_chip_level

    outer = off_chip_level(target).name
    cold = {}
    for mode in ("offchip", "auto"):
        settings = CostModelSettings(precision_aware_mac=False, non_compute_ops=False, residency=mode)
        cache_path = work / f"residency-{mode}.sqlite"
        start = time.perf_counter()
        with CostEngine(target, options, LayerCostCache(cache_path), jobs=jobs) as engine:
            plan = plan_residency(network.layers, target, mode, operators=network.operators)
            items = network_costs(network.layers, network.operators, engine, settings, plan=plan)
        cold[mode] = time.perf_counter() - start
        warm = []
        for _ in range(10):
            start = time.perf_counter()
            engine = CostEngine(target, options, LayerCostCache(cache_path))
            network_costs(network.layers, network.operators, engine, settings)
            warm.append(time.perf_counter() - start)
            assert engine.stats.zigzag_calls == 0
        energy = sum(i.energy_pj for i in items)
        off = sum(m.read_pj + m.write_pj for i in items for m in i.memory if m.level == outer)
        on_chip = (
            sum(i.weights_at == "on-chip" for i in items),
            sum(i.activations_at == "on-chip" for i in items),
        )
        print(
            f"residency {mode:8}: cold {cold[mode]:7.2f} s ({jobs} workers), warm median {statistics.median(warm) * 1e3:6.1f} ms | "
            f"energy {energy:.4e} pJ, latency {sum(i.latency_cycles for i in items):.4e} cycles | "
            f"{100 * off / energy:5.1f}% of the energy in {outer} | layers with weights / activations on chip: "
            f"{on_chip[0]} / {on_chip[1]} of {len(network.layers)}; weights {plan.on_chip_bytes / 1024:.1f} KiB kept on chip, "
            f"{plan.streamed_bytes / 1024:.1f} KiB streamed"
        )
    ratio = cold["auto"] / cold["offchip"]
    print(f"cold auto / cold offchip: {ratio:.2f}x (target <= 1.2x): {'met' if ratio <= 1.2 else 'NOT met'}")


if __name__ == "__main__":
    main()
