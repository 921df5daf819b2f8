"""In-memory-computing accelerators through ZigZag's own in-memory-compute path.

ZigZag costs an IMC array (`operational_array.is_imc: true`, e.g. its `aimc.yaml` and `dimc.yaml`) with its
IMC cost model, with mixed spatial mappings, and with its inter-layer data-locality stages, which decide
per layer which memory levels its operands need from the whole network's graph (what
`get_hardware_performance_zigzag(..., in_memory_compute=True)` runs on an ONNX file).

We run the same stages in two steps. The data-locality search runs on the whole graph, built exactly as
ZigZag's ONNX parser builds it (every node, uncosted ones as dummies, so residual Adds, concatenations and
branches keep all their parents): it gives each layer its memory levels (`ImcPlacement`). The rest runs per
layer: a layer's cost depends only on its geometry and its placement, so it is cached and reused across
networks like any digital layer cost, and repeated layers are costed once.

codesign's additions to the digital cost model do not apply here and are not used: precision-aware MAC
energy (the IMC model prices bit precision through its own bit-serial input and ADC model), precision-
scalable throughput, and residency (ZigZag's data-locality stages decide it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from codesign.cost.cache import cost_key
from codesign.cost.layer_specs import SOURCE_BOTH_CONSTANT, SOURCE_BOTH_FROM_LAYERS, DataflowNode, LayerSpec
from codesign.cost.records import LayerCost
from codesign.cost.settings import CostOptions
from codesign.errors import CodesignError
from codesign.hardware.target import HardwareTarget

MODEL_IMC = "zigzag in-memory compute (its IMC cost model and inter-layer data locality)"


def is_imc(target: HardwareTarget) -> bool:
    return bool(target.accelerator_data["operational_array"].get("is_imc"))


def dataflow_of(layers: list[LayerSpec], dataflow: tuple[DataflowNode, ...]) -> tuple[DataflowNode, ...]:
    """The part of the network's graph these layers need: the layers themselves and the uncosted nodes
    upstream of them (a switched-off exit head and what feeds only it are left out, as if never exported).
    Without a graph (layers built by hand), the layers linked along `inputs_from`."""
    if not dataflow:
        ids = {layer.name: index for index, layer in enumerate(layers)}
        return tuple(
            DataflowNode(
                index,
                layer.name,
                layer.op_type,
                layer.segment,
                True,
                tuple(ids[name] for name in layer.inputs_from if name in ids),
            )
            for index, layer in enumerate(layers)
        )
    wanted = {layer.position for layer in layers}
    by_position = {node.position: node for node in dataflow}
    needed: set[int] = set()
    stack = [position for position in wanted if position in by_position]
    while stack:
        position = stack.pop()
        if position in needed:
            continue
        needed.add(position)
        stack.extend(by_position[position].predecessors)
    return tuple(
        node
        for node in dataflow
        if node.position in needed and (not node.is_layer or node.position in wanted)
    )


def layer_positions(layers: list[LayerSpec], dataflow: tuple[DataflowNode, ...]) -> list[int]:
    """Each layer's node id in the workload `dataflow_of` builds."""
    if dataflow and all(layer.position >= 0 for layer in layers):
        return [layer.position for layer in layers]
    return list(range(len(layers)))


def workload_dicts(
    layers: list[LayerSpec], nodes: tuple[DataflowNode, ...]
) -> list[dict[str, Any] | DataflowNode]:
    """The graph in ZigZag's terms, in graph order: a layer dict (its operands sourced the way ZigZag's ONNX
    parser sources them) for each compute layer, the node itself for each node ZigZag does not cost."""
    by_position = dict(zip(layer_positions(layers, nodes), layers, strict=True))
    workload: list[dict[str, Any] | DataflowNode] = []
    for node in nodes:
        if not node.is_layer:
            workload.append(node)
            continue
        layer = by_position[node.position]
        data = layer.zigzag_dict(layer_id=node.position)
        parents = node.predecessors
        if layer.operand_source == SOURCE_BOTH_CONSTANT or not parents:
            source = {"W": node.position, "I": node.position}
        elif layer.operand_source == SOURCE_BOTH_FROM_LAYERS and len(parents) > 1:
            source = {"W": parents[1], "I": parents[0]}
        else:
            source = {"W": node.position, "I": parents[0]}
        data["operand_source"] = source
        workload.append(data)
    return workload


@dataclass(frozen=True)
class ImcPlacement:
    """The memory levels ZigZag's inter-layer data-locality search leaves one layer (its
    `mem_update_list` entry and the network-wide weight level): with the layer's geometry, all its
    IMC cost depends on, so it is the rest of the layer's cache key."""

    act_level: int
    output_level: int
    weight_level: int


def imc_placements(
    layers: list[LayerSpec], target: HardwareTarget, dataflow: tuple[DataflowNode, ...] = ()
) -> list[ImcPlacement]:
    """ZigZag's `SearchInterLayerDataLocalityStage` on the network's graph: each layer's memory levels,
    in `layers`' order. Raises `ImcNodeFailure` naming what ZigZag could not place."""
    from codesign.cost.zigzag import accelerator_of

    nodes = dataflow_of(layers, dataflow)
    positions = layer_positions(layers, nodes)
    try:
        workload = zigzag_workload(layers, nodes, target.mapping_data)
        _check_linked(workload, layers, nodes)
        search = _locality_search(workload, accelerator_of(target))
    except ImcGraphError:
        raise
    except Exception as exc:
        raise ImcNodeFailure(_unplaced(layers, nodes, exc), exc) from exc
    placements = []
    for position in positions:
        node = workload.node_id_to_obj[position]
        links = node.memory_operand_links
        levels = search.mem_update_list[position]
        placements.append(
            ImcPlacement(
                levels[links.layer_to_mem_op(node.get_act_layer_op())],
                levels[links.layer_to_mem_op(node.output_operand)],
                search.mem_update_weight,
            )
        )
    return placements


def _check_linked(workload: Any, layers: list[LayerSpec], nodes: tuple[DataflowNode, ...]) -> None:
    """Every layer whose output feeds a later layer in the network must do so in ZigZag's graph too (its
    data-locality search follows each output to the next layer)."""
    positions = layer_positions(layers, nodes)
    names = dict(zip(positions, (layer.name for layer in layers), strict=True))
    successors: dict[int, list[int]] = {}
    for node in nodes:
        for parent in node.predecessors:
            successors.setdefault(parent, []).append(node.position)
    kind = {node.position: node.is_layer for node in nodes}
    reaches_layer: dict[int, bool] = {}
    for node in reversed(nodes):  # graph order is topological: successors come first in reverse
        reaches_layer[node.position] = any(
            kind[child] or reaches_layer[child] for child in successors.get(node.position, [])
        )
    graph = workload.get_copy_no_dummy()
    for layer in graph.node_list:
        if graph.out_degree(layer) == 0 and reaches_layer[layer.id]:
            raise ImcGraphError(
                f"node {names.get(layer.id, layer.name)}: expected its output to reach the later layers it feeds "
                "in ZigZag's graph, which in-memory computing needs (ZigZag links only the first two inputs "
                "of a node such as a three-way Concat)"
            )


def _locality_search(workload: Any, accelerator: Any) -> Any:
    """ZigZag's data-locality search stage, run for its decisions only (no stages below it), with every layer
    that reads the network input taken as a first layer and every layer that feeds no other as a final one
    (see `_update_top_mem_level`): ZigZag's own fails on an early-exit graph, which has an output per exit."""
    from zigzag.stages.exploit_data_locality_stages import SearchInterLayerDataLocalityStage
    from zigzag.stages.stage import Stage

    class _Leaf(Stage):  # the stage checks for a callable below it; nothing below it runs
        def is_leaf(self) -> bool:
            return True

        def run(self):  # type: ignore[override]
            yield from ()

    class _EveryExitFinal(SearchInterLayerDataLocalityStage):
        update_top_mem_level = _update_top_mem_level

    search = _EveryExitFinal([_Leaf], accelerator=accelerator, workload=workload)
    search.update_top_mem_level()
    return search


def _update_top_mem_level(self: Any) -> None:
    """`SearchInterLayerDataLocalityStage.update_top_mem_level` of ZigZag 3.9 (MIT licence), unchanged but for
    `is_first_layer` and `is_final_layer`: a layer without predecessors (it reads the network input) or without
    successors (an exit's last layer), where ZigZag takes the first and last in topological order only. On a
    graph with one input layer and one output layer the two are the same."""
    graph = self.workload_no_dummy
    for layer in list(graph.topological_sort()):
        is_first_layer = graph.in_degree(layer) == 0
        is_final_layer = graph.out_degree(layer) == 0
        links = layer.memory_operand_links
        act_mem_op = links.layer_to_mem_op(layer.get_act_layer_op())
        weight_mem_op = links.layer_to_mem_op(layer.get_weight_layer_op())
        output_mem_op = links.layer_to_mem_op(layer.output_operand)
        is_branch_starting_node = graph.out_degree(layer) > 1
        is_branch_final_node = (
            graph.out_degree(layer) == 1 and graph.in_degree(next(graph.successors(layer))) > 1
        )
        if not is_first_layer:
            prev_layer = next(graph.predecessors(layer))
            prev_output_mem_op = prev_layer.memory_operand_links.layer_to_mem_op(prev_layer.output_operand)
            self.update_io_mem_level(
                layer.id, act_mem_op, self.mem_update_list[prev_layer.id][prev_output_mem_op]
            )
        if is_branch_starting_node or is_branch_final_node:
            if is_first_layer:
                self.update_io_mem_level(layer.id, act_mem_op, self.top_mem_level_act)
            self.update_io_mem_level(layer.id, output_mem_op, self.top_mem_level_output)
            continue
        for curr_mem_level, mem in reversed(list(enumerate(self.core_mem_level_list))):
            served_operands = list(mem.mem_level_of_operands.keys())
            avail_mem_size = mem.memory_instance.size * mem.unroll_count
            if not is_final_layer:
                next_layer = next(graph.successors(layer))
                next_act_mem_op = next_layer.memory_operand_links.layer_to_mem_op(
                    next_layer.get_act_layer_op()
                )
                mem_serve_act_in_next_layer = next_act_mem_op in served_operands
            else:
                mem_serve_act_in_next_layer = act_mem_op in served_operands
            mem_serve_io_both = mem_serve_act_in_next_layer and (output_mem_op in served_operands)
            mem_serve_weight = weight_mem_op in served_operands
            if (
                len(layer.constant_operands) == 0 and mem_serve_io_both
            ):  # an adder: both inputs are activations
                served_operands = [output_mem_op, act_mem_op]
            if not (mem_serve_io_both or mem_serve_weight):
                continue
            required_io_data_size = sum(
                self.each_layer_io_data_size[layer.id][0][operand]
                for operand in served_operands
                if operand != weight_mem_op
            )
            required_weight_size = self.weight_size_entire_workload if weight_mem_op in served_operands else 0
            if required_io_data_size + required_weight_size <= avail_mem_size:
                if mem_serve_io_both:
                    if is_first_layer:
                        self.update_io_mem_level(layer.id, act_mem_op, curr_mem_level)
                    self.update_io_mem_level(layer.id, output_mem_op, curr_mem_level)
                mem_serve_all_oa_dims = self.check_if_mem_serve_all_oa_dims(mem, self.accelerator)
                if curr_mem_level < self.mem_update_weight and mem_serve_all_oa_dims and mem_serve_weight:
                    self.mem_update_weight = curr_mem_level
    for levels in self.mem_update_list.values():
        if any(level < 0 for level in levels.values()):
            raise ValueError("There are still layers with top mem levels not figured out.")


def _unplaced(layers: list[LayerSpec], nodes: tuple[DataflowNode, ...], exc: Exception) -> str:
    """Where ZigZag's data-locality search stopped, as far as its traceback tells (else the whole graph)."""
    names = {
        position: layer.name for position, layer in zip(layer_positions(layers, nodes), layers, strict=True)
    }
    traceback = exc.__traceback__
    while traceback is not None:
        layer = traceback.tb_frame.f_locals.get("layer")
        position = getattr(layer, "id", None)
        if position in names:
            return f"node {names[position]} (its inputs, outputs or branches)"
        traceback = traceback.tb_next
    return "this network's graph"


def imc_layer_key(
    layer: LayerSpec, placement: ImcPlacement, target: HardwareTarget, options: CostOptions
) -> str:
    return cost_key(
        {"layer": layer.geometry_key(), "imc_levels": list(asdict(placement).values())}, target, options
    )


def imc_layer_cost(
    layer: LayerSpec, placement: ImcPlacement, target: HardwareTarget, options: CostOptions
) -> LayerCost:
    """One layer through the rest of ZigZag's IMC pipeline (`ExploitInterLayerDataLocalityStage`, then
    mixed spatial mappings, LOMA and the IMC cost model), at the memory levels `placement` gives it."""
    from zigzag.parser.workload_factory import LayerNodeFactory
    from zigzag.stages.exploit_data_locality_stages import ExploitInterLayerDataLocalityStage
    from zigzag.stages.main import MainStage

    from codesign.cost.zigzag import layer_cost_of, mapping_settings, mapping_stages

    node = LayerNodeFactory(layer.zigzag_dict(), target.mapping_data).create()
    links = node.memory_operand_links
    levels = {
        links.layer_to_mem_op(node.get_act_layer_op()): placement.act_level,
        links.layer_to_mem_op(node.output_operand): placement.output_level,
    }
    main = MainStage(
        [ExploitInterLayerDataLocalityStage, *mapping_stages(options.opt)],
        layer=node,
        mem_update_list={node.id: levels},
        mem_update_weight=placement.weight_level,
        enable_mix_spatial_mapping_generation=True,
        **mapping_settings(target, options),
    )
    return layer_cost_of(main.run()[0][0])


def zigzag_workload(layers: list[LayerSpec], nodes: tuple[DataflowNode, ...], mapping_data: Any) -> Any:
    """ZigZag's own ONNX workload graph: layer nodes and dummy nodes linked as its ONNX parser links them
    (a dummy keeps its first two inputs, as ZigZag's `DummyNode` does)."""
    from zigzag.parser.workload_factory import LayerNodeFactory
    from zigzag.workload.dummy_node import DummyNode
    from zigzag.workload.onnx_workload import ONNXWorkload

    workload = ONNXWorkload()
    for item in workload_dicts(layers, nodes):
        if isinstance(item, DataflowNode):
            node = DummyNode(item.position, list(item.predecessors), item.op_type.lower(), item.name)
            workload.add(item.position, node)
        else:
            workload.add(item["id"], LayerNodeFactory(item, mapping_data).create())
    return workload


class ImcGraphError(CodesignError):
    """The network's graph is one ZigZag's IMC path cannot follow (the model file is named by the caller)."""


class ImcNodeFailure(Exception):
    """ZigZag's IMC path failed; `where` names what it failed on."""

    def __init__(self, where: str, cause: Exception):
        super().__init__(str(cause))
        self.where = where
        self.cause = cause
