"""The .ts reader: a hand-written file, the bundled problems' shapes, parity with aeon's loader, the
review's treatment of unequal lengths, and bad input."""

import numpy as np
import pytest

from aicanon.core.data import DataUnavailable
from aicanon.datasets.ucr import (
    BUNDLED,
    equalize_lengths,
    find_ucr_file,
    load_ucr,
    parse_ts,
    read_ts,
    znormalize,
)

pytestmark = pytest.mark.paper("tsc-review")

SMALL = """\
# a comment
@problemName Toy
@timeStamps false
@missing true
@univariate false
@dimensions 2
@equalLength false
@classLabel true up down

@data
1,2,3:4,5,6:up
0.5,?,1.5,2.5:NaN,1,1,1:down
"""


def test_parse_a_hand_written_file():
    parsed = parse_ts(SMALL)
    assert parsed.name == "Toy" and parsed.classes == ("up", "down")
    assert parsed.labels == ["up", "down"]
    assert not parsed.univariate and not parsed.equal_length
    np.testing.assert_array_equal(parsed.series[0], [[1, 2, 3], [4, 5, 6]])
    assert parsed.series[1].shape == (2, 4)
    assert np.isnan(parsed.series[1][0, 1]) and np.isnan(parsed.series[1][1, 0])


def test_equalize_lengths_interpolates_linearly_or_pads():
    series = [np.array([[0.0, 2.0]]), np.array([[1.0, 2.0, 3.0]])]
    np.testing.assert_allclose(equalize_lengths(series, 3), [[[0.0, 1.0, 2.0]], [[1.0, 2.0, 3.0]]])
    np.testing.assert_allclose(equalize_lengths(series, 3, "pad"), [[[0.0, 2.0, 0.0]], [[1.0, 2.0, 3.0]]])
    with pytest.raises(ValueError, match="target length"):
        equalize_lengths(series, 2)


def test_znormalize_each_series_and_keeps_constant_ones_finite():
    x = np.array([[[1.0, 2.0, 3.0]], [[5.0, 5.0, 5.0]]])
    z = znormalize(x)
    np.testing.assert_allclose(z[0, 0], [-1.224744871, 0.0, 1.224744871], atol=1e-8)
    np.testing.assert_array_equal(z[1, 0], [0.0, 0.0, 0.0])


@pytest.mark.parametrize(
    "name, train, test, channels, length, classes",
    [
        ("GunPoint", 50, 150, 1, 150, 2),
        ("ItalyPowerDemand", 67, 1029, 1, 24, 2),
        ("ArrowHead", 36, 175, 1, 251, 3),
        ("BasicMotions", 40, 40, 6, 100, 4),
        ("JapaneseVowels", 270, 370, 12, 29, 9),
    ],
)
def test_bundled_problems_have_their_official_shapes(name, train, test, channels, length, classes):
    data = load_ucr(name)
    assert data.x_train.shape == (train, channels, length) and data.x_test.shape == (test, channels, length)
    assert data.num_classes == classes and data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert set(np.unique(data.y_train)) == set(range(classes))
    assert data.equal_length == (name != "JapaneseVowels")


def test_unequal_lengths_are_resampled_to_the_longest():
    raw = read_ts(find_ucr_file("JapaneseVowels", "train"))
    lengths = [s.shape[1] for s in raw.series]
    assert min(lengths) < max(lengths) == 26  # the train split alone; test reaches 29
    data = load_ucr("JapaneseVowels")
    first = raw.series[0]
    expected = equalize_lengths([first], 29)[0]
    np.testing.assert_allclose(data.x_train[0], expected, rtol=1e-6)
    np.testing.assert_allclose(data.x_train[0][:, 0], first[:, 0], rtol=1e-6)  # endpoints are kept
    np.testing.assert_allclose(data.x_train[0][:, -1], first[:, -1], rtol=1e-6)
    with pytest.raises(ValueError, match="unequal length"):
        load_ucr("JapaneseVowels", unequal="error")


def test_aicanon_data_takes_precedence(tmp_path, monkeypatch):
    folder = tmp_path / "ucr" / "Toy"
    folder.mkdir(parents=True)
    equal = SMALL.replace("0.5,?,1.5,2.5:NaN,1,1,1", "0.5,?,1.5:NaN,1,1")
    (folder / "Toy_TRAIN.ts").write_text(equal)
    (folder / "Toy_TEST.ts").write_text(equal)
    monkeypatch.setenv("AICANON_DATA", str(tmp_path))
    data = load_ucr("Toy", normalize=False)
    assert data.x_train.shape == (2, 2, 3) and data.y_train.tolist() == [0, 1]
    assert find_ucr_file("Toy", "test") == folder / "Toy_TEST.ts"


def test_missing_problem_raises_data_unavailable(tmp_path, monkeypatch):
    monkeypatch.setenv("AICANON_DATA", str(tmp_path))
    with pytest.raises(DataUnavailable, match="NotAProblem_TRAIN.ts"):
        load_ucr("NotAProblem")


@pytest.mark.parity
@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in ("ACSF1", "OSULeaf") else n for n in BUNDLED]
)
def test_parity_with_aeon_loader(name):
    pytest.importorskip("aeon")
    from aeon.datasets import load_from_ts_file

    for split in ("train", "test"):
        path = find_ucr_file(name, split)
        ours = read_ts(path)
        x_ref, y_ref = load_from_ts_file(str(path))
        # aeon lower-cases every data line ("Standing" becomes "standing"); we keep the file's case.
        assert [label.lower() for label in ours.labels] == [str(label) for label in y_ref]
        if isinstance(x_ref, np.ndarray):
            np.testing.assert_array_equal(np.stack(ours.series), x_ref)
        else:  # unequal length: aeon returns one [channels, length_i] array per case
            assert len(x_ref) == len(ours.series)
            for a, b in zip(ours.series, x_ref):
                np.testing.assert_array_equal(a, b)


@pytest.mark.parity
def test_load_ucr_matches_aeon_load_classification():
    pytest.importorskip("aeon")
    from aeon.datasets import load_classification

    for name in ("GunPoint", "BasicMotions", "ArrowHead"):
        for split in ("train", "test"):
            x_ref, y_ref = load_classification(name, split=split)
            data = load_ucr(name)
            x, y = (data.x_train, data.y_train) if split == "train" else (data.x_test, data.y_test)
            np.testing.assert_allclose(x, x_ref.astype(np.float32))
            assert [data.classes[i].lower() for i in y] == [str(label).lower() for label in y_ref]


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="no @data"):
        parse_ts("@problemName X\n@classLabel true a b\n")
    with pytest.raises(ValueError, match="classLabel"):
        parse_ts("@problemName X\n@data\n1,2:a\n")
    with pytest.raises(ValueError, match="not among @classLabel"):
        parse_ts("@classLabel true a b\n@data\n1,2:c\n")
    with pytest.raises(ValueError, match="differ in length"):
        parse_ts("@classLabel true a\n@data\n1,2:1:a\n")
    with pytest.raises(ValueError, match="not a number"):
        parse_ts("@classLabel true a\n@data\n1,x:a\n")
    with pytest.raises(ValueError, match="time-stamped"):
        parse_ts("@timeStamps true\n@classLabel true a\n@data\n1,2:a\n")
    with pytest.raises(TypeError, match="text must be a str"):
        parse_ts(b"@data")
    with pytest.raises(ValueError, match="name must be a UCR/UEA problem name"):
        find_ucr_file("../etc", "train")
    with pytest.raises(ValueError, match="split must be one of"):
        find_ucr_file("GunPoint", "valid")
    with pytest.raises(ValueError, match="unequal must be one of"):
        load_ucr("GunPoint", unequal="crop")
