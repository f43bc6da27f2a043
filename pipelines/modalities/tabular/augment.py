"""Class-imbalance handling with imbalanced-learn, on the train split only."""

from __future__ import annotations

import pandas as pd
from imblearn.combine import SMOTETomek
from imblearn.over_sampling import SMOTE, RandomOverSampler
from imblearn.under_sampling import RandomUnderSampler

from pipelines.data.schema import LABEL
from pipelines.errors import PipelineError
from pipelines.modalities.tabular.config import AugmentConfig


def resample(
    train: pd.DataFrame, features: list[str], rules: AugmentConfig, seed: int
) -> pd.DataFrame:
    """Return the resampled train split (features + label only)."""
    frame = train[[*features, LABEL]]
    if rules.method == "none":
        return frame.reset_index(drop=True)
    counts = frame[LABEL].value_counts()
    minority = int(counts.min()) if len(counts) == 2 else 0
    if minority == 0:
        raise PipelineError("augment: the train split has a single class; nothing to rebalance")
    ratio = minority / int(counts.max())
    if ratio >= rules.sampling_strategy:
        # imblearn refuses a target ratio below the current one; the data is already balanced enough
        return frame.reset_index(drop=True)
    if rules.method in ("smote", "smote_tomek") and minority <= rules.k_neighbors:
        raise PipelineError(
            f"augment: SMOTE needs more than data.augment.k_neighbors={rules.k_neighbors} "
            f"minority rows in the train split, found {minority}"
        )
    sampler = {
        "smote": lambda: SMOTE(
            sampling_strategy=rules.sampling_strategy,
            k_neighbors=rules.k_neighbors,
            random_state=seed,
        ),
        "smote_tomek": lambda: SMOTETomek(
            sampling_strategy=rules.sampling_strategy,
            smote=SMOTE(k_neighbors=rules.k_neighbors, random_state=seed),
            random_state=seed,
        ),
        "random_over": lambda: RandomOverSampler(
            sampling_strategy=rules.sampling_strategy, random_state=seed
        ),
        "random_under": lambda: RandomUnderSampler(
            sampling_strategy=rules.sampling_strategy, random_state=seed
        ),
    }[rules.method]()
    x, y = sampler.fit_resample(frame[features].to_numpy(), frame[LABEL].to_numpy())
    out = pd.DataFrame(x, columns=features).astype("float32")
    out[LABEL] = y.astype("int64")
    return out
