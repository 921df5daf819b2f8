"""Per-exit and expected costs of an early-exit network from its per-item costs.

Taking exit k costs every backbone stage up to the one it follows, plus every active exit head
evaluated on the way. On one core everything runs in order (stage 0, head 0, stage 1, head 1, ...).

On a multi-core accelerator an `Allocation` puts each backbone stage and each exit head on a core.
Tasks are list-scheduled in that order: a task starts when its input is there (plus an interconnect
transfer if it was produced on another core) and its core is free. A head on another core runs in
parallel with the continuing backbone. The decision for exit k is known when heads 0..k have finished;
work started before that moment is paid for (pro rata if still running: speculative backbone work
that is abandoned when the input leaves), as are the transfers that fed it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from codesign.cost.records import ExitCost, ExpectedCost, ItemCost
from codesign.hardware.target import Interconnect


@dataclass(frozen=True)
class Allocation:
    """Core index of each backbone stage and of the exit head after each stage."""

    stage_cores: tuple[int, ...]
    head_cores: tuple[int, ...]

    @classmethod
    def single_core(cls, num_stages: int) -> Allocation:
        return cls(tuple(0 for _ in range(num_stages)), tuple(0 for _ in range(num_stages)))

    def core_of(self, segment: str) -> int:
        """The core of a network segment (`stage<i>`, `head<i>`)."""
        kind, index = segment_index(segment)
        return (self.stage_cores if kind == "stage" else self.head_cores)[index]

    def describe(self) -> str:
        return " ".join(
            f"S{i}:c{s}/H{i}:c{h}"
            for i, (s, h) in enumerate(zip(self.stage_cores, self.head_cores, strict=True))
        )


MAC, INTERCONNECT, STATIC, UNSPLIT = "MAC", "interconnect", "static", "memory (not split)"


def segment_index(segment: str) -> tuple[str, int]:
    if segment == "backbone":
        return "stage", 0
    for kind in ("stage", "head"):
        if segment.startswith(kind) and segment[len(kind) :].isdigit():
            return kind, int(segment[len(kind) :])
    raise ValueError(f"unknown segment {segment!r}")


@dataclass
class _Task:
    kind: str
    index: int
    energy: float = 0.0
    latency: float = 0.0
    macs: int = 0
    output_bits: float = 0.0
    core: int = 0
    start: float = 0.0
    finish: float = 0.0
    transfer_energy: float = 0.0
    transfer_cycles: float = 0.0
    parts: dict[str, float] = field(default_factory=dict)  # energy by memory level and "MAC"
    memory: dict[str, float] = field(default_factory=dict)  # memory energy by "level/operand"


def _tasks(items: list[ItemCost], exit_stages: tuple[int, ...]) -> list[_Task]:
    tasks: dict[tuple[str, int], _Task] = {}
    for item in items:
        kind, index = segment_index(item.segment)
        if kind == "head" and index not in exit_stages:
            continue
        task = tasks.setdefault((kind, index), _Task(kind, index))
        task.energy += item.energy_pj
        for part, energy in energy_parts(item).items():
            task.parts[part] = task.parts.get(part, 0.0) + energy
        for entry in item.memory:
            where = f"{entry.level}/{entry.operand}"
            task.memory[where] = task.memory.get(where, 0.0) + entry.read_pj + entry.write_pj
        task.latency += item.latency_cycles
        task.macs += item.macs
        if item.macs > 0:  # a stage hands on the output of its last compute layer
            task.output_bits = float(item.output_elements * item.output_bits)
    order = sorted(tasks.values(), key=lambda t: (t.index, t.kind != "stage"))
    return order


def _scheduled(
    items: list[ItemCost],
    exit_stages: tuple[int, ...],
    allocation: Allocation | None,
    interconnect: Interconnect | None,
) -> list[_Task]:
    """The network's stages and active heads, list-scheduled on their cores (see the module's docstring)."""
    tasks = _tasks(items, exit_stages)
    stage_task: dict[int, _Task] = {}
    core_free: dict[int, float] = {}
    for task in tasks:
        if allocation is not None:
            cores = allocation.stage_cores if task.kind == "stage" else allocation.head_cores
            task.core = cores[task.index]
        producer = stage_task.get(
            task.index if task.kind == "head" else max((s for s in stage_task), default=-1)
        )
        ready = 0.0
        if producer is not None:
            ready = producer.finish
            if producer.core != task.core:
                if interconnect is None:
                    raise ValueError("an allocation over several cores needs the accelerator's interconnect")
                energy, latency = interconnect.transfer(producer.output_bits)
                ready += latency
                task.transfer_cycles = latency
                task.transfer_energy = energy
        task.start = max(ready, core_free.get(task.core, 0.0))
        task.finish = task.start + task.latency
        core_free[task.core] = task.finish
        if task.kind == "stage":
            stage_task[task.index] = task
    return tasks


@dataclass(frozen=True)
class ScheduledTask:
    """One stage or exit head on its core: when it runs (cycles from the input's arrival) and the transfer
    from another core that fed it."""

    segment: str  # stage<i> or head<i>
    core: int
    start_cycles: float
    finish_cycles: float
    transfer_cycles: float  # the interconnect transfer just before it (0: its input was on its core)
    transfer_energy_pj: float
    energy_pj: float


def schedule(
    items: list[ItemCost],
    exit_stages: tuple[int, ...],
    allocation: Allocation | None = None,
    interconnect: Interconnect | None = None,
) -> list[ScheduledTask]:
    """When each stage and active head runs on which core, for an input that goes through every exit."""
    return [
        ScheduledTask(
            f"{task.kind}{task.index}",
            task.core,
            task.start,
            task.finish,
            task.transfer_cycles,
            task.transfer_energy,
            task.energy,
        )
        for task in _scheduled(items, exit_stages, allocation, interconnect)
    ]


def idle_cycles(tasks: list[ScheduledTask]) -> dict[int, float]:
    """Per core: cycles without work between the input's arrival and the last task's end on any core."""
    end = max((task.finish_cycles for task in tasks), default=0.0)
    busy: dict[int, float] = {}
    for task in tasks:
        busy[task.core] = busy.get(task.core, 0.0) + task.finish_cycles - task.start_cycles
    return {core: end - cycles for core, cycles in sorted(busy.items())}


def per_exit_costs(
    items: list[ItemCost],
    exit_stages: tuple[int, ...],
    allocation: Allocation | None = None,
    interconnect: Interconnect | None = None,
    static_pj_per_cycle: float = 0.0,
) -> list[ExitCost]:
    """Cost of reaching and taking each active exit (earliest first, final last). `static_pj_per_cycle`:
    leakage energy of the accelerator per cycle, paid until the exit's decision is known."""
    tasks = _scheduled(items, exit_stages, allocation, interconnect)
    stage_finish = {task.index: task.finish for task in tasks if task.kind == "stage"}
    heads = {t.index: t for t in tasks if t.kind == "head"}
    result = []
    decided = 0.0
    for exit_stage in exit_stages:
        head = heads.get(exit_stage)
        finish = (
            head.finish if head is not None else stage_finish[max(s for s in stage_finish if s <= exit_stage)]
        )
        decided = max(decided, finish)
        energy = 0.0
        transfer = 0.0
        macs = 0
        parts: dict[str, float] = {}
        memory: dict[str, float] = {}
        for task in tasks:
            if task.start > decided or (task.start == decided and task.latency > 0):
                continue
            share = 1.0 if task.latency == 0 else min(1.0, (decided - task.start) / task.latency)
            energy += share * task.energy + task.transfer_energy
            transfer += task.transfer_energy
            macs += round(share * task.macs)
            for part, value in task.parts.items():
                parts[part] = parts.get(part, 0.0) + share * value
            for where, value in task.memory.items():
                memory[where] = memory.get(where, 0.0) + share * value
        if transfer:
            parts[INTERCONNECT] = transfer
        if static_pj_per_cycle:
            parts[STATIC] = static_pj_per_cycle * decided
            energy += parts[STATIC]
        head_energy = head.energy if head is not None else 0.0
        result.append(ExitCost(exit_stage, energy, decided, macs, transfer, parts, head_energy, memory))
    return result


def energy_parts(item: ItemCost) -> dict[str, float]:
    """An item's energy by where it is spent: each memory level, and "MAC" (the array's arithmetic). Items
    without a memory breakdown (from caches written before breakdowns were kept) count as one "unsplit" part."""
    if not item.memory:
        return {MAC: item.mac_energy_pj, UNSPLIT: item.memory_energy_pj}
    parts = {MAC: item.mac_energy_pj}
    for entry in item.memory:
        parts[entry.level] = parts.get(entry.level, 0.0) + entry.read_pj + entry.write_pj
    return parts


def expected_cost(exits: list[ExitCost], fractions: tuple[float, ...]) -> ExpectedCost:
    if len(exits) != len(fractions):
        raise ValueError(f"{len(fractions)} exit fractions for {len(exits)} exits")
    taken = [e.latency_cycles for e, f in zip(exits, fractions, strict=True) if f > 0]
    # an input that goes on past early exit k has paid for head k for nothing
    overhead, left = 0.0, 0.0
    for exit_cost, fraction in zip(exits[:-1], fractions[:-1], strict=True):
        left += fraction
        overhead += (1.0 - left) * exit_cost.head_energy_pj
    return ExpectedCost(
        energy_pj=sum(f * e.energy_pj for f, e in zip(fractions, exits, strict=True)),
        latency_cycles=sum(f * e.latency_cycles for f, e in zip(fractions, exits, strict=True)),
        worst_latency_cycles=max(taken) if taken else exits[-1].latency_cycles,
        macs=sum(f * e.macs for f, e in zip(fractions, exits, strict=True)),
        exit_overhead_pj=max(0.0, overhead),
    )
