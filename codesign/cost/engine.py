"""Layer list -> per-layer costs: cache first, ZigZag for the misses (in parallel worker processes)."""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from codesign.cost.cache import LayerCostCache, layer_cost_key
from codesign.cost.graph import LayerSpec
from codesign.cost.records import LayerCost
from codesign.cost.settings import CostOptions
from codesign.cost.zigzag import zigzag_layer_cost
from codesign.hardware.target import HardwareTarget


@dataclass
class CostEngineStats:
    cache_hits: int = 0
    zigzag_calls: int = 0
    zigzag_seconds: float = 0.0


def _evaluate(job: tuple[LayerSpec, HardwareTarget, CostOptions]) -> LayerCost:
    return zigzag_layer_cost(*job)


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
    ):
        self.target = target
        self.options = options or CostOptions()
        self.cache = cache
        self.jobs = max(1, jobs)
        self.stats = CostEngineStats()
        self._memory: dict[str, LayerCost] = {}
        self._pool: ProcessPoolExecutor | None = None

    def layer_costs(self, layers: list[LayerSpec], target: HardwareTarget | None = None) -> list[LayerCost]:
        target = target or self.target
        keys = [layer_cost_key(layer, target, self.options) for layer in layers]
        missing = [k for k in dict.fromkeys(keys) if k not in self._memory]
        if missing and self.cache is not None:
            self._memory.update(self.cache.get_many(missing))
        by_key = dict(zip(keys, layers, strict=True))
        todo = [k for k in missing if k not in self._memory]
        self.stats.cache_hits += len(keys) - len(todo)
        if todo:
            start = time.perf_counter()
            jobs = [(by_key[k], target, self.options) for k in todo]
            if self.jobs > 1 and len(jobs) > 1:
                results = list(self._executor().map(_evaluate, jobs))
            else:
                results = [_evaluate(job) for job in jobs]
            self.stats.zigzag_seconds += time.perf_counter() - start
            self.stats.zigzag_calls += len(todo)
            self._memory.update(zip(todo, results, strict=True))
            if self.cache is not None:
                self.cache.put_many(
                    (k, by_key[k], self.target.name, c) for k, c in zip(todo, results, strict=True)
                )
        return [self._memory[k] for k in keys]

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
