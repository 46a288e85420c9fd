"""The book's listing 6-1 data: `make_classification(20, 2, 2, 0, weights=[.5, .5],
random_state=2017)`, two Gaussian blobs in 2-D. Every argument is a config key."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from dlx.core.data import Spec, Split
from dlx.core.errors import ConfigError
from dlx.data.base import Dataset
from dlx.data.digits import book_split


class Toy2D(Dataset):
    """The book fits and scores on all 20 points (test_size 0: no test split)."""

    name = "toy2d"
    scale = 1.0

    def __init__(
        self,
        n_samples: int = 20,
        n_features: int = 2,
        n_informative: int = 2,
        n_redundant: int = 0,
        n_classes: int = 2,
        n_clusters_per_class: int = 2,
        weights: Sequence[float] | None = (0.5, 0.5),
        random_state: int = 2017,
        test_size: float = 0.0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if not 0.0 <= test_size < 1.0:
            raise ConfigError(f"dataset.test_size={test_size} must be in [0, 1)")
        self.make_args = dict(
            n_samples=int(n_samples),
            n_features=int(n_features),
            n_informative=int(n_informative),
            n_redundant=int(n_redundant),
            n_classes=int(n_classes),
            n_clusters_per_class=int(n_clusters_per_class),
            weights=None if weights is None else [float(w) for w in weights],
            random_state=random_state,
        )
        self.test_size = test_size

    @property
    def source_spec(self) -> Spec:
        k = self.make_args["n_classes"]
        return Spec(input_shape=(self.make_args["n_features"],), num_classes=k,
                    class_names=tuple(str(i) for i in range(k)))  # fmt: skip

    def read(self) -> tuple[Split, Split | None]:
        from sklearn.datasets import make_classification

        try:
            x, y = make_classification(**self.make_args)
        except ValueError as err:  # scikit-learn explains inconsistent arguments
            raise ConfigError(f"dataset=toy2d: {err}") from None
        xt = torch.from_numpy(x.astype(np.float32))
        yt = torch.from_numpy(y.astype(np.int64))
        if not self.test_size:
            return Split(xt, yt), None
        train_idx, test_idx = book_split(len(y), self.test_size, self.make_args["random_state"])
        return Split(xt[train_idx], yt[train_idx]), Split(xt[test_idx], yt[test_idx])
