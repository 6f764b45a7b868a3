"""ETT (Electricity Transformer Temperature, Zhou et al. 2021): ETTh1 and ETTh2, hourly, 2016-07 to 2018-06.

Each CSV holds a ``date`` column (``YYYY-MM-DD hh:mm:ss``) and seven load/temperature columns,
``HUFL, HULL, MUFL, MULL, LUFL, LULL`` (high/middle/low useful and useless load) and ``OT`` (oil
temperature, the forecasting target of the univariate setting): 17,420 hourly rows per file.

:func:`load_ett` returns the raw series as :class:`ETTSeries` (timestamps as ``datetime64[s]``,
values float64 ``[T, 7]``, column names), read through the data registry (``ETT`` dataset, the
official ``ETT-small`` files). The Informer protocol (splits, scaling, windows) lives with the
forecasting experiments, not here.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

import numpy as np

from aicanon.core.checks import check_choice
from aicanon.core.data import DataUnavailable, data_file, fetch

__all__ = ["COLUMNS", "ETTSeries", "TARGET", "load_ett"]

DATASET = "ETT"
NAMES = ("ETTh1", "ETTh2")
COLUMNS = ("HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT")
TARGET = "OT"


@dataclass(frozen=True)
class ETTSeries:
    name: str
    timestamps: np.ndarray
    """``datetime64[s]`` ``[T]``, hourly."""
    values: np.ndarray
    """float64 ``[T, 7]`` in :data:`COLUMNS` order."""
    columns: tuple[str, ...] = COLUMNS

    def column(self, name: str) -> np.ndarray:
        check_choice("name", name, self.columns)
        return self.values[:, self.columns.index(name)]


def load_ett(name: str = "ETTh1") -> ETTSeries:
    """Read ``ETTh1.csv`` or ``ETTh2.csv``; a file not in the official layout raises ``DataUnavailable``."""
    check_choice("name", name, NAMES)
    file = f"{name}.csv"
    path = fetch(DATASET, file)

    def corrupt(reason: str) -> DataUnavailable:
        entry = data_file(DATASET, file)
        return DataUnavailable(DATASET, file, entry.url, entry.sha256, reason)

    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows or tuple(rows[0]) != ("date", *COLUMNS):
        raise corrupt(f"expected the header date,{','.join(COLUMNS)}, got {rows[0] if rows else 'nothing'}")
    try:
        timestamps = np.array([row[0] for row in rows[1:]], dtype="datetime64[s]")
        values = np.array([row[1:] for row in rows[1:]], dtype=np.float64)
    except ValueError as error:
        raise corrupt(f"unparseable row: {error}") from error
    if values.ndim != 2 or values.shape[1] != len(COLUMNS) or not np.isfinite(values).all():
        raise corrupt(f"expected {len(COLUMNS)} finite numbers per row, got shape {values.shape}")
    return ETTSeries(name, timestamps, values)
