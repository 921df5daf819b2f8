"""codesign's multi-core costs beside Stream's, on the same networks and the same four-core Edge-TPU-like chip.

    bash benchmarks/stream/setup.sh                                # once: Stream into .stream-venv (Python 3.12)
    .venv/bin/python benchmarks/stream_comparison.py --out docs/stream \\
        --eenn studies/zniber_fmnist/onnx/6c623bc08011e1f7.onnx   # a network a zniber_fmnist run returned

Networks: ZigZag's ResNet-18 and MobileNetV2 (8-bit, as codesign costs a float graph), and a returned Fashion-MNIST
early-exit network (priced with its run's core allocation). The chip: `accelerators/edge_tpu_x4.yaml` written in
Stream's format (four copies of its ZigZag core without the DRAM level, one off-chip core holding the DRAM with the
four cores' 4 x 64 bit/cycle, the codesign interconnect as a bus between the cores with its energy per bit).

For each network: codesign's latency, energy and core allocation (`cost_onnx`, residency `auto` as deployed and
`offchip` as ZigZag assumes) and Stream's (`stream.api.evaluate_mapping`, its generic mapping generator), then per
Stream fused group the same layers' codesign cost, so that a difference can be read group by group. Layers Stream's
ZigZag could not map are priced by Stream at ideal cycles and zero energy: they are listed. A network Stream cannot
parse or schedule is listed with Stream's error. Writes `stream_totals.csv`, `stream_groups.csv` and `summary.md`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import onnx
import pandas as pd
import yaml
from onnx import TensorProto, helper

from codesign.cli.cost import RunDefaults, run_defaults
from codesign.cost.report import CostReport, cost_onnx
from codesign.cost.settings import CostModelSettings, CostOptions
from codesign.files import atomic_write_text

ROOT = Path(__file__).resolve().parent.parent
ZIGZAG_WORKLOADS = Path(__import__("zigzag").__file__).parent / "inputs" / "workload"
STREAM_SIDE = Path(__file__).resolve().parent / "stream" / "stream_side.py"
RESIDENCIES = ("auto", "offchip")


def stream_hardware(accelerator: Path, folder: Path) -> Path:
    """`accelerator` (a codesign multi-core file) in Stream's format; returns the system file's path."""
    data = yaml.safe_load(accelerator.read_text())
    cores = data["codesign"]["cores"]
    interconnect = data["codesign"]["interconnect"]
    off_chip = [
        name for name, memory in data["memories"].items() if {"I1", "I2", "O"} <= set(memory["operands"])
    ]
    dram_name = max(off_chip, key=lambda name: data["memories"][name]["size"])
    dram = dict(data["memories"][dram_name])
    port_bits = max(port.get("bandwidth_max", 0) for port in dram["ports"])
    # one off-chip core holds the DRAM; its port carries what each core's own port carries in codesign's model
    dram["ports"] = [
        {**port, "bandwidth_min": port_bits, "bandwidth_max": port_bits * cores} for port in dram["ports"]
    ]
    # energies are per access of bandwidth_max bits: a port `cores` times wider costs as much per bit
    dram["r_cost"], dram["w_cost"] = dram["r_cost"] * cores, dram["w_cost"] * cores
    dram["served_dimensions"] = ["D1", "D2"]
    (folder / "cores").mkdir(parents=True, exist_ok=True)
    core = {
        "name": f"{data['name']}_core",
        "type": "zigzag.compute",
        "memories": {name: memory for name, memory in data["memories"].items() if name != dram_name},
        "operational_array": data["operational_array"],
    }
    offchip = {
        "name": "offchip",
        "type": "zigzag.offchip",
        "memories": {dram_name: dram},
        "operational_array": {"unit_energy": 0, "unit_area": 0, "dimensions": ["D1", "D2"], "sizes": [0, 0]},
    }
    (folder / "cores" / "core.yaml").write_text(yaml.safe_dump(core, sort_keys=False))
    (folder / "cores" / "offchip.yaml").write_text(yaml.safe_dump(offchip, sort_keys=False))
    bus_bits = interconnect["bandwidth_bits_per_cycle"]
    system = {
        "name": f"{data['name']}_stream",
        "cores": {**{i: "./cores/core.yaml" for i in range(cores)}, cores: "./cores/offchip.yaml"},
        "core_coordinates": {**{i: [i % 2, i // 2] for i in range(cores)}, cores: [2, 0]},
        "offchip_core_id": cores,
        "unit_energy_cost": 0,
        "core_connectivity": [
            # Stream charges a link unit_energy_cost / bandwidth per bit
            {
                "type": "bus",
                "cores": list(range(cores)),
                "bandwidth": bus_bits,
                "unit_energy_cost": interconnect["energy_pj_per_bit"] * bus_bits,
            },
            *(
                {"type": "link", "cores": [i, cores], "bandwidth": port_bits, "unit_energy_cost": 0}
                for i in range(cores)
            ),
        ],
    }
    path = folder / f"{system['name']}.yaml"
    path.write_text(yaml.safe_dump(system, sort_keys=False))
    return path


def stream_ready(source: Path, target: Path, output: str | None = None) -> Path:
    """`source` as Stream 2.1's ONNX reader takes it, for the same costs codesign computes.

    Batch 1; a float graph's tensors typed int8 (codesign costs a float graph at 8 bits; Stream reads the
    element type); the input's quantizer dropped (the chip receives int8); Clip (QCDQ's clamp, ReLU6) and
    BatchNormalization removed (codesign fuses both into the producing layer); AveragePool priced as a MaxPool of
    the same window (Stream reads no AveragePool; same loop nest); Constant nodes no longer read dropped.
    `output`: keep only what that tensor needs (an exit, or a backbone prefix)."""
    model = onnx.shape_inference.infer_shapes(onnx.load(str(source), load_external_data=False))
    if output is not None:
        model = onnx.utils.Extractor(model).extract_model([i.name for i in model.graph.input], [output])
    graph = model.graph
    replaced: dict[str, str] = {}
    kept = []
    for node in graph.node:
        if node.op_type in ("Clip", "BatchNormalization"):
            replaced[node.output[0]] = node.input[0]
        else:
            kept.append(node)

    def origin(name: str) -> str:
        while name in replaced:
            name = replaced[name]
        return name

    for node in kept:
        node.input[:] = [origin(name) for name in node.input]
    for out in graph.output:  # a removed node wrote a graph output: its producer writes it now
        source_name = origin(out.name)
        if source_name != out.name:
            for node in kept:
                node.output[:] = [out.name if name == source_name else name for name in node.output]
                node.input[:] = [out.name if name == source_name else name for name in node.input]
    read = {name for node in kept for name in node.input} | {out.name for out in graph.output}
    kept = [node for node in kept if node.op_type != "Constant" or node.output[0] in read]
    for node in kept:
        if node.op_type == "AveragePool":
            node.op_type = "MaxPool"
            for attribute in [a for a in node.attribute if a.name == "count_include_pad"]:
                node.attribute.remove(attribute)
            if not any(a.name == "pads" for a in node.attribute):
                node.attribute.append(helper.make_attribute("pads", [0, 0, 0, 0]))
    quantized = any(node.op_type == "QuantizeLinear" for node in kept)
    for value in graph.input:
        quantizers = [n for n in kept if n.op_type == "QuantizeLinear" and n.input[0] == value.name]
        if len(quantizers) == 1:
            dropped = quantizers[0]
            for node in kept:
                node.input[:] = [value.name if name == dropped.output[0] else name for name in node.input]
            kept.remove(dropped)
            value.type.tensor_type.elem_type = TensorProto.INT8
    del graph.node[:]
    graph.node.extend(kept)
    if not quantized:
        for value in [*graph.input, *graph.output, *graph.value_info]:
            if value.type.tensor_type.elem_type == TensorProto.FLOAT:
                value.type.tensor_type.elem_type = TensorProto.INT8
        for tensor in graph.initializer:
            if tensor.data_type == TensorProto.FLOAT:
                tensor.data_type = TensorProto.INT8
    else:
        del graph.value_info[:]
    for tensor in graph.initializer:  # shapes are all either tool reads; ZigZag's files ship without weights
        del tensor.external_data[:]
        tensor.data_location = TensorProto.DEFAULT
    for value in [*graph.input, *graph.output]:
        for dim in value.type.tensor_type.shape.dim:
            if not dim.dim_value:
                dim.dim_value = 1
    onnx.save(model, str(target))
    return target


def run_stream(python: Path, hardware: Path, model: Path, time_limit_s: float, timeout_s: float) -> dict:
    """Stream's result for one network, or {"error": Stream's last error line, or that it did not finish}."""
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [str(python), str(STREAM_SIDE), str(hardware), str(model), str(time_limit_s)],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish within {timeout_s:.0f} s (stopped)", "seconds": timeout_s}
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip() and not line.startswith(" ")]
        return {
            "error": lines[-1] if lines else f"exit {done.returncode}",
            "seconds": time.perf_counter() - started,
        }
    return json.loads(done.stdout)


def codesign_side(
    model: Path, accelerator: Path, residency: str, run: RunDefaults | None, cache: Path
) -> CostReport:
    """codesign's cost of `model`: with its run's options, core allocation and residency order when a run
    returned it (`run`), else codesign's defaults."""
    return cost_onnx(
        model,
        str(accelerator),
        options=run.options if run is not None else CostOptions(),
        settings=CostModelSettings(residency=residency),
        allocation=run.allocation if run is not None else None,
        residency_fractions=run.residency_fractions if run is not None else None,
        cache_path=cache,
        jobs=2,
    )


def used_cores(report: CostReport) -> str:
    if not report.schedule:
        return "core 0 (every layer)"
    return " ".join(f"{task.segment}:c{task.core}" for task in report.schedule)


def usage_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the command line, in one line naming the option (None: nothing)."""
    if not (args.stream_venv / "bin" / "python").is_file():
        return f"--stream-venv: {args.stream_venv}: expected Stream's environment (bash benchmarks/stream/setup.sh)"
    unknown = [name for name in args.networks if not (ZIGZAG_WORKLOADS / f"{name}.onnx").is_file()]
    if unknown:
        shipped = sorted(p.stem for p in ZIGZAG_WORKLOADS.glob("*.onnx"))
        return f"--networks: {', '.join(unknown)}: expected ZigZag's workloads ({', '.join(shipped)})"
    if args.eenn is not None:
        try:
            onnx.load(str(args.eenn), load_external_data=False)
        except Exception as exc:  # noqa: BLE001 - missing file, or not ONNX: one line either way
            return f"--eenn: {args.eenn}: expected an ONNX network a run returned ({type(exc).__name__})"
    if not (args.time_limit > 0 and args.timeout > 0):
        return "--time-limit, --timeout: expected positive seconds"
    return None


def compare(args: argparse.Namespace) -> tuple[pd.DataFrame, pd.DataFrame]:
    python = args.stream_venv / "bin" / "python"
    accelerator = args.accelerator
    networks: list[tuple[str, Path, RunDefaults | None, list[tuple[str, str | None]]]] = [
        (name, ZIGZAG_WORKLOADS / f"{name}.onnx", None, [("whole network", None)]) for name in args.networks
    ]
    if args.eenn is not None:
        outputs = [o.name for o in onnx.load(str(args.eenn), load_external_data=False).graph.output]
        networks.append(
            (
                f"fmnist-eenn {args.eenn.stem}",
                args.eenn,
                run_defaults(args.eenn),
                [("every exit (input through all)", None), *((f"up to {name}", name) for name in outputs)],
            )
        )
    totals, groups = [], []
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        hardware = stream_hardware(accelerator, work / "hardware")
        for name, model, run, parts in networks:
            reports = {r: codesign_side(model, accelerator, r, run, args.cost_cache) for r in RESIDENCIES}
            layers = reports["auto"].layers.set_index("name")
            for part, output in parts:
                prepared = stream_ready(model, work / f"{name.replace(' ', '_')}-{len(totals)}.onnx", output)
                print(f"Stream: {name}, {part} ...", flush=True)
                stream = run_stream(python, hardware, prepared, args.time_limit, args.timeout)
                exit_row = -1 if output is None else list(reports["auto"].exits["exit"]).index(output)
                row = {"network": name, "part": part}
                for residency, report in reports.items():
                    final = report.exits.iloc[exit_row]
                    row[f"codesign_{residency}_cycles"] = float(final["latency_cycles"])
                    row[f"codesign_{residency}_energy_pj"] = float(final["energy_pj"])
                row["codesign_cores"] = used_cores(reports["auto"])
                if "error" in stream:
                    row["stream_error"] = stream["error"]
                else:
                    unmapped = sorted({layer for group in stream["groups"] for layer in group["fallback"]})
                    row |= {
                        "stream_cycles": stream["cycles"],
                        "stream_energy_pj": stream["energy_pj"],
                        "stream_cores": "every layer split over cores "
                        + ",".join(
                            str(c)
                            for c in sorted(
                                {c for g in stream["groups"] for cs in g["cores"].values() for c in cs}
                            )
                        ),
                        "stream_unmapped_layers": len(unmapped),
                        "stream_seconds": stream["seconds"],
                    }
                    for group in stream["groups"]:
                        mine = layers.reindex([layer for layer in group["layers"] if layer in layers.index])
                        groups.append(
                            {
                                "network": name,
                                "part": part,
                                "group": group["group"],
                                "layers": " ".join(group["layers"]),
                                "stream_cycles": group["cycles"],
                                "stream_energy_pj": group["energy_pj"],
                                "stream_transfer_energy_pj": group["transfer_energy_pj"],
                                "stream_transfer_bound_pct": group["bound"]["transfer_bound_pct"],
                                "stream_unmapped": " ".join(group["fallback"]),
                                "codesign_cycles": float(mine["latency_cycles"].sum()),
                                "codesign_energy_pj": float(mine["energy_pj"].sum()),
                            }
                        )
                totals.append(row)
    return pd.DataFrame(totals), pd.DataFrame(groups)


def summary(totals: pd.DataFrame, groups: pd.DataFrame, command: str) -> str:
    lines = [
        "# codesign's multi-core costs beside Stream's (edge_tpu_x4)",
        "",
        f"Command: `{command}`; Stream `stream-dse` 2.1.1 (Python 3.12), codesign residency `auto` and `offchip`.",
        "",
        "| network | part | codesign cycles (auto / offchip) | Stream cycles | codesign energy uJ (auto / offchip) "
        "| Stream energy uJ | Stream / codesign (auto): latency, energy | Stream layers unmapped |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in totals.to_dict("records"):
        mine = (
            f"{row['codesign_auto_cycles']:.3g} / {row['codesign_offchip_cycles']:.3g}",
            f"{row['codesign_auto_energy_pj'] / 1e6:.4g} / {row['codesign_offchip_energy_pj'] / 1e6:.4g}",
        )
        if isinstance(row.get("stream_error"), str):
            lines.append(
                f"| {row['network']} | {row['part']} | {mine[0]} | fails | {mine[1]} | fails | "
                f"Stream: `{row['stream_error'][:160]}` | |"
            )
            continue
        lines.append(
            f"| {row['network']} | {row['part']} | {mine[0]} | {row['stream_cycles']:.3g} | {mine[1]} | "
            f"{row['stream_energy_pj'] / 1e6:.4g} | {row['stream_cycles'] / row['codesign_auto_cycles']:.2f}x, "
            f"{row['stream_energy_pj'] / row['codesign_auto_energy_pj']:.2f}x | {row['stream_unmapped_layers']:.0f} |"
        )
    if not groups.empty:
        lines += [
            "",
            "Per Stream fused group (codesign: the same layers, residency auto):",
            "",
            "| network | group | layers | Stream cycles | codesign cycles | Stream uJ (transfers) | codesign uJ "
            "| transfer-bound % | unmapped by Stream |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for row in groups.to_dict("records"):
            layers = row["layers"].split()
            shown = layers[0] + (f" +{len(layers) - 1}" if len(layers) > 1 else "")
            lines.append(
                f"| {row['network']} | {row['group']} | `{shown}` | {row['stream_cycles']:.3g} | "
                f"{row['codesign_cycles']:.3g} | {row['stream_energy_pj'] / 1e6:.3g} "
                f"({row['stream_transfer_energy_pj'] / 1e6:.3g}) | {row['codesign_energy_pj'] / 1e6:.3g} | "
                f"{row['stream_transfer_bound_pct']:.0f} | {row['stream_unmapped'] or '-'} |"
            )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "stream")
    parser.add_argument("--accelerator", type=Path, default=ROOT / "accelerators" / "edge_tpu_x4.yaml")
    parser.add_argument("--eenn", type=Path, help="a network a run returned (RUN/onnx/KEY.onnx)")
    parser.add_argument("--stream-venv", type=Path, default=ROOT / ".stream-venv")
    parser.add_argument(
        "--networks", nargs="*", default=["resnet18", "mobilenetv2"], help="ZigZag's workloads"
    )
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per Stream allocation solve")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds Stream may take per network")
    parser.add_argument(
        "--cost-cache", type=Path, default=Path.home() / ".cache" / "codesign" / "layer_costs.sqlite"
    )
    args = parser.parse_args()
    problem = usage_problem(args)
    if problem is not None:
        print(f"stream_comparison.py: error: {problem}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    totals, groups = compare(args)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "stream_totals.csv", totals.to_csv(index=False))
    atomic_write_text(args.out / "stream_groups.csv", groups.to_csv(index=False))
    command = "benchmarks/stream_comparison.py " + " ".join(sys.argv[1:])
    atomic_write_text(args.out / "summary.md", summary(totals, groups, command))
    print(summary(totals, groups, command))
    print(f"took {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
