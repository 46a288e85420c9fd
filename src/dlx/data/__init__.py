"""Data sets: each reads its real published format into tensors (or streams it).

See `base.Dataset` for what a data set does and `dlx.core.data` for what it gives; one file
a data set, named by `_target_` in `configs/dataset/<name>.yaml`.
"""
