"""Step: network and weights. Block types (`BLOCKS`), the quantized early-exit network, the weight-sharing
supernet, training from scratch and fine-tuning; typed settings in `settings` (no PyTorch)."""

from codesign.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "BLOCKS": "blocks",
        "BlockType": "blocks",
        "EarlyExitNet": "model",
        "build_model": "model",
        "load_shared_weights": "model",
        "Supernet": "supernet",
        "supernet_checkpoint": "supernet",
        "train_architecture": "training",
        "exit_logits": "training",
        "TrainingConfig": "settings",
        "SupernetConfig": "settings",
        "FinetuneConfig": "settings",
    },
)
