"""The `space:` section of a workload: backbone stages, exit branches, policies, thresholds, resolution."""

from __future__ import annotations

from typing import Any

from codesign.config.fields import int_list, known_keys, section, str_list
from codesign.errors import input_error
from codesign.exits import DEFAULT_DROP_REFERENCE, DEFAULT_POLICY, DROP_REFERENCES, POLICIES
from codesign.network.blocks import BLOCKS
from codesign.space import BranchChoices, SearchSpace, StageChoices
from codesign.spec import ExitBranch

SPACE_KEYS = {
    "stages",
    "thresholds",  # refused with what replaced it (`_exit_fractions`)
    "exit_fractions",
    "threshold_tuning",
    "exit_branches",
    "final_head",
    "policies",
    "resolution",
    "early_exits",
}
STAGE_KEYS = {"depth", "width", "kernel", "stride", "weight_bits", "act_bits", "block", "expansion"}
BIT_WIDTHS = (2, 3, 4, 5, 6, 7, 8)


def parse_space(
    source: str, data: dict[str, Any], hardware: tuple[tuple[str, tuple[Any, ...]], ...]
) -> SearchSpace:
    """The search space; `hardware` holds the accelerator fields the workload searches (its `hardware:` section)."""
    space_data = section(source, data, "space")
    known_keys(source, "space.", space_data, SPACE_KEYS)
    stages = _stages(source, space_data.get("stages"))
    fractions = _exit_fractions(source, space_data)
    branches = _exit_branches(source, space_data.get("exit_branches", {}) or {})
    final_branch = _final_head(source, space_data.get("final_head", {}) or {})
    early_exits = space_data.get("early_exits", True)
    if not isinstance(early_exits, bool):
        raise input_error(source, "space.early_exits", "true or false", early_exits)
    policies = str_list(source, "space.policies", space_data.get("policies", DEFAULT_POLICY), POLICIES.names)
    resolutions: tuple[int, ...] = ()
    if "resolution" in space_data:
        resolutions = int_list(source, "space.resolution", space_data["resolution"])
    tune, drops, tuning_confidence, reference = _threshold_tuning(source, space_data.get("threshold_tuning"))
    return SearchSpace(
        stages=stages,
        exit_fractions=fractions,
        hardware=hardware,
        branches=branches,
        final_branch=final_branch,
        policies=policies,
        resolutions=resolutions,
        tune_thresholds=tune,
        accuracy_drops=drops,
        tuning_confidence=tuning_confidence,
        drop_reference=reference,
        early_exits=early_exits,
    )


def _stages(source: str, stages_data: Any) -> tuple[StageChoices, ...]:
    if not isinstance(stages_data, list) or len(stages_data) < 2:
        raise input_error(source, "space.stages", "a list of at least 2 stage entries", stages_data)
    stages = []
    for i, stage in enumerate(stages_data):
        where = f"space.stages[{i}]"
        if not isinstance(stage, dict):
            raise input_error(source, where, "a mapping with depth, width, kernel, stride", stage)
        known_keys(source, f"{where}.", stage, STAGE_KEYS)
        for key in ("depth", "width"):
            if key not in stage:
                raise input_error(source, f"{where}.{key}", "a positive integer or a list of them")
        stride = stage.get("stride", 1)
        if not isinstance(stride, int) or stride not in (1, 2):
            raise input_error(source, f"{where}.stride", "1 or 2", stride)
        stages.append(
            StageChoices(
                depth=int_list(source, f"{where}.depth", stage["depth"]),
                width=int_list(source, f"{where}.width", stage["width"]),
                kernel=int_list(source, f"{where}.kernel", stage.get("kernel", 3), (1, 3, 5, 7)),
                stride=stride,
                weight_bits=int_list(source, f"{where}.weight_bits", stage.get("weight_bits", 8), BIT_WIDTHS),
                act_bits=int_list(source, f"{where}.act_bits", stage.get("act_bits", 8), BIT_WIDTHS),
                block=str_list(source, f"{where}.block", stage.get("block", "conv"), BLOCKS.names),
                expansion=int_list(source, f"{where}.expansion", stage.get("expansion", 1)),
            )
        )
    return tuple(stages)


def _exit_fractions(source: str, space_data: dict[str, Any]) -> tuple[float, ...]:
    if "thresholds" in space_data:
        raise input_error(
            source,
            "space.thresholds",
            "space.exit_fractions instead (target shares of the inputs reaching each exit that leave there, "
            "e.g. [0.1, 0.25, 0.5, 0.75, 0.9]; a confidence threshold above every confidence switched exits off)",
            space_data["thresholds"],
        )
    fractions = space_data.get("exit_fractions", [0.1, 0.25, 0.5, 0.75, 0.9])
    if (
        not isinstance(fractions, list)
        or not fractions
        or not all(
            isinstance(f, (int, float)) and not isinstance(f, bool) and 0.0 < f <= 1.0 for f in fractions
        )
    ):
        raise input_error(source, "space.exit_fractions", "a non-empty list of numbers in (0, 1]", fractions)
    return tuple(float(f) for f in fractions)


def _exit_branches(source: str, branch_data: Any) -> BranchChoices:
    if not isinstance(branch_data, dict):
        raise input_error(
            source, "space.exit_branches", "a mapping with convs, channels, kernel, pool, stride", branch_data
        )
    known_keys(
        source,
        "space.exit_branches.",
        branch_data,
        {"convs", "channels", "kernel", "pool", "stride", "weight_bits", "act_bits"},
    )
    return BranchChoices(
        convs=int_list(
            source, "space.exit_branches.convs", branch_data.get("convs", 0), (0, 1, 2, 3), minimum=0
        ),
        channels=int_list(source, "space.exit_branches.channels", branch_data.get("channels", 16)),
        kernel=int_list(source, "space.exit_branches.kernel", branch_data.get("kernel", 3), (1, 3, 5)),
        pool=int_list(source, "space.exit_branches.pool", branch_data.get("pool", 2), (1, 2, 3, 4)),
        stride=int_list(source, "space.exit_branches.stride", branch_data.get("stride", 1), (1, 2)),
        weight_bits=_head_bits(source, "weight_bits", branch_data),
        act_bits=_head_bits(source, "act_bits", branch_data),
    )


def _head_bits(source: str, name: str, branch_data: dict[str, Any]) -> tuple[int, ...]:
    """The exit heads' own bit widths (searched when several); absent: each head takes its stage's."""
    if name not in branch_data:
        return ()
    return int_list(source, f"space.exit_branches.{name}", branch_data[name], BIT_WIDTHS)


def _final_head(source: str, final_data: Any) -> ExitBranch:
    if not isinstance(final_data, dict):
        raise input_error(
            source, "space.final_head", "a mapping with convs, channels, kernel, pool", final_data
        )
    known_keys(source, "space.final_head.", final_data, {"convs", "channels", "kernel", "pool"})
    try:
        return ExitBranch(**{k: int(v) for k, v in final_data.items()})
    except (TypeError, ValueError):
        raise input_error(
            source, "space.final_head", "integers for convs, channels, kernel, pool", final_data
        ) from None


def _threshold_tuning(source: str, tuning: Any) -> tuple[bool, tuple[float, ...], float, str]:
    """(tune thresholds per candidate, accuracy drops to choose from, one-sided confidence, what the drop
    is measured against)."""
    if tuning is None:
        return False, (0.01,), 0.0, DEFAULT_DROP_REFERENCE
    raw = tuning.get("max_accuracy_drop", 0.01) if isinstance(tuning, dict) else None
    raw_list = raw if isinstance(raw, list) else [raw]
    if (
        not isinstance(tuning, dict)
        or set(tuning) - {"max_accuracy_drop", "confidence", "reference"}
        or not raw_list
        or not all(isinstance(v, int | float) and not isinstance(v, bool) and -0.1 <= v < 1 for v in raw_list)
    ):
        raise input_error(
            source,
            "space.threshold_tuning",
            "a mapping {max_accuracy_drop: <fraction, e.g. 0.01, or a list of them to search>, "
            "confidence: <optional, in [0, 1)>, reference: <optional, final or best>}",
            tuning,
        )
    confidence = tuning.get("confidence", 0.0)
    if isinstance(confidence, bool) or not isinstance(confidence, int | float) or not (0 <= confidence < 1):
        raise input_error(
            source, "space.threshold_tuning.confidence", "a number in [0, 1), e.g. 0.9", confidence
        )
    reference = tuning.get("reference", DEFAULT_DROP_REFERENCE)
    if reference not in DROP_REFERENCES:
        raise input_error(
            source, "space.threshold_tuning.reference", f"one of {', '.join(DROP_REFERENCES)}", reference
        )
    return True, tuple(float(v) for v in raw_list), float(confidence), reference
