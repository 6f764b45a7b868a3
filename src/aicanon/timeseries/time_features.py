"""Time-stamp features for forecasting models (Informer, Appendix B "global time stamp"; Autoformer).

Two encodings of each time stamp, as the Informer and Autoformer code bases use them:

* :func:`calendar_fields`: integer fields ``[month, day, weekday, hour]`` (``minute // 15`` appended
  at ``freq="t"``) for the learned or fixed embedding tables of
  :class:`aicanon.nn.series_embedding.TemporalEmbedding` ("fixed"/"learned" encodings);
* :func:`time_features`: real features in ``[-0.5, 0.5]`` for a linear embedding ("timeF"): at hourly
  frequency ``[hour/23, weekday/6, (day-1)/30, (day_of_year-1)/365] - 0.5``; minutely adds
  ``minute/59 - 0.5`` first, daily drops the hour.

Weekday 0 is Monday. Stamps are numpy ``datetime64`` (any unit; no pandas needed).
"""

from __future__ import annotations

import numpy as np

from aicanon.core.checks import check_choice

__all__ = ["FREQUENCIES", "calendar_fields", "time_features"]

FREQUENCIES = ("d", "h", "t")
"""Daily, hourly and minutely (15-minute ETTm) data."""


def _parts(stamps: np.ndarray) -> dict[str, np.ndarray]:
    if not isinstance(stamps, np.ndarray) or not np.issubdtype(stamps.dtype, np.datetime64):
        raise TypeError(f"stamps must be a numpy datetime64 array, got {type(stamps).__name__}")
    if stamps.ndim != 1:
        raise ValueError(f"stamps must be 1-D, got shape {stamps.shape}")
    days = stamps.astype("datetime64[D]")
    months = stamps.astype("datetime64[M]")
    years = stamps.astype("datetime64[Y]")
    minutes = (stamps.astype("datetime64[m]") - days).astype(np.int64)
    return {
        "month": (months - years).astype(np.int64) + 1,
        "day": (days - months).astype(np.int64) + 1,
        # 1970-01-01 was a Thursday (weekday 3 when Monday is 0).
        "weekday": (days.astype(np.int64) + 3) % 7,
        "hour": minutes // 60,
        "minute": minutes % 60,
        "day_of_year": (days - years).astype(np.int64) + 1,
    }


def calendar_fields(stamps: np.ndarray, freq: str = "h") -> np.ndarray:
    """int64 ``[T, 4]`` ``[month, day, weekday, hour]`` (``[T, 5]`` with ``minute // 15`` at ``"t"``)."""
    check_choice("freq", freq, FREQUENCIES)
    parts = _parts(stamps)
    fields = [parts["month"], parts["day"], parts["weekday"], parts["hour"]]
    if freq == "t":
        fields.append(parts["minute"] // 15)
    return np.stack(fields, axis=1)


def time_features(stamps: np.ndarray, freq: str = "h") -> np.ndarray:
    """float32 ``[T, F]`` features in ``[-0.5, 0.5]``: F = 3 (daily), 4 (hourly), 5 (minutely)."""
    check_choice("freq", freq, FREQUENCIES)
    parts = _parts(stamps)
    features = [
        parts["weekday"] / 6.0,
        (parts["day"] - 1) / 30.0,
        (parts["day_of_year"] - 1) / 365.0,
    ]
    if freq in ("h", "t"):
        features.insert(0, parts["hour"] / 23.0)
    if freq == "t":
        features.insert(0, parts["minute"] / 59.0)
    return (np.stack(features, axis=1) - 0.5).astype(np.float32)
