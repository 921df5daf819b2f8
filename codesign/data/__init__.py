"""Step: data. Datasets by name (`DATASETS`), their fixed train/validation/test splits, local file readers."""

from codesign.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "DATASETS": "registry",
        "load_dataset": "registry",
        "dataset_names": "registry",
        "Dataset": "splits",
        "Split": "splits",
        "subsample": "splits",
        "resize_split": "splits",
    },
)
