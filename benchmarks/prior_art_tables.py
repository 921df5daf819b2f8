"""The prior art's methods run in codesign on Fashion-MNIST, and what pricing the hardware changes.

Runs the three studies (each a `codesign explore` of a shipped workload, resumed when its folder exists) and the
hardware-objective searches they are compared with, then writes the tables of docs/prior-art.md:

1. `macs_vs_hardware.csv`: for each MACs-objective method (AEBNAS, EDANAS) and accelerator, the networks its
   search returned costed on that accelerator (their own test exit fractions) against the networks a search of
   the same workload with objectives accuracy and energy returned there, at three accuracy levels (the best
   static network's test accuracy, 0.5 and 1 point below): expected energy, latency and EDP of the cheapest
   network of each front that reaches the level, and their ratios (MACs front over hardware front). Without a
   hardware search on an accelerator, only the `*_same_candidates` columns: the cheapest network on that
   accelerator among everything the MACs search evaluated (validation figures), over the MACs front's pick.
2. `kendall_tau.csv`: per method and accelerator, Kendall's tau of expected MACs against expected energy over
   every candidate the MACs search evaluated (validation exit fractions): 1 means MACs rank networks as the
   accelerator's energy does.
3. `zniber_edp.csv`: Zniber et al.'s headline on `edge_tpu_x4`: the early-exit front's lowest EDP against the
   static front's at the three levels, with each network's core allocation.
4. `study_times.csv`: wall time of each run made by this script (2 cores).

    .venv/bin/python benchmarks/prior_art_tables.py --runs studies --out docs/prior-art
    .venv/bin/python benchmarks/prior_art_tables.py --quick --runs /tmp/quick --out /tmp/quick/tables

`--quick` runs every workload's `quick:` budget (a few minutes each). Every layer cost comes from ZigZag through
codesign's cost model (the runs' layer-cost cache); a network evaluated during a search is exported again from
its spec for costing on another accelerator: layer shapes and bit widths, not weights, decide its cost.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from scipy.stats import kendalltau

from codesign.cost.exits import Allocation
from codesign.cost.report import cost_onnx
from codesign.deploy.qcdq import qcdq_graph
from codesign.evaluation.result import CandidateResult
from codesign.files import atomic_write_text, library_dir
from codesign.network.model import build_model
from codesign.runs.baseline import BASELINE_FOLDER, LEVELS, early_share
from codesign.runs.store import RunStore

MACS_METHODS = {"aebnas": "aebnas_fmnist", "edanas": "edanas_fmnist"}
ZNIBER = "zniber_fmnist"
DEFAULT_HARDWARE_SEARCHES = ("edge_tpu_like", "eyeriss_like", "mcu_npu")
CODESIGN = [sys.executable, "-m", "codesign.cli.main"]


def library_accelerators() -> list[str]:
    return sorted(p.stem for p in library_dir("accelerators").glob("*.yaml") if ".mapping" not in p.name)


def run_folder(runs: Path, workload: str, accelerator: str | None = None) -> Path:
    return runs / (workload if accelerator is None else f"{workload}-energy-{accelerator}")


EXISTING_ONLY = False  # --existing-only: tables from the finished runs there are; none is started


def ensure_run(
    runs: Path, workload: str, quick: bool, accelerator: str | None, times: dict[str, float]
) -> Path | None:
    """The run folder, made now by `codesign explore` unless it already holds a finished run (its wall time
    is then the one recorded when it was made); None: not finished and `--existing-only`."""
    folder = run_folder(runs, workload, accelerator)
    if (folder / "pareto.csv").is_file():
        return folder
    if EXISTING_ONLY:
        print(f"{folder}: no finished run (--existing-only): left out of the tables", flush=True)
        return None
    command = [*CODESIGN, "explore", "-w", workload, "--run-dir", str(folder), "-q"]
    if quick:
        command.append("--quick")
    if accelerator is not None:
        command += ["-a", accelerator, "--objectives", "accuracy,energy"]
    print("$", " ".join(command[2:]), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True)
    times[folder.name] = time.perf_counter() - start
    return folder


def test_accuracy(result: CandidateResult) -> float:
    return result.test.accuracy if result.test is not None else result.val.accuracy


def allocation(result: CandidateResult) -> Allocation | None:
    spec = result.spec
    return Allocation(spec.stage_cores, spec.head_cores) if spec.stage_cores else None


def cores_used(result: CandidateResult) -> str:
    """The core allocation as `stage cores | head cores of the active exits` (one core: '-')."""
    spec = result.spec
    if not spec.stage_cores:
        return "-"
    heads = [spec.head_cores[i] for i in spec.active_exit_stages[:-1]]
    return f"stages {list(spec.stage_cores)} heads {heads}"


class Pricer:
    """Expected energy, latency and EDP of networks on library accelerators, through `cost_onnx` with the
    run's ZigZag options, cost model and layer-cost cache; graphs exported once per spec."""

    def __init__(self, run_dir: Path):
        with RunStore.of_run(run_dir) as store:
            contents = store.contents()
            self.cache = store.cost_cache()
        assert contents.config is not None, f"{run_dir}: not a codesign run"
        self.config = contents.config
        self.finals = list(contents.finals.values())
        self.results = [result for _, result in contents.items]
        self.run_dir = run_dir
        self._graphs: dict[str, object] = {}

    def price(
        self,
        model: object,
        accelerator: str,
        result: CandidateResult,
        fractions: tuple[float, ...],
        residency: tuple[float, ...],
    ) -> dict[str, float]:
        report = cost_onnx(
            model,  # type: ignore[arg-type]
            accelerator,
            exit_fractions=fractions,
            residency_fractions=residency,
            options=self.config.cost,
            settings=self.config.cost_model,
            allocation=allocation(result) if accelerator == Path(self.config.accelerator_file).stem else None,
            cache_path=self.cache,
        )
        assert report.expected is not None
        return report.expected

    def returned(self, accelerator: str) -> list[tuple[CandidateResult, dict[str, float]]]:
        """The run's returned networks on `accelerator` (their ONNX files, test exit fractions)."""
        priced = []
        for record in self.finals:
            result = record.result
            test = result.test or result.val
            expected = self.price(
                str(self.run_dir / record.onnx), accelerator, result, test.fractions, result.val.fractions
            )
            priced.append((result, expected))
        return priced

    def evaluated(self, accelerator: str) -> list[tuple[CandidateResult, dict[str, float]]]:
        """Every evaluated candidate on `accelerator` (validation exit fractions)."""
        priced = []
        for result in self.results:
            key = result.spec.key()
            if key not in self._graphs:
                self._graphs[key] = qcdq_graph(build_model(result.spec).eval())
            fractions = result.val.fractions
            priced.append((result, self.price(self._graphs[key], accelerator, result, fractions, fractions)))
        return priced


def cheapest(
    priced: list[tuple[CandidateResult, dict[str, float]]],
    level: float,
    accuracy: Callable[[CandidateResult], float],
    by: str,
) -> tuple[CandidateResult, dict[str, float]] | None:
    reaching = [(r, e) for r, e in priced if accuracy(r) >= level - 1e-12]
    return min(reaching, key=lambda item: item[1][by], default=None)


def static_best(results: list[CandidateResult]) -> float:
    """The test accuracy of the static network (a returned network's exits off) most accurate on validation."""
    best = max(results, key=lambda r: (r.static_val_accuracy, r.static_test_accuracy or 0.0))
    return best.static_test_accuracy if best.static_test_accuracy is not None else best.static_val_accuracy


def macs_vs_hardware(
    runs: Path, quick: bool, accelerators: list[str], hardware: tuple[str, ...], times: dict[str, float]
) -> pd.DataFrame:
    rows = []
    for method, workload in MACS_METHODS.items():
        macs_run = ensure_run(runs, workload, quick, None, times)
        if macs_run is None:
            continue
        macs_pricer = Pricer(macs_run)
        for accelerator in accelerators:
            macs_front = macs_pricer.returned(accelerator)
            hardware_front = None
            hardware_run = (
                ensure_run(runs, workload, quick, accelerator, times) if accelerator in hardware else None
            )
            if hardware_run is not None:
                hardware_front = Pricer(hardware_run).returned(accelerator)
            everything = macs_pricer.evaluated(accelerator)
            finals = [r for r, _ in macs_front] + [r for r, _ in hardware_front or []]
            best = static_best(finals)
            for label, below in LEVELS:
                level = best - below
                row: dict[str, object] = {
                    "method": method,
                    "accelerator": accelerator,
                    "level": label,
                    "accuracy_at_least": level,
                }
                mac_pick = cheapest(macs_front, level, test_accuracy, "macs")  # what the MACs method deploys
                mac_best = cheapest(macs_front, level, test_accuracy, "energy_pj")  # its front priced after
                hw_pick = (
                    cheapest(hardware_front, level, test_accuracy, "energy_pj") if hardware_front else None
                )
                for name, pick in (
                    ("macs_pick", mac_pick),
                    ("macs_front_best", mac_best),
                    ("hardware", hw_pick),
                ):
                    row[f"{name}_key"] = pick[0].spec.key() if pick else None
                    for quantity in ("energy_pj", "latency_s", "edp_j_s"):
                        row[f"{name}_{quantity}"] = pick[1][quantity] if pick else None
                for quantity in ("energy_pj", "latency_s", "edp_j_s"):
                    for name in ("macs_pick", "macs_front_best"):
                        mine, theirs = row[f"{name}_{quantity}"], row[f"hardware_{quantity}"]
                        row[f"{name}_over_hardware_{quantity.split('_')[0]}"] = (
                            mine / theirs if mine is not None and theirs else None  # type: ignore[operator]
                        )
                # among the same evaluated candidates, on validation: what pricing the hardware alone changes
                val_level = max(r.static_val_accuracy for r, _ in everything) - below
                by_macs = cheapest(everything, val_level, lambda r: r.val.accuracy, "macs")
                by_energy = cheapest(everything, val_level, lambda r: r.val.accuracy, "energy_pj")
                row["same_candidates_energy_ratio"] = (
                    by_macs[1]["energy_pj"] / by_energy[1]["energy_pj"] if by_macs and by_energy else None
                )
                rows.append(row)
    return pd.DataFrame(rows)


def kendall(runs: Path, quick: bool, accelerators: list[str], times: dict[str, float]) -> pd.DataFrame:
    rows = []
    for method, workload in MACS_METHODS.items():
        run = ensure_run(runs, workload, quick, None, times)
        if run is None:
            continue
        pricer = Pricer(run)
        for accelerator in accelerators:
            priced = pricer.evaluated(accelerator)
            macs = [e["macs"] for _, e in priced]
            energy = [e["energy_pj"] for _, e in priced]
            tau, p_value = kendalltau(macs, energy)
            rows.append(
                {
                    "method": method,
                    "accelerator": accelerator,
                    "candidates": len(priced),
                    "kendall_tau": float(tau),
                    "p_value": float(p_value),
                }
            )
    return pd.DataFrame(rows)


def zniber_edp(runs: Path, quick: bool, times: dict[str, float]) -> pd.DataFrame:
    """Early exit against static on edge_tpu_x4, by EDP: the returned networks of both searches, test figures
    (the static ones are early-exit networks with their exits off, so the early-exit side may deploy them)."""
    run = ensure_run(runs, ZNIBER, quick, None, times)
    if run is None:
        return pd.DataFrame()
    with RunStore.of_run(run) as store:
        early = [record.result for record in store.finals().values()]
    with RunStore.of_run(run / BASELINE_FOLDER) as store:
        static = [record.result for record in store.finals().values()]

    def edp(result: CandidateResult) -> float:
        return result.edp(result.expected_test or result.expected_val)

    best = test_accuracy(max(static, key=lambda r: (r.val.accuracy, -edp(r))))
    rows = []
    for label, below in LEVELS:
        level = best - below
        reach_static = [r for r in static if test_accuracy(r) >= level - 1e-12]
        reach_early = [r for r in early if test_accuracy(r) >= level - 1e-12] + reach_static
        s = min(reach_static, key=edp, default=None)
        e = min(reach_early, key=edp, default=None)
        rows.append(
            {
                "level": label,
                "accuracy_at_least": level,
                "static_key": s.spec.key() if s else None,
                "static_edp_j_s": edp(s) if s else None,
                "static_accuracy": test_accuracy(s) if s else None,
                "static_cores": cores_used(s) if s else None,
                "early_exit_key": e.spec.key() if e else None,
                "early_exit_edp_j_s": edp(e) if e else None,
                "early_exit_accuracy": test_accuracy(e) if e else None,
                "early_exit_cores": cores_used(e) if e else None,
                "early_share": early_share(e) if e else None,
                "edp_ratio": edp(e) / edp(s) if s and e else None,
                "edp_reduction_pct": 100 * (1 - edp(e) / edp(s)) if s and e else None,
            }
        )
    return pd.DataFrame(rows)


def markdown(frame: pd.DataFrame, columns: dict[str, str], formats: dict[str, str] | None = None) -> str:
    """`frame`'s `columns` (name -> heading) as a Markdown table, numbers formatted by `formats` (name -> spec)."""
    formats = formats or {}
    lines = ["| " + " | ".join(columns.values()) + " |", "|" + "---|" * len(columns)]
    for _, row in frame.iterrows():
        cells = []
        for name in columns:
            value = row[name]
            missing = value is None or (isinstance(value, float) and value != value)
            cells.append("-" if missing else format(value, formats.get(name, "")))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(zniber: pd.DataFrame, comparison: pd.DataFrame, tau: pd.DataFrame, times: pd.DataFrame) -> str:
    """The tables of docs/prior-art.md, in Markdown."""
    parts = ["### Zniber et al.'s headline on edge_tpu_x4 (`zniber_edp.csv`)", ""]
    if len(zniber):
        parts.append(
            markdown(
                zniber,
                {
                    "level": "level",
                    "accuracy_at_least": "test accuracy >=",
                    "static_edp_j_s": "static EDP [J*s]",
                    "static_cores": "static cores",
                    "early_exit_edp_j_s": "early-exit EDP [J*s]",
                    "early_exit_cores": "early-exit cores",
                    "early_share": "inputs out early",
                    "edp_ratio": "EDP ratio",
                    "edp_reduction_pct": "EDP reduction %",
                },
                {
                    "accuracy_at_least": ".4f",
                    "static_edp_j_s": ".3e",
                    "early_exit_edp_j_s": ".3e",
                    "early_share": ".2f",
                    "edp_ratio": ".3f",
                    "edp_reduction_pct": ".1f",
                },
            )
        )
    parts += ["", "### MACs fronts against hardware-objective fronts (`macs_vs_hardware.csv`)", ""]
    if len(comparison):
        parts.append(
            markdown(
                comparison,
                {
                    "method": "method",
                    "accelerator": "accelerator",
                    "level": "level",
                    "macs_front_best_over_hardware_energy": "energy, MACs front / hardware front",
                    "macs_front_best_over_hardware_latency": "latency",
                    "macs_front_best_over_hardware_edp": "EDP",
                    "macs_pick_over_hardware_energy": "energy, lowest-MACs pick / hardware front",
                    "same_candidates_energy_ratio": "energy, lowest-MACs / lowest-energy among the same candidates",
                },
                {
                    k: ".3f"
                    for k in (
                        "macs_front_best_over_hardware_energy",
                        "macs_front_best_over_hardware_latency",
                        "macs_front_best_over_hardware_edp",
                        "macs_pick_over_hardware_energy",
                        "same_candidates_energy_ratio",
                    )
                },
            )
        )
    parts += ["", "### Kendall tau, expected MACs against expected energy (`kendall_tau.csv`)", ""]
    if len(tau):
        wide = tau.pivot(index="accelerator", columns="method", values="kendall_tau").reset_index()
        counts = tau.groupby("method")["candidates"].first().to_dict()
        parts.append(
            markdown(
                wide,
                {
                    "accelerator": "accelerator",
                    **{m: f"{m} ({counts[m]} candidates)" for m in wide.columns if m != "accelerator"},
                },
                {m: ".3f" for m in wide.columns if m != "accelerator"},
            )
        )
    parts += ["", "### Wall time on 2 cores (`study_times.csv`)", ""]
    if len(times):
        parts.append(
            markdown(
                times.assign(minutes=times["wall_time_s"] / 60),
                {"run": "run", "minutes": "minutes"},
                {"minutes": ".1f"},
            )
        )
    return "\n".join(parts) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("studies"), help="folder of the study runs")
    parser.add_argument("--out", type=Path, default=Path("docs/prior-art"), help="folder for the tables")
    parser.add_argument(
        "--quick", action="store_true", help="the workloads' quick budgets (a few minutes each)"
    )
    parser.add_argument(
        "--accelerators",
        nargs="*",
        default=library_accelerators(),
        help="accelerators the MACs fronts are costed on (default: the whole library)",
    )
    parser.add_argument(
        "--hardware-search",
        nargs="*",
        default=list(DEFAULT_HARDWARE_SEARCHES),
        help="accelerators a hardware-objective search runs on for each MACs method",
    )
    parser.add_argument(
        "--existing-only",
        action="store_true",
        help="start no run: tables from the finished runs in --runs (the others are left out)",
    )
    args = parser.parse_args()
    global EXISTING_ONLY
    EXISTING_ONLY = args.existing_only
    args.runs.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    times_path = args.runs / "study_times.json"
    times: dict[str, float] = json.loads(times_path.read_text()) if times_path.is_file() else {}
    try:
        zniber = zniber_edp(args.runs, args.quick, times)
        hardware = tuple(args.hardware_search)
        comparison = macs_vs_hardware(args.runs, args.quick, args.accelerators, hardware, times)
        tau = kendall(args.runs, args.quick, args.accelerators, times)
    finally:
        atomic_write_text(times_path, json.dumps(times, indent=1))
    tables = {
        "zniber_edp.csv": zniber,
        "macs_vs_hardware.csv": comparison,
        "kendall_tau.csv": tau,
        "study_times.csv": pd.DataFrame([{"run": k, "wall_time_s": v} for k, v in sorted(times.items())]),
    }
    for name, table in tables.items():
        atomic_write_text(args.out / name, table.to_csv(index=False))
        print(f"\n{name}\n{table.to_string(index=False, max_colwidth=40)}")
    atomic_write_text(args.out / "summary.md", summary(zniber, comparison, tau, tables["study_times.csv"]))
    print(f"\nwrote {args.out}: {', '.join(tables)}, summary.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
