"""What the evaluation steps are told (`EvaluationSettings`) and what an architecture's first steps leave
for its candidates (`TrainedArchitecture`). Every step imports these; none imports the evaluator."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from codesign.cost.layer_specs import ParsedNetwork
from codesign.cost.settings import CostModelSettings
from codesign.exits import CachedExits, LearnedConfidence
from codesign.network.settings import Augmentation, FinetuneConfig, TrainingConfig
from codesign.spec import CandidateSpec


@dataclass(frozen=True)
class EvaluationSettings:
    """How candidates are trained, fine-tuned, costed and given thresholds.

    `threshold_tuning`: maximum validation accuracy drop against the final exit; thresholds are then
    tuned per candidate for the lowest expected energy (None: from the candidate's exit fractions, or its
    own thresholds), the drop held with one-sided `tuning_confidence` (0: on validation itself).
    `test_during_search`: evaluate every candidate on the test split too (None: only when it is small, as
    digits' 360 images).
    """

    training: TrainingConfig = field(default_factory=TrainingConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    cost_model: CostModelSettings = field(default_factory=CostModelSettings)
    threshold_tuning: float | None = None
    tuning_confidence: float = 0.0
    drop_reference: str = "final"  # what the drop is measured against: "final" or "best" (tune_thresholds)
    test_during_search: bool | None = None
    # Names what produced stored weights (supernet, training and fine-tuning settings): part of their
    # file names, so weights are never read back for other settings ("" for direct use of an Evaluator).
    weights_tag: str = ""
    # Fit the learned exit policy of every network (on training-split logits), so "learned" can be searched.
    learned_policy: bool = False
    learned_policy_images: int = 4096  # training images its model is fitted on
    # Where networks train and run: auto (CUDA when present), cpu, cuda, cuda:N (see `network.device`).
    device: str = "auto"
    augmentation: Augmentation = field(default_factory=Augmentation)  # in every training loop
    # Inherited weights (supernet mode): the backbone and final head are fitted exactly as for the static
    # network, and the early exit heads (if `early_exits`) learn on that frozen network
    # (`training.supernet.exit_training: frozen`); False: every head fine-tuned on the shared backbone (joint).
    static_backbone: bool = False
    early_exits: bool = True
    # One temperature per exit fitted on validation (NLL) before any policy sees its logits; False: none.
    temperature_scaling: bool = True
    # Names what a static network's fitted weights (`Evaluator.static_weights`) depend on besides its shape;
    # "" keeps them in memory only.
    static_weights_tag: str = ""


@dataclass
class TrainedArchitecture:
    """An architecture (every exit head present) after its first steps: weights, exit statistics on
    validation (and test, when the search measures it), ONNX layers."""

    spec: CandidateSpec
    state_dict: dict[str, torch.Tensor]
    val: CachedExits
    test: CachedExits | None  # computed on first use
    network: ParsedNetwork
    train_seconds: float
    learned: LearnedConfidence | None = None  # the learned exit policy's model (when the search uses it)
    temperatures: tuple[float, ...] = ()  # per exit, fitted on validation
