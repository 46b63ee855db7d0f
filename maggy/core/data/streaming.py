"""A dataset streamed from parquet row groups, for data larger than a worker's memory."""

from __future__ import annotations

from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np
import pyarrow as pa
from torch.utils.data import IterableDataset, get_worker_info

from maggy.ablation.datasets import MaggyDataset
from maggy.core.data.reader import column_bytes, projection, record_read, to_arrays
from maggy.core.data.source import DataSource, describe, filesystem

__all__ = ["StreamingDataset"]


class StreamingDataset(IterableDataset, MaggyDataset):
    """Rows of a parquet dataset, read one row group at a time, with ``PandasDataset``'s semantics.

    Memory holds one row group and the shuffle buffer, whatever the dataset's size. Each item
    is ``(label, features)`` (``label_first=False``: ``(features, label)``), numpy
    ``float32`` as :class:`~maggy.ablation.PandasDataset` gives them; feature names match
    case-insensitively; non-numeric features are an error. :meth:`ablate_feature` is a column
    projection: the removed column is never read.

    Shuffling: rows pass through a buffer of ``shuffle_buffer`` rows from which they leave in
    random order, and the row groups are read in random order. The order comes from ``seed``
    and :meth:`set_epoch`; with ``seed=None`` (what maggy's trials get) each iteration draws it
    from torch's random generator, which maggy seeds with the trial's seed, so a trial's
    batches are reproducible and every epoch differs. ``shuffle_buffer=0`` keeps file order.

    With a ``DataLoader(num_workers=k)``, each of the k workers reads its own share of the row
    groups. ``batch_size=n`` yields ready-made batches of tensors (use ``DataLoader(...,
    batch_size=None)``): the same rows in the same order as ``DataLoader(batch_size=n)`` over
    single rows, much faster.

    Args:
        source: a path (a parquet file or folder, any URI pyarrow reads) or a ``DataSource``.
        label_name: the label column; every other column is a feature.
        label_first: ``(label, features)`` (default) or ``(features, label)``.
        dtype: numpy dtype of labels and features.
        shuffle_buffer: rows held for shuffling; 0 reads in file order.
        seed: seed of the order; ``None`` draws it from torch's generator at each iteration.
        batch_size: yield batches of this many rows (torch tensors) instead of single rows.

    Raises:
        ValueError: the label is not a column, or a feature is not numeric.

    Example:
        >>> import pandas as pd, tempfile, os
        >>> folder = tempfile.mkdtemp()
        >>> pd.DataFrame({"y": [0, 1, 0], "a": [1.0, 2.0, 3.0], "b": [4, 5, 6]}).to_parquet(os.path.join(folder, "d.parquet"))
        >>> ds = StreamingDataset(folder, "Y", shuffle_buffer=0)
        >>> ds.ablate_feature("B")
        >>> ds.input_shape, [(float(y), x.tolist()) for y, x in ds][:2]
        ((1,), [(0.0, [1.0]), (1.0, [2.0])])
    """

    def __init__(
        self,
        source: Union[str, DataSource],
        label_name: str,
        label_first: bool = True,
        dtype: Any = np.float32,
        shuffle_buffer: int = 10_000,
        seed: Optional[int] = None,
        batch_size: Optional[int] = None,
    ):
        if isinstance(shuffle_buffer, bool) or not isinstance(shuffle_buffer, int) or shuffle_buffer < 0:
            raise ValueError(f"shuffle_buffer must be an int >= 0, got {shuffle_buffer!r}")
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"batch_size must be None or an int >= 1, got {batch_size!r}")
        self.source = describe(source) if isinstance(source, str) else source
        self.label, self.columns = projection(self.source.schema, label_name)
        self.label_first = label_first
        self.dtype = dtype
        self.shuffle_buffer = shuffle_buffer
        self.seed = seed
        self.batch_size = batch_size
        self.epoch = 0

    def ablate_feature(self, feature: str) -> None:
        """Leaves the feature column ``feature`` (matched case-insensitively) unread.

        Raises:
            ValueError: no such feature column; the message lists the columns.
        """
        schema = self.source.schema
        kept = pa.schema([schema.field(c) for c in (self.label, *self.columns)])
        self.label, self.columns = projection(kept, self.label, feature)

    def set_epoch(self, epoch: int) -> None:
        """Sets the epoch, part of the order's seed when ``seed`` is given."""
        self.epoch = int(epoch)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one feature vector: ``(number of features,)``."""
        return (len(self.columns),)

    @property
    def feature_names(self) -> Sequence[str]:
        """The feature columns, in order."""
        return list(self.columns)

    def __len__(self) -> int:
        rows = 0 if self.source.empty else self.source.num_rows
        return rows if self.batch_size is None else -(-rows // self.batch_size)

    def __iter__(self) -> Iterator:
        rows = self._rows()
        if self.batch_size is None:
            for labels, data in rows:
                for i in range(len(labels)):
                    yield (labels[i], data[i]) if self.label_first else (data[i], labels[i])
            return
        yield from self._batches(rows)

    def _batches(self, rows: Iterator) -> Iterator:
        import torch

        pending_l, pending_f, count = [], [], 0
        for labels, data in rows:
            pending_l.append(labels)
            pending_f.append(data)
            count += len(labels)
            while count >= self.batch_size:
                labels, data = np.concatenate(pending_l), np.concatenate(pending_f)
                n = self.batch_size
                batch = torch.from_numpy(labels[:n]), torch.from_numpy(data[:n])
                yield batch if self.label_first else batch[::-1]
                pending_l, pending_f, count = [labels[n:]], [data[n:]], count - n
        if count:
            batch = torch.from_numpy(np.concatenate(pending_l)), torch.from_numpy(np.concatenate(pending_f))
            yield batch if self.label_first else batch[::-1]

    def _seeds(self) -> tuple[int, int, int]:
        """``(shared seed, worker, workers)``: the shared seed orders the row groups alike in every worker."""
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        if self.seed is not None:
            return int(np.random.SeedSequence([self.seed, self.epoch]).generate_state(1)[0]), worker, workers
        if info is not None:
            return (info.seed - info.id) & 0xFFFFFFFF, worker, workers  # DataLoader's base seed
        import torch

        return int(torch.empty((), dtype=torch.int64).random_().item()) & 0xFFFFFFFF, worker, workers

    def _rows(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Chunks of ``(labels, features)`` in the order this worker yields them."""
        if self.source.empty:
            return
        import pyarrow.parquet as pq

        shared, worker, workers = self._seeds()
        shuffle = self.shuffle_buffer > 0
        filesys, _ = filesystem(self.source.path)
        groups = []
        for path, _, _ in self.source.files:
            with filesys.open_input_file(path) as f:
                groups += [(path, i) for i in range(pq.ParquetFile(f).metadata.num_row_groups)]
        if shuffle:
            groups = [groups[i] for i in np.random.default_rng(shared).permutation(len(groups))]
        rng = np.random.default_rng([shared, worker])
        columns = [self.label, *self.columns]
        buffer_l = np.empty(0, dtype=self.dtype)
        buffer_f = np.empty((0, len(self.columns)), dtype=self.dtype)
        for path, group in groups[worker::workers]:
            with filesys.open_input_file(path) as f:
                parquet = pq.ParquetFile(f)
                table = parquet.read_row_group(group, columns=columns, use_pandas_metadata=False)
                record_read(path, columns, column_bytes(parquet.metadata, columns, [group]), table.num_rows)
            labels, data = to_arrays(table, self.label, self.columns, self.dtype)
            del table
            if not shuffle:
                yield labels, data
                continue
            buffer_l, buffer_f = np.concatenate([buffer_l, labels]), np.concatenate([buffer_f, data])
            order = rng.permutation(len(buffer_l))
            buffer_l, buffer_f = buffer_l[order], buffer_f[order]
            leave = len(buffer_l) - self.shuffle_buffer
            if leave > 0:
                yield buffer_l[:leave], buffer_f[:leave]
                buffer_l, buffer_f = buffer_l[leave:], buffer_f[leave:]
        if len(buffer_l):
            order = rng.permutation(len(buffer_l))
            yield buffer_l[order], buffer_f[order]
