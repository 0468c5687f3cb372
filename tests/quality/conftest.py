import numpy as np
import pandas as pd
import pytest


def frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """Mixed columns; ``shift`` moves num_0's mean (in sd) and changes cat_0's proportions."""
    rng = np.random.default_rng(seed)
    p = np.array([0.5, 0.3, 0.2]) if shift == 0 else np.array([0.2, 0.3, 0.5])
    df = pd.DataFrame(
        {
            "num_0": rng.normal(shift, 1.0, n),
            "num_1": rng.lognormal(0.0, 1.0, n),
            "num_2": rng.integers(0, 50, n),
            "flag": rng.integers(0, 2, n),
            "cat_0": rng.choice(["a", "b", "c"], n, p=p),
            "cat_1": rng.choice([f"v{i}" for i in range(20)], n),
        }
    )
    df.loc[rng.random(n) < 0.02, "num_1"] = np.nan
    return df


@pytest.fixture
def make_frame():
    return frame
