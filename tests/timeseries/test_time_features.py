"""Time-stamp features: the calendar fields and the [-0.5, 0.5] "timeF" features, against pandas."""

import numpy as np
import pandas as pd
import pytest

from aicanon.timeseries.time_features import calendar_fields, time_features

STAMPS = np.arange("2016-02-27T21:45", "2017-01-03T02:00", np.timedelta64(397, "m"), dtype="datetime64[m]")


def test_time_features_match_pandas_formulas():
    index = pd.DatetimeIndex(STAMPS)
    hourly = time_features(STAMPS, "h")
    expected = np.stack(
        [index.hour / 23.0, index.dayofweek / 6.0, (index.day - 1) / 30.0, (index.dayofyear - 1) / 365.0],
        axis=1,
    )
    np.testing.assert_allclose(hourly, expected - 0.5, atol=1e-6)
    minutely = time_features(STAMPS, "t")
    np.testing.assert_allclose(minutely[:, 0], index.minute / 59.0 - 0.5, atol=1e-6)
    np.testing.assert_allclose(minutely[:, 1:], hourly, atol=1e-6)
    np.testing.assert_allclose(time_features(STAMPS, "d"), hourly[:, 1:], atol=1e-6)
    assert hourly.dtype == np.float32 and hourly.min() >= -0.5 and hourly.max() <= 0.5


def test_calendar_fields_match_pandas():
    index = pd.DatetimeIndex(STAMPS)
    fields = calendar_fields(STAMPS, "t")
    expected = np.stack([index.month, index.day, index.dayofweek, index.hour, index.minute // 15], axis=1)
    np.testing.assert_array_equal(fields, expected)
    assert calendar_fields(STAMPS, "h").shape == (len(STAMPS), 4)


def test_bad_stamps_and_frequencies_are_refused():
    with pytest.raises(TypeError, match="stamps must be a numpy datetime64 array, got list"):
        time_features(["2016-01-01"], "h")
    with pytest.raises(ValueError, match="stamps must be 1-D"):
        time_features(STAMPS.reshape(1, -1), "h")
    with pytest.raises(ValueError, match="freq must be one of \\('d', 'h', 't'\\), got 'w'"):
        calendar_fields(STAMPS, "w")
