"""dlx: config-driven deep-learning experiments.

Kept import-free on purpose: `dlx --help` must answer without loading torch.
"""

__version__ = "0.1.0"
