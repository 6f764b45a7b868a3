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


def test_check_token_ids():
    import torch

    from aicanon.core.checks import check_token_ids

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
