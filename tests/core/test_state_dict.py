"""The strict state-dict loader: a golden load, every kind of problem named in one message, integer
buffers never cast, floating tensors cast as copy_ does, tied parameters, long lists truncated."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from aicanon.core.state_dict import check_state_dict, load_state_dict_strict


class Net(nn.Module):
    """A linear layer, an integer buffer (like position ids), a bool buffer and a computed one."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2)
        self.norm = nn.LayerNorm(2)
        self.register_buffer("position_ids", torch.arange(4))
        self.register_buffer("mask", torch.zeros(2, dtype=torch.bool))
        self.register_buffer("table", torch.ones(5), persistent=False)  # computed: never in a state dict


def donor() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {
        "linear.weight": torch.randn(2, 3),
        "linear.bias": torch.randn(2),
        "norm.weight": torch.randn(2),
        "norm.bias": torch.randn(2),
        "position_ids": torch.tensor([3, 1, 4, 1]),
        "mask": torch.tensor([True, False]),
    }


def test_golden_load_copies_every_tensor_in_place():
    model = Net()
    weight = model.linear.weight
    state = donor()
    load_state_dict_strict(model, state)
    for key, value in state.items():
        assert torch.equal(model.state_dict()[key], value), key
    assert model.linear.weight is weight  # copied into, not replaced
    assert model.linear.weight.requires_grad and model.linear.weight.grad is None
    assert model.position_ids.dtype == torch.int64 and model.mask.dtype == torch.bool
    assert torch.equal(model.table, torch.ones(5))  # non-persistent buffers are not asked for
    state["linear.weight"][0, 0] = 100.0
    assert model.linear.weight[0, 0] != 100.0  # a copy, not a view of the input


def test_float64_into_float32_is_cast_and_the_module_keeps_its_dtype():
    model = Net()
    state = {k: (v.double() if v.is_floating_point() else v) for k, v in donor().items()}
    load_state_dict_strict(model, state)
    assert model.linear.weight.dtype == torch.float32
    torch.testing.assert_close(model.linear.weight, state["linear.weight"].float(), atol=0, rtol=0)
    half = Net().to(torch.bfloat16)
    load_state_dict_strict(half, donor())
    assert half.linear.weight.dtype == torch.bfloat16 and half.position_ids.dtype == torch.int64


def test_integer_buffer_is_never_cast():
    for wrong in (torch.tensor([3, 1, 4, 1], dtype=torch.int32), torch.tensor([3.0, 1.0, 4.0, 1.0])):
        model = Net()
        state = {**donor(), "position_ids": wrong}
        with pytest.raises(
            ValueError,
            match=rf"wrong dtypes \['position_ids: expected torch.int64, got {wrong.dtype}'\] "
            r"\(integer and bool tensors are never cast",
        ):
            load_state_dict_strict(model, state)
        assert torch.equal(model.position_ids, torch.arange(4))  # nothing copied
    with pytest.raises(ValueError, match=r"mask: expected torch.bool, got torch.uint8"):
        load_state_dict_strict(Net(), {**donor(), "mask": torch.tensor([1, 0], dtype=torch.uint8)})
    # and no integer becomes a float weight either
    with pytest.raises(ValueError, match=r"norm.bias: expected torch.float32, got torch.int64"):
        load_state_dict_strict(Net(), {**donor(), "norm.bias": torch.tensor([1, 2])})


def test_every_kind_of_problem_is_named_in_one_message():
    model = Net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = donor()
    del state["norm.bias"]
    state["extra.weight"] = torch.zeros(1)
    state["linear.weight"] = torch.zeros(3, 2)
    state["position_ids"] = state["position_ids"].int()
    with pytest.raises(ValueError) as caught:
        load_state_dict_strict(model, state, source="timm tiny checkpoint")
    message = str(caught.value)
    assert message.startswith("timm tiny checkpoint does not match Net: ")
    assert "missing keys ['norm.bias']" in message
    assert "unexpected keys ['extra.weight']" in message
    assert "wrong shapes ['linear.weight: expected (2, 3), got (3, 2)']" in message
    assert "wrong dtypes ['position_ids: expected torch.int64, got torch.int32']" in message
    for key, value in model.state_dict().items():  # all or nothing: no partial load
        assert torch.equal(value, before[key]), key


def test_non_tensors_and_non_modules_are_refused():
    with pytest.raises(TypeError, match=r"state_dict\['linear.bias'\] must be a tensor, got list"):
        load_state_dict_strict(Net(), {**donor(), "linear.bias": [0.0, 1.0]})
    with pytest.raises(TypeError, match="weights.npz must be a mapping of names to tensors, got list"):
        load_state_dict_strict(Net(), [1, 2], source="weights.npz")
    with pytest.raises(TypeError, match="module must be a torch.nn.Module, got dict"):
        load_state_dict_strict({}, donor())
    with pytest.raises(TypeError, match="keys must be str, got int"):
        check_state_dict({0: torch.zeros(1)})
    with pytest.raises(TypeError, match="allow_missing must be a sequence of key prefixes"):
        load_state_dict_strict(Net(), donor(), allow_missing="linear.")


def test_long_lists_are_truncated_with_a_count():
    model = nn.Sequential(*[nn.Linear(1, 1) for _ in range(13)])  # 26 keys
    with pytest.raises(ValueError) as caught:
        load_state_dict_strict(model, {f"x{i}": torch.zeros(1) for i in range(12)})
    message = str(caught.value)
    missing = re.search(r"missing keys (\[.*?\]) \(and 16 more\)", message)
    assert missing is not None, message
    assert missing.group(1).count("'") == 2 * 10  # ten names shown
    unexpected = [f"x{i}" for i in range(10)]
    assert f"unexpected keys {unexpected} (and 2 more)" in message
    assert "'12.bias'" not in message


class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(5, 3)
        self.head = nn.Linear(3, 5, bias=False)
        self.head.weight = self.embed.weight


def test_tied_parameters_need_one_name_and_stay_tied():
    model = Tied()
    weight = torch.randn(5, 3)
    load_state_dict_strict(model, {"embed.weight": weight})
    assert model.head.weight is model.embed.weight and torch.equal(model.head.weight, weight)
    load_state_dict_strict(model, {"head.weight": 2 * weight})
    assert torch.equal(model.embed.weight, 2 * weight)
    load_state_dict_strict(model, {"embed.weight": weight, "head.weight": weight.clone()})  # equal: fine
    with pytest.raises(ValueError, match=r"tied keys given different values \['embed.weight != head.weight'\]"):
        load_state_dict_strict(model, {"embed.weight": weight, "head.weight": weight + 1})
    with pytest.raises(ValueError, match=r"missing keys \['embed.weight', 'head.weight'\]"):
        load_state_dict_strict(model, {})


def test_allow_missing_keeps_the_left_out_part():
    model = Net()
    state = {k: v for k, v in donor().items() if not k.startswith("norm.")}
    norm = {k: v.clone() for k, v in model.norm.state_dict().items()}
    load_state_dict_strict(model, state, allow_missing=("norm.",))
    assert torch.equal(model.norm.weight, norm["weight"]) and torch.equal(model.norm.bias, norm["bias"])
    assert torch.equal(model.linear.weight, state["linear.weight"])
    del state["linear.bias"]
    with pytest.raises(ValueError, match=r"missing keys \['linear.bias'\]"):
        load_state_dict_strict(model, state, allow_missing=("norm.",))
