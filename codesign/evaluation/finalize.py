"""After the search: each returned network's full quantization-aware fine-tuning (`finalize`), or its test
figures alone (`with_test`), measured again through the same exit-statistics steps."""

from __future__ import annotations

from dataclasses import replace

import torch

from codesign.cost.exits import expected_cost
from codesign.evaluation.evaluator import Evaluator
from codesign.evaluation.result import CandidateResult
from codesign.evaluation.statistics import cached_exits, calibrated_exits, exit_statistics, oracle_fields
from codesign.evaluation.weights import early_heads
from codesign.exits import LEARNED
from codesign.network.finetune import calibrate, finetune


def finalize(evaluator: Evaluator, result: CandidateResult) -> tuple[CandidateResult, torch.nn.Module]:
    """Full quantization-aware fine-tuning of a returned network, re-measured (temperatures refitted,
    thresholds placed or tuned again).

    On a static backbone (`EvaluationSettings.static_backbone`): the network with its exits off is fine-tuned
    exactly as the static search fine-tunes it, then the early exit heads learn on it, frozen, for as many
    steps; so the final exit stays exactly as accurate as the static counterpart's. Otherwise (joint) the
    whole network is fine-tuned with every exit's loss.
    Exit costs do not change (same network); exit fractions, accuracy and expected costs are measured again.
    """
    settings = evaluator.settings
    config = settings.finetune
    result = with_test(evaluator, result)  # the test accuracy it starts from, for the before/after report
    spec = result.spec
    train = evaluator.split("train", spec.resolution)
    steps = int(round(config.final_epochs * max(1, len(train) // config.batch_size)))
    final_config = replace(config, learning_rate=config.final_learning_rate)
    augmentation = settings.augmentation
    if settings.static_backbone and evaluator.supernet_state is not None:
        static = evaluator.model(spec.without_early_exits()).to(evaluator.device)
        seconds = finetune(static, train, steps, final_config, heads_only=False, augmentation=augmentation)
        model = evaluator.model(spec).to(evaluator.device)
        model.load_state_dict(static.state_dict(), strict=False)
        early = early_heads(model)
        if early:
            calibrate(model, train, config.calibration_images, only=early)
            seconds += finetune(
                model, train, steps, final_config, heads_only=True, augmentation=augmentation, trained=early
            )
    else:
        model = evaluator.model(spec).to(evaluator.device)
        seconds = finetune(model, train, steps, final_config, heads_only=False, augmentation=augmentation)
    stages = spec.active_exit_stages  # the candidate model has only its active exits
    learned_train = train if settings.learned_policy else None
    val_cache, temperatures, learned = calibrated_exits(
        model, evaluator.split("val", spec.resolution), learned_train, settings, stages
    )
    test_cache = cached_exits(model, evaluator.split("test", spec.resolution), temperatures, learned, stages)
    positions = tuple(range(len(stages)))
    searched = test_cache.simulate(positions, spec.active_thresholds, spec.policy)
    spec, val, test = exit_statistics(spec, result.exits, val_cache, test_cache, positions, settings)
    final = positions[-1]
    finalized = replace(
        result,
        spec=spec,
        val=val,
        test=test,
        expected_val=expected_cost(list(result.exits), val.fractions),
        expected_test=expected_cost(list(result.exits), test.fractions) if test is not None else None,
        static_val_accuracy=float(val_cache.correct[final].mean()),
        static_test_accuracy=float(test_cache.correct[final].mean()),
        test_accuracy_before_finetune=result.test.accuracy if result.test is not None else None,
        val_accuracy_before_finetune=result.val.accuracy,
        test_accuracy_finetuned_search_thresholds=searched.accuracy,
        learned_policy=learned.to_dict() if learned and spec.policy == LEARNED else None,
        **oracle_fields(test_cache, positions, result.exits, test),
        timings={**result.timings, "final_finetune_s": seconds},
    )
    return finalized, model.cpu()  # exported next, on the CPU


def with_test(evaluator: Evaluator, result: CandidateResult) -> CandidateResult:
    """The result with its test-split figures (evaluated now if the search skipped them)."""
    if result.test is not None:
        return result
    spec = result.spec
    cached = evaluator.test_exits(spec)
    test = cached.simulate(spec.active_exit_stages, spec.active_thresholds, spec.policy)
    return replace(
        result,
        test=test,
        expected_test=expected_cost(list(result.exits), test.fractions),
        static_test_accuracy=float(cached.correct[spec.num_stages - 1].mean()),
        **oracle_fields(cached, spec.active_exit_stages, result.exits, test),
    )
