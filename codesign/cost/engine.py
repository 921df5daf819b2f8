"""Layer list -> per-layer costs: cache first, ZigZag for the misses (in parallel worker processes)."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from codesign.cost.cache import LayerCostCache, layer_cost_key
from codesign.cost.imc import (
    ImcNodeFailure,
    ImcPlacement,
    imc_layer_cost,
    imc_layer_key,
    imc_placements,
    is_imc,
)
from codesign.cost.layer_specs import SOURCE_INPUT_FROM_LAYER, DataflowNode, LayerSpec, conv_layer, gemm_layer
from codesign.cost.records import LayerCost
from codesign.cost.settings import CostOptions
from codesign.cost.zigzag import zigzag_layer_cost
from codesign.errors import CodesignError
from codesign.hardware.target import HardwareTarget


@dataclass
class CostEngineStats:
    cache_hits: int = 0
    zigzag_calls: int = 0
    zigzag_seconds: float = 0.0

    def add(self, other: CostEngineStats) -> None:
        self.cache_hits += other.cache_hits
        self.zigzag_calls += other.zigzag_calls
        self.zigzag_seconds += other.zigzag_seconds


def _evaluate(job: tuple[LayerSpec, HardwareTarget, CostOptions, ImcPlacement | None]) -> LayerCost:
    """One layer through ZigZag (its IMC path when placed by the data-locality search). A failure there
    comes from the accelerator or mapping it was given (a programming error would fail on every
    accelerator), so it is reported against those files."""
    layer, target, options, placement = job
    try:
        if placement is not None:
            return imc_layer_cost(layer, placement, target, options)
        return zigzag_layer_cost(layer, target, options)
    except Exception as exc:
        loops = dict(zip(layer.loop_dims, layer.loop_sizes, strict=True))
        kind = "an in-memory-computing" if placement is not None else "an"
        raise _zigzag_failure(target, kind, f"layer {layer.name} ({layer.op_type} {loops})", exc) from exc


def _zigzag_failure(target: HardwareTarget, kind: str, what: str, exc: Exception) -> CodesignError:
    """ZigZag's failure, reported against the accelerator and mapping files it was given."""
    detail = str(exc).splitlines()[0][:160] if str(exc) else ""
    return CodesignError(
        f"{target.accelerator_path}: document: expected {kind} accelerator and mapping ({target.mapping_path.name}) "
        f"ZigZag can map {what} onto; ZigZag failed with {type(exc).__name__}: {detail}"
    )


def probe_layers() -> list[LayerSpec]:
    """Two small layers (a 3x3 convolution and a matrix product) that any usable accelerator must map."""
    common = dict(weight_bits=8, act_bits=8, output_bits=8, partial_sum_bits=16, quantized=True)
    conv = conv_layer(
        "probe_conv",
        "stage0",
        batch=1,
        in_channels=8,
        out_channels=8,
        groups=1,
        in_hw=(4, 4),
        out_hw=(4, 4),
        kernel=(3, 3),
        strides=(1, 1),
        dilations=(1, 1),
        pads=(1, 1, 1, 1),
        operand_source=SOURCE_INPUT_FROM_LAYER,
        **common,
    )
    gemm = gemm_layer(
        "probe_gemm",
        "head0",
        input_shape=(1, 32),
        out_features=10,
        weights_constant=True,
        operand_source=SOURCE_INPUT_FROM_LAYER,
        **common,
    )
    return [conv, gemm]


class CostEngine:
    """Costs layers with fixed ZigZag options, on `target` or on any accelerator passed per call.

    `jobs` > 1 evaluates cache misses in that many worker processes (spawned, so PyTorch's
    threads in the parent are never forked).
    """

    def __init__(
        self,
        target: HardwareTarget,
        options: CostOptions | None = None,
        cache: LayerCostCache | None = None,
        jobs: int = 1,
        progress: Callable[[int, int], None] | None = None,
    ):
        self.target = target
        self.progress = progress  # called with (layers done, layers to do) while ZigZag works
        self.options = options or CostOptions()
        self.cache = cache
        self.jobs = max(1, jobs)
        self.stats = CostEngineStats()
        self._memory: dict[str, LayerCost] = {}
        self._pool: ProcessPoolExecutor | None = None

    def layer_costs(
        self,
        layers: list[LayerSpec],
        target: HardwareTarget | None = None,
        placements: list[ImcPlacement] | None = None,
    ) -> list[LayerCost]:
        """Each layer's cost on `target` (default: the engine's); `placements`: the IMC memory levels of each
        layer (`imc_layer_costs` makes them), None for a digital accelerator."""
        target = target or self.target
        if placements is None:
            keys = [layer_cost_key(layer, target, self.options) for layer in layers]
            placed: list[ImcPlacement | None] = [None] * len(layers)
        else:
            keys = [
                imc_layer_key(*pair, target, self.options) for pair in zip(layers, placements, strict=True)
            ]
            placed = list(placements)
        missing = [k for k in dict.fromkeys(keys) if k not in self._memory]
        if missing and self.cache is not None:
            self._memory.update(self.cache.get_many(missing))
        by_key = {key: (layer, place) for key, layer, place in zip(keys, layers, placed, strict=True)}
        todo = [k for k in missing if k not in self._memory]
        self.stats.cache_hits += len(keys) - len(todo)
        if todo:
            start = time.perf_counter()
            jobs = [(by_key[k][0], target, self.options, by_key[k][1]) for k in todo]
            evaluated = (
                self._executor().map(_evaluate, jobs)
                if self.jobs > 1 and len(jobs) > 1
                else map(_evaluate, jobs)
            )
            results = []
            for result in evaluated:
                results.append(result)
                if self.progress is not None:
                    self.progress(len(results), len(jobs))
            self.stats.zigzag_seconds += time.perf_counter() - start
            self.stats.zigzag_calls += len(todo)
            self._memory.update(zip(todo, results, strict=True))
            if self.cache is not None:
                self.cache.put_many(
                    (k, by_key[k][0], self.target.name, c) for k, c in zip(todo, results, strict=True)
                )
        return [self._memory[k] for k in keys]

    def imc_layer_costs(
        self,
        layers: list[LayerSpec],
        target: HardwareTarget | None = None,
        dataflow: tuple[DataflowNode, ...] = (),
    ) -> list[LayerCost]:
        """Per-layer costs of a whole network on an in-memory-computing accelerator (see `cost.imc`): ZigZag's
        data-locality search on the network's graph places each layer, then each distinct (layer, placement)
        is costed once, through the cache and the worker processes like a digital layer.
        `dataflow`: the network's graph (`ParsedNetwork.dataflow`); without it, layers link along `inputs_from`."""
        target = target or self.target
        try:
            placements = imc_placements(layers, target, dataflow)
        except ImcNodeFailure as failure:
            raise _zigzag_failure(target, "an in-memory-computing", failure.where, failure.cause) from failure
        return self.layer_costs(layers, target, placements)

    def check_mappable(self, target: HardwareTarget | None = None) -> None:
        """Fail now, with one line naming the accelerator file, if ZigZag cannot map small layers onto it
        (cached like any layer cost, so a warm check is free)."""
        target = target or self.target
        if is_imc(target):
            self.imc_layer_costs(probe_layers(), target)
        else:
            self.layer_costs(probe_layers(), target)

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.jobs, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> CostEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
