import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from aicanon.core.checks import (
    check_choice,
    check_float,
    check_int,
    check_probability,
    check_tensor,
    check_token_ids,
)


def test_check_int_accepts_and_returns_ints():
    assert check_int("n", 3) == 3
    assert check_int("n", 0, minimum=0) == 0


@pytest.mark.parametrize("value", [1.0, "2", None, True])
def test_check_int_rejects_non_ints_naming_the_argument(value):
    with pytest.raises(TypeError, match=f"heads must be an int, got {type(value).__name__}"):
        check_int("heads", value)


def test_check_int_rejects_values_below_minimum():
    with pytest.raises(ValueError, match="dim must be >= 1, got 0"):
        check_int("dim", 0)
    with pytest.raises(ValueError, match="size must be >= 0, got -1"):
        check_int("size", -1, minimum=0)


def test_check_token_ids():
    ids = torch.zeros(2, 3, dtype=torch.long)
    assert check_token_ids("input_ids", ids) is ids
    assert check_token_ids("segment_ids", ids.int(), (2, 3)) is not None
    with pytest.raises(
        ValueError, match=r"input_ids must be an integer tensor \[batch, length\], got \(2, 3\) torch.float32"
    ):
        check_token_ids("input_ids", ids.float())
    with pytest.raises(
        ValueError, match=r"segment_ids must be an integer tensor of shape \(2, 4\), got \(2, 3\)"
    ):
        check_token_ids("segment_ids", ids, (2, 4))
    with pytest.raises(ValueError, match="got list"):
        check_token_ids("input_ids", [[1, 2]])
    with pytest.raises(ValueError, match="got"):
        check_token_ids("input_ids", ids[0])


# --- check_int: bounds, None, notes ---------------------------------------------------------------


def test_check_int_maximum_and_interval():
    assert check_int("k", 4, maximum=4) == 4
    assert check_int("k", -7, minimum=None) == -7
    with pytest.raises(ValueError, match=r"^i must be in \[1, 4\], got 5$"):
        check_int("i", 5, 1, 4)
    with pytest.raises(ValueError, match=r"^i must be <= 4, got 5$"):
        check_int("i", 5, minimum=None, maximum=4)


def test_check_int_allow_none_and_note():
    assert check_int("max_length", None, 2, allow_none=True) is None
    with pytest.raises(TypeError, match=r"^max_length must be an int, got NoneType$"):
        check_int("max_length", None, 2)  # None only when asked for
    with pytest.raises(TypeError, match=r"^max_length must be an int or None, got float$"):
        check_int("max_length", 2.0, 2, allow_none=True)
    with pytest.raises(ValueError, match=r"^max_length must be >= 2 \(two tokens\) or None, got 1$"):
        check_int("max_length", 1, 2, allow_none=True, note="two tokens")
    with pytest.raises(TypeError, match=r"^limit must be an int \(per class\) or None, got str$"):
        check_int("limit", "3", allow_none=True, note="per class")


def test_check_int_rejects_numpy_ints_and_bools():
    with pytest.raises(TypeError, match="n must be an int, got int64"):
        check_int("n", np.int64(3))
    with pytest.raises(TypeError, match="n must be an int, got bool"):
        check_int("n", False, minimum=0)


# --- check_float ----------------------------------------------------------------------------------


def test_check_float_accepts_ints_floats_and_numpy_scalars_unchanged():
    for value in (3, 0.5, np.float32(0.25), np.int64(2), float("inf")):
        out = check_float("lr", value)
        assert out is value  # returned unchanged: no conversion, no change in type
    assert check_float("lr", None, allow_none=True) is None


@pytest.mark.parametrize("value", [True, np.True_, "0.1", None, [1.0]])
def test_check_float_rejects_non_numbers(value):
    with pytest.raises(TypeError, match=rf"^lr must be a number, got {type(value).__name__}$"):
        check_float("lr", value)


@pytest.mark.parametrize(
    ("kwargs", "value", "message"),
    [
        ({"minimum": 0.0, "min_inclusive": False}, 0.0, "beta must be > 0.0, got 0.0"),
        ({"minimum": 0}, -1, "beta must be >= 0, got -1"),
        ({"maximum": 1, "max_inclusive": False}, 1.0, "beta must be < 1, got 1.0"),
        ({"maximum": 1}, 1.5, "beta must be <= 1, got 1.5"),
        ({"minimum": 0, "maximum": 0.5, "max_inclusive": False}, 0.5, r"beta must be in \[0, 0.5\), got 0.5"),
        ({"minimum": 0, "maximum": 1, "min_inclusive": False}, 0, r"beta must be in \(0, 1\], got 0"),
        ({}, float("nan"), "beta must be a number, not NaN, got nan"),
        ({"minimum": 0}, float("nan"), "beta must be >= 0, got nan"),
        ({"finite": True}, float("inf"), "beta must be a finite number, got inf"),
        ({"finite": True, "minimum": 0}, float("-inf"), "beta must be finite and >= 0, got -inf"),
        ({"minimum": 0, "note": "0 = off"}, -0.5, r"beta must be >= 0 \(0 = off\), got -0.5"),
        ({"minimum": 0, "allow_none": True}, -0.5, "beta must be >= 0 or None, got -0.5"),
    ],
)
def test_check_float_messages(kwargs, value, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        check_float("beta", value, **kwargs)


def test_check_float_huge_int_is_finite():
    assert check_float("n", 10**400, finite=True, minimum=0) == 10**400


# --- check_probability ----------------------------------------------------------------------------


def test_check_probability():
    assert check_probability("p", 0) == 0
    assert check_probability("p", 1.0) == 1.0
    assert check_probability("p", 0.5, allow_zero=False, allow_one=False) == 0.5
    with pytest.raises(ValueError, match=r"^dropout must be a probability in \[0, 1\), got 1.0$"):
        check_probability("dropout", 1.0, allow_one=False)
    with pytest.raises(ValueError, match=r"^level must be a probability in \(0, 1\), got 0$"):
        check_probability("level", 0, allow_zero=False, allow_one=False)
    with pytest.raises(ValueError, match=r"^p must be a probability in \[0, 1\], got nan$"):
        check_probability("p", float("nan"))
    with pytest.raises(ValueError, match=r"^p must be a probability in \[0, 1\], got -0.1$"):
        check_probability("p", -0.1)
    with pytest.raises(TypeError, match=r"^p must be a probability in \[0, 1\] \(keep rate\), got bool$"):
        check_probability("p", True, note="keep rate")


# --- check_choice ---------------------------------------------------------------------------------


def test_check_choice():
    assert check_choice("mode", "max", ("max", "mean")) == "max"
    assert check_choice("k", 2, [1, 2]) == 2
    with pytest.raises(ValueError, match=r"^mode must be one of \('max', 'mean'\), got 'sum'$"):
        check_choice("mode", "sum", ["max", "mean"])
    with pytest.raises(ValueError, match=r"^k must be one of \(1, 2\) \(Table 2\), got 3$"):
        check_choice("k", 3, (1, 2), note="Table 2")


# --- check_tensor ---------------------------------------------------------------------------------


def test_check_tensor_accepts_and_returns_the_same_object():
    x = torch.zeros(3, 4)
    assert check_tensor("x", x) is x
    assert check_tensor("x", x, dim=2, shape=(None, 4), dtype=torch.float32, floating=True) is x
    assert check_tensor("x", x, dtype=(torch.float64, torch.float32)) is x
    ids = torch.zeros(5, dtype=torch.long)
    assert check_tensor("ids", ids, shape=(5,), floating=False) is ids


def test_check_tensor_messages():
    x = torch.zeros(3, 5)
    with pytest.raises(TypeError, match=r"^x must be a torch.Tensor, got list$"):
        check_tensor("x", [[0.0]])
    with pytest.raises(ValueError, match=r"^x must be a 3-D tensor, got shape \(3, 5\)$"):
        check_tensor("x", x, dim=3)
    with pytest.raises(ValueError, match=r"^boxes must be a tensor of shape \[\*, 4\], got \(3, 5\)$"):
        check_tensor("boxes", x, shape=(None, 4))
    with pytest.raises(ValueError, match=r"^boxes must be a tensor of shape \[\*, 5\], got \(3, 5, 1\)$"):
        check_tensor("boxes", x[..., None], shape=(None, 5))
    with pytest.raises(TypeError, match=r"^x must be a torch.int64 or torch.int32 tensor, got torch.float32"):
        check_tensor("x", x, dtype=(torch.int64, torch.int32))
    with pytest.raises(TypeError, match=r"^x must be a torch.float64 tensor \(Eq. 3\), got torch.float32$"):
        check_tensor("x", x, dtype=torch.float64, note="Eq. 3")
    with pytest.raises(TypeError, match=r"^x must be a floating-point tensor, got torch.int64$"):
        check_tensor("x", x.long(), floating=True)
    with pytest.raises(TypeError, match=r"^x must be a non-floating-point .* tensor, got torch.float32$"):
        check_tensor("x", x, floating=False)


# --- properties -----------------------------------------------------------------------------------


@given(st.integers(-50, 50), st.integers(-20, 20), st.integers(0, 20))
def test_check_int_property(value, low, width):
    high = low + width
    if low <= value <= high:
        assert check_int("n", value, low, high) == value
    else:
        with pytest.raises(ValueError, match=rf"^n must be in \[{low}, {high}\], got {value}$"):
            check_int("n", value, low, high)


_BOUND = st.none() | st.floats(-10, 10)


@given(st.floats(allow_nan=True) | st.integers(-100, 100), _BOUND, _BOUND, st.booleans(), st.booleans())
def test_check_float_property(value, low, high, low_in, high_in):
    """Accepts exactly the non-NaN values inside the bounds, returns them unchanged."""
    kwargs = dict(min_inclusive=low_in, max_inclusive=high_in)
    inside = value == value  # not NaN
    if low is not None:
        inside = inside and (value >= low if low_in else value > low)
    if high is not None:
        inside = inside and (value <= high if high_in else value < high)
    if inside:
        assert check_float("x", value, low, high, **kwargs) is value
    else:
        with pytest.raises(ValueError, match="^x must be .*, got "):
            check_float("x", value, low, high, **kwargs)
