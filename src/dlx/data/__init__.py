"""Data sets: each reads its real published format into in-memory tensors.

See `base.Dataset` for the contract; one file a data set, named by `_target_` in
`configs/dataset/<name>.yaml`.
"""

from dlx.data.base import Data, Dataset, Spec, Split

__all__ = ["Data", "Dataset", "Spec", "Split"]
