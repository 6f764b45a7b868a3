"""ETTh1/ETTh2: the official CSV layout, read through the registry; corrupt files are refused."""

import numpy as np
import pytest

from aicanon.core.data import DataUnavailable
from aicanon.datasets.ett import COLUMNS, load_ett


@pytest.mark.parametrize("name", ["ETTh1", "ETTh2"])
def test_load_ett_reads_hourly_rows_of_seven_columns(name):
    series = load_ett(name)
    assert series.values.shape == (17420, 7) and series.columns == COLUMNS
    assert str(series.timestamps[0]) == "2016-07-01T00:00:00"
    assert (np.diff(series.timestamps).astype(int) == 3600).all()
    assert series.column("OT").shape == (17420,)


def test_first_row_of_etth1_matches_the_file():
    series = load_ett("ETTh1")
    np.testing.assert_allclose(
        series.values[0], [5.827, 2.009, 1.599, 0.462, 4.203, 1.340, 30.531], atol=1e-3
    )


def test_bad_names_and_corrupt_files_are_refused(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="name must be one of \\('ETTh1', 'ETTh2'\\), got 'ETTm1'"):
        load_ett("ETTm1")
    with pytest.raises(ValueError, match="name must be one of"):
        load_ett("ETTh1").column("temperature")
    bad = tmp_path / "ETT"
    bad.mkdir()
    (bad / "ETTh1.csv").write_text("date,a,b\n2016-07-01 00:00:00,1,2\n")
    monkeypatch.setenv("AICANON_DATA", str(tmp_path))
    monkeypatch.setenv("AICANON_OFFLINE", "1")
    with pytest.raises(DataUnavailable, match="ETTh1.csv"):
        load_ett("ETTh1")
