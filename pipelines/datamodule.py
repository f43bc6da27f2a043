"""LightningDataModule over the augmented train split and the clean validation split."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader, Sampler, TensorDataset

from pipelines.config import PipelineConfig
from pipelines.data.schema import LABEL
from pipelines.io import read_columns
from pipelines.layout import SPLITS, Layout


def load_xy(path: Path, features: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Features as one float32 matrix and the label as float32, read column-wise from the
    split's memory-mapped Arrow file (no pandas round trip: the columns go straight to
    NumPy)."""
    table = read_columns(path, [*features, LABEL])
    x = np.column_stack([table.column(f).to_numpy().astype(np.float32) for f in features])
    y = table.column(LABEL).to_numpy().astype(np.float32)
    return x, y


class ResumableSampler(Sampler[int]):
    """Shuffles by (seed, epoch) alone and can start mid-epoch, so a run resumed from a
    mid-epoch checkpoint sees exactly the batches an uninterrupted run would.

    Written here rather than taken from torch: DistributedSampler shuffles by (seed, epoch)
    but cannot skip, and Lightning drops a stateful loader's state when configure_optimizers
    reads estimated_stepping_batches (Lightning issue #20550). Under DDP each rank takes
    every world_size-th index (the tail is dropped so ranks stay in step), as
    DistributedSampler(drop_last=True) does.
    """

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.seed = size, seed
        self.epoch = 0
        self.resume_at: tuple[int, int] | None = None  # (epoch, samples already seen)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @staticmethod
    def _replicas() -> tuple[int, int]:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def __len__(self) -> int:
        return self.size // self._replicas()[1]

    def __iter__(self):
        rank, world = self._replicas()
        order = torch.randperm(
            self.size, generator=torch.Generator().manual_seed(self.seed + self.epoch)
        )
        mine = order[rank : len(self) * world : world].tolist()
        skip = 0
        if self.resume_at is not None and self.resume_at[0] == self.epoch:
            skip = self.resume_at[1]
        self.resume_at = None
        yield from mine[skip:]


def model_inputs(
    cfg: PipelineConfig, layout: Layout, features: list[str], splits: tuple[str, ...]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(x, y) per split in the shape the configured model reads: a feature matrix for the
    tabular models (train from the augmented split), or per-entity histories of
    (seq_len, features + 1) for the sequence models (train from the clean split: resampled
    rows have no history)."""
    if cfg.model.is_sequence:
        from pipelines.data.sequences import customer_sequences

        schema = cfg.data.schema
        every = customer_sequences(
            {name: layout.split(layout.cleaned, name) for name in SPLITS},
            features,
            schema.sequence_key,  # type: ignore[arg-type]
            schema.time_column,  # type: ignore[arg-type]
            cfg.model.seq_len,
        )
        return {name: every[name] for name in splits}
    return {
        name: load_xy(
            layout.augmented_train if name == "train" else layout.split(layout.cleaned, name),
            features,
        )
        for name in splits
    }


def feature_statistics(x: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-feature mean and std over real rows (sequence padding and its flag left out)."""
    rows = x[x[..., -1] > 0][:, :-1] if x.ndim == 3 else x
    return [float(v) for v in rows.mean(axis=0)], [float(v) for v in rows.std(axis=0)]


class BatchedTensors(TensorDataset):
    """A TensorDataset the loader indexes once per batch. Without `__getitems__` the loader
    fetches rows one by one and default_collate stacks them again: at 2,048 rows that host
    work took longer than a whole MoE training step on an H200. Same rows, same order."""

    def __getitems__(self, indices: list[int]) -> tuple[Tensor, ...]:
        index = torch.as_tensor(indices, dtype=torch.long)
        return tuple(tensor[index] for tensor in self.tensors)


def whole_batch(batch: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """The loader's collate_fn: BatchedTensors already returns the batch."""
    return batch


class TabularDataModule(L.LightningDataModule):
    """Train/val arrays (tabular rows or sequences) as Lightning loaders."""

    def __init__(
        self,
        train_xy: tuple[np.ndarray, np.ndarray],
        val_xy: tuple[np.ndarray, np.ndarray],
        features: list[str],
        batch_size: int,
        eval_batch_size: int,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.seed = seed
        self.features = features
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.num_workers = num_workers
        self.train_xy, self.val_xy = train_xy, val_xy
        # made here, not in train_dataloader: a resumed run positions it while restoring
        # callbacks, before Lightning asks for the loaders
        self.train_sampler = ResumableSampler(len(self.train_xy[0]), seed)

    @classmethod
    def from_config(
        cls,
        cfg: PipelineConfig,
        train_xy: tuple[np.ndarray, np.ndarray],
        val_xy: tuple[np.ndarray, np.ndarray],
        features: list[str],
    ) -> TabularDataModule:
        """The loaders the `train` section asks for (batch sizes, workers), seeded by `seed`."""
        train = cfg.train
        return cls(
            train_xy,
            val_xy,
            features,
            train.batch_size,
            train.eval_batch_size,
            train.num_workers,
            seed=cfg.seed,
        )

    def train_dataloader(self) -> DataLoader:
        x, y = self.train_xy
        # a ragged last batch of a few rows gives a noisy MoE routing step; drop it
        batches = BatchSampler(
            self.train_sampler, self.batch_size, drop_last=len(x) > self.batch_size
        )
        return DataLoader(
            BatchedTensors(torch.from_numpy(x), torch.from_numpy(y)),
            batch_sampler=batches,
            collate_fn=whole_batch,
            num_workers=self.num_workers,
            # the loader's own generator, so creating an iterator leaves the global RNG (dropout,
            # expert sampling) untouched and a resumed run draws the same numbers
            generator=torch.Generator().manual_seed(self.seed),
        )

    def val_dataloader(self) -> DataLoader:
        x, y = self.val_xy
        return DataLoader(
            BatchedTensors(torch.from_numpy(x), torch.from_numpy(y)),
            batch_size=self.eval_batch_size,
            collate_fn=whole_batch,
            num_workers=self.num_workers,
            generator=torch.Generator().manual_seed(self.seed),
        )
