"""The UCR/UEA time series classification archives, read from the official ``.ts`` format.

A ``.ts`` file (timeseriesclassification.com) is a header of ``@key value`` lines (``@problemName``,
``@timeStamps``, ``@missing``, ``@univariate``, ``@dimensions``, ``@equalLength``, ``@seriesLength``,
``@classLabel true <labels...>``), comment lines starting with ``#``, then ``@data`` and one case per
line: the dimensions separated by ``:``, each a comma-separated series, the class label last. ``?`` or
``NaN`` marks a missing value. Time-stamped series (``@timeStamps true``) are not supported.

Where the files are looked for, in order:

1. ``$AICANON_DATA/ucr/<Name>/<Name>_TRAIN.ts`` (and ``_TEST.ts``);
2. the data folder bundled with the installed ``aeon`` package (located from its package spec, without
   importing it): aeon 1.6 ships ACSF1, ArrowHead, BasicMotions, GunPoint, ItalyPowerDemand,
   JapaneseVowels, OSULeaf and PickupGestureWiimoteZ (:data:`BUNDLED`).

Neither there: :class:`aicanon.core.data.DataUnavailable`, naming the paths tried.

:func:`load_ucr` returns a :class:`UCRDataset`: float32 arrays ``[N, channels, length]`` and int64 labels
indexing ``classes`` (the header's ``@classLabel`` order). Unequal-length problems (JapaneseVowels,
PickupGestureWiimoteZ) are made equal as the review does for the MTS archive (Section 4.1; its
code's ``transform_to_same_length``): every series is resampled to the longest length of the
problem (train and test together) by interpolation over evenly spaced points; we interpolate linearly,
as the paper's text and the code's comment say (the code calls a cubic ``interp1d``).
``unequal="pad"`` zero-pads at the end instead, ``unequal="error"`` refuses.
"""

from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aicanon.core.checks import check_choice
from aicanon.core.data import ENV_DATA, DataUnavailable

__all__ = [
    "BUNDLED",
    "TSFile",
    "UCRDataset",
    "equalize_lengths",
    "find_ucr_file",
    "load_ucr",
    "parse_ts",
    "read_ts",
    "znormalize",
]

BUNDLED: tuple[str, ...] = (
    "ACSF1",
    "ArrowHead",
    "BasicMotions",
    "GunPoint",
    "ItalyPowerDemand",
    "JapaneseVowels",
    "OSULeaf",
    "PickupGestureWiimoteZ",
)
"""Problems the aeon 1.6 wheel bundles (its ``datasets/data`` folder)."""

_SPLITS = ("train", "test")
_TRUE = {"true": True, "false": False}


@dataclass
class TSFile:
    """One parsed ``.ts`` file: ``series[i]`` is a float64 array ``[channels, length_i]``."""

    name: str
    series: list[np.ndarray]
    labels: list[str]
    classes: tuple[str, ...]
    univariate: bool
    equal_length: bool


def _header_bool(key: str, value: str, line_number: int) -> bool:
    if value.lower() not in _TRUE:
        raise ValueError(f"line {line_number}: @{key} must be true or false, got {value!r}")
    return _TRUE[value.lower()]


def _parse_values(text: str, line_number: int) -> np.ndarray:
    out = []
    for item in text.split(","):
        item = item.strip()
        if item in ("?", "") or item.lower() == "nan":
            out.append(math.nan)
            continue
        try:
            out.append(float(item))
        except ValueError as error:
            raise ValueError(f"line {line_number}: {item!r} is not a number") from error
    return np.asarray(out, dtype=np.float64)


def parse_ts(text: str) -> TSFile:
    """Parse the text of a ``.ts`` classification file; raise ``ValueError`` (with the line) if malformed."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    header: dict[str, str] = {}
    classes: tuple[str, ...] = ()
    series: list[np.ndarray] = []
    labels: list[str] = []
    in_data = False
    for line_number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            if not line.startswith("@"):
                raise ValueError(
                    f"line {line_number}: expected a @key header line before @data, got {line[:40]!r}"
                )
            key, _, value = line[1:].partition(" ")
            key, value = key.lower(), value.strip()
            if key == "data":
                in_data = True
            elif key == "classlabel":
                words = value.split()
                if not words or not _header_bool(key, words[0], line_number):
                    raise ValueError(
                        f"line {line_number}: only classification files (@classLabel true ...) are read"
                    )
                classes = tuple(words[1:])
            else:
                header[key] = value
            continue
        *dims, label = line.split(":")
        if not dims:
            raise ValueError(f"line {line_number}: a case needs at least one dimension and a class label")
        arrays = [_parse_values(d, line_number) for d in dims]
        lengths = {a.size for a in arrays}
        if len(lengths) != 1:
            raise ValueError(
                f"line {line_number}: the dimensions of one case differ in length: {sorted(lengths)}"
            )
        label = label.strip()
        if classes and label not in classes:
            raise ValueError(f"line {line_number}: class label {label!r} is not among @classLabel {classes}")
        series.append(np.stack(arrays))
        labels.append(label)
    if not in_data:
        raise ValueError("no @data line: not a .ts file")
    if not classes:
        raise ValueError("no @classLabel true ... line: not a classification .ts file")
    if not series:
        raise ValueError("the @data section holds no case")
    if _header_bool("timestamps", header.get("timestamps", "false"), 0):
        raise ValueError("time-stamped .ts files (@timeStamps true) are not supported")
    channels = {s.shape[0] for s in series}
    if len(channels) != 1:
        raise ValueError(f"cases differ in their number of dimensions: {sorted(channels)}")
    lengths = {s.shape[1] for s in series}
    univariate = series[0].shape[0] == 1
    if "dimensions" in header and int(header["dimensions"]) != series[0].shape[0]:
        raise ValueError(f"@dimensions says {header['dimensions']}, the cases have {series[0].shape[0]}")
    return TSFile(
        name=header.get("problemname", ""),
        series=series,
        labels=labels,
        classes=classes,
        univariate=univariate,
        equal_length=len(lengths) == 1,
    )


def read_ts(path: str | os.PathLike) -> TSFile:
    """Read and parse one ``.ts`` file."""
    return parse_ts(Path(path).read_text(encoding="utf-8", errors="replace"))


def _aeon_data_dir() -> Path | None:
    """aeon's bundled data folder, found from its package spec (aeon itself is not imported)."""
    try:
        spec = importlib.util.find_spec("aeon")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = Path(location) / "datasets" / "data"
        if folder.is_dir():
            return folder
    return None


def find_ucr_file(name: str, split: str) -> Path:
    """The path of ``<name>_<SPLIT>.ts``: under ``$AICANON_DATA/ucr/<name>/`` first, then aeon's bundle."""
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise ValueError(f"name must be a UCR/UEA problem name such as 'GunPoint', got {name!r}")
    check_choice("split", split, _SPLITS)
    file_name = f"{name}_{split.upper()}.ts"
    tried = []
    root = os.environ.get(ENV_DATA)
    if root:
        path = Path(root) / "ucr" / name / file_name
        if path.is_file():
            return path
        tried.append(str(path))
    aeon_dir = _aeon_data_dir()
    if aeon_dir is not None:
        path = aeon_dir / name / file_name
        if path.is_file():
            return path
        tried.append(str(path))
    raise DataUnavailable(
        "ucr",
        f"{name}/{file_name}",
        "https://timeseriesclassification.com/dataset.php",
        "",
        f"not found at {', '.join(tried) or '(no location: ' + ENV_DATA + ' unset and aeon not installed)'}; "
        f"the aeon package bundles {', '.join(BUNDLED)}",
    )


def equalize_lengths(series: list[np.ndarray], length: int, how: str = "interpolate") -> np.ndarray:
    """Stack series ``[channels, length_i]`` into ``[N, channels, length]``: resampled by linear
    interpolation at ``length`` evenly spaced points (the review), or zero-padded at the end (``pad``)."""
    check_choice("how", how, ("interpolate", "pad"))
    out = np.zeros((len(series), series[0].shape[0], length), dtype=np.float64)
    for i, case in enumerate(series):
        current = case.shape[1]
        if current > length:
            raise ValueError(f"series {i} has length {current} > the target length {length}")
        if how == "pad" or current == length:
            out[i, :, :current] = case
            continue
        if current == 1:
            out[i] = case[:, :1]
            continue
        positions = np.linspace(0, current - 1, length)
        for c in range(case.shape[0]):
            out[i, c] = np.interp(positions, np.arange(current), case[c])
    return out


def znormalize(x: np.ndarray) -> np.ndarray:
    """Each series (and each channel) to zero mean and unit standard deviation over time; a constant
    series keeps standard deviation 1 (the review's code)."""
    std = x.std(axis=-1, keepdims=True)
    std[std == 0] = 1.0
    return (x - x.mean(axis=-1, keepdims=True)) / std


@dataclass
class UCRDataset:
    """A problem's official train/test split: ``x_*`` float32 ``[N, channels, length]``, ``y_*`` int64
    indices into ``classes``."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]
    equal_length: bool
    """Whether the files' series all had one length (before any resampling)."""

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def length(self) -> int:
        return int(self.x_train.shape[2])


def load_ucr(name: str, unequal: str = "interpolate", normalize: bool = False) -> UCRDataset:
    """Load the problem ``name`` (e.g. ``"GunPoint"``) with its official train/test split.

    ``unequal`` says what to do with unequal-length problems: ``interpolate`` (to the longest length,
    the review's way), ``pad`` (zeros at the end) or ``error``. ``normalize`` z-normalises every series
    and channel (the review's code does so for the UCR archive). Missing values stay NaN.
    """
    check_choice("unequal", unequal, ("interpolate", "pad", "error"))
    if not isinstance(normalize, bool):
        raise TypeError(f"normalize must be a bool, got {type(normalize).__name__}")
    train = read_ts(find_ucr_file(name, "train"))
    test = read_ts(find_ucr_file(name, "test"))
    if train.classes != test.classes:
        raise ValueError(f"{name}: train and test list different classes: {train.classes} vs {test.classes}")
    if train.series[0].shape[0] != test.series[0].shape[0]:
        raise ValueError(f"{name}: train and test differ in their number of dimensions")
    equal = train.equal_length and test.equal_length
    lengths = {s.shape[1] for s in train.series + test.series}
    if len(lengths) > 1 and unequal == "error":
        raise ValueError(
            f"{name} has series of unequal length ({min(lengths)} to {max(lengths)}); unequal='error'"
        )
    length = max(lengths)
    how = "pad" if unequal == "pad" else "interpolate"
    x_train = equalize_lengths(train.series, length, how)
    x_test = equalize_lengths(test.series, length, how)
    if normalize:
        x_train, x_test = znormalize(x_train), znormalize(x_test)
    index = {label: i for i, label in enumerate(train.classes)}
    return UCRDataset(
        name=name,
        x_train=x_train.astype(np.float32),
        y_train=np.array([index[label] for label in train.labels], dtype=np.int64),
        x_test=x_test.astype(np.float32),
        y_test=np.array([index[label] for label in test.labels], dtype=np.int64),
        classes=train.classes,
        equal_length=equal,
    )
