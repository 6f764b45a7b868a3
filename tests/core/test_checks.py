import pytest

from aicanon.core.checks import check_int


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
