"""Small synthetic multi-label data shared by the federated unit tests."""

from __future__ import annotations

import numpy as np
import pytest

from federated.client import ClientData

N_FEATURES = 6


def make_rows(rng: np.random.Generator, labels: list[int], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose first three features shift by 3 when the matching fault is present."""
    Y = np.tile(np.asarray(labels, dtype=np.int64), (n, 1))
    X = rng.normal(size=(n, N_FEATURES))
    X[:, :3] += 3.0 * Y
    return X, Y


@pytest.fixture
def skewed_clients() -> dict[str, ClientData]:
    """Three sites, each with healthy rows plus one fault type only (extreme label skew)."""
    rng = np.random.default_rng(1)
    out = {}
    for k in range(3):
        lab = [0, 0, 0]
        lab[k] = 1
        Xh, Yh = make_rows(rng, [0, 0, 0], 80)
        Xf, Yf = make_rows(rng, lab, 80)
        out[f"site{k}"] = ClientData(np.vstack([Xh, Xf]), np.vstack([Yh, Yf]), f"site{k}")
    return out
