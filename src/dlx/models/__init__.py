"""Models: one file a family, plain nn.Modules built from a data Spec.

A model's YAML names its class by `_target_`; `dlx.train` calls it with `spec=` the data
set's Spec, so a new model needs no registry entry.
"""
