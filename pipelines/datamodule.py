"""LightningDataModule over the augmented train split and the clean validation split."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pyarrow.parquet as pq
import torch
from torch.utils.data import DataLoader, TensorDataset

from pipelines.data.schema import LABEL
from pipelines.errors import PipelineError


def load_xy(path: Path, features: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Features as one float32 matrix and the label as float32, read column-wise from Parquet
    (no pandas round trip: the Arrow columns go straight to NumPy)."""
    if not path.is_file():
        raise PipelineError(f"{path}: missing input (run the earlier stage first)")
    table = pq.read_table(path, columns=[*features, LABEL])
    x = np.column_stack([table.column(f).to_numpy().astype(np.float32) for f in features])
    y = table.column(LABEL).to_numpy().astype(np.float32)
    return x, y


class TabularDataModule(L.LightningDataModule):
    def __init__(
        self,
        train_path: Path,
        val_path: Path,
        features: list[str],
        batch_size: int,
        eval_batch_size: int,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.train_path, self.val_path = train_path, val_path
        self.features = features
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.num_workers = num_workers
        self.train_xy = load_xy(train_path, features)
        self.val_xy = load_xy(val_path, features)

    def train_dataloader(self) -> DataLoader:
        x, y = self.train_xy
        return DataLoader(
            TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
            batch_size=self.batch_size,
            shuffle=True,
            # a ragged last batch of a few rows gives a noisy MoE routing step; drop it
            drop_last=len(x) > self.batch_size,
            num_workers=self.num_workers,
        )

    def val_dataloader(self) -> DataLoader:
        x, y = self.val_xy
        return DataLoader(
            TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
            batch_size=self.eval_batch_size,
            num_workers=self.num_workers,
        )
