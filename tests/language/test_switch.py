"""Switch layer: golden values, routing invariants, parity with transformers' SwitchTransformersSparseMLP,
expert parallelism over 2 gloo processes, bad input."""

import math
import os
import socket

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from aicanon.core.state_dict import load_state_dict_strict
from aicanon.language.switch import (
    SwitchExperts,
    SwitchFFN,
    SwitchRouter,
    expert_capacity,
    from_transformers,
    load_balancing_loss,
    load_coefficient_of_variation,
    router_z_loss,
    scaled_truncated_normal_,
    switch_aux_loss,
    switch_layers,
)

pytestmark = pytest.mark.paper("switch-transformer")


def _naive(layer: SwitchFFN, x: torch.Tensor) -> torch.Tensor:
    """Token by token: Eq. 1's argmax, the capacity count in order (Eq. 3), p * E_i(x) or 0."""
    groups, tokens, _ = x.shape
    capacity = layer.capacity(tokens)
    logits = F.linear(x.float(), layer.router.weight.float())
    probs = logits.softmax(-1)
    out = torch.zeros_like(x)
    experts = layer.experts
    for g in range(groups):
        used = [0] * layer.num_experts
        for t in range(tokens):
            i = int(probs[g, t].argmax())
            if used[i] >= capacity:
                continue  # dropped: zero, the residual carries the token on
            used[i] += 1
            if experts.activation == "relu":
                hidden = torch.relu(x[g, t] @ experts.wi[i])
            else:
                hidden = F.silu(x[g, t] @ experts.wi_0[i]) * (x[g, t] @ experts.wi_1[i])
            out[g, t] = probs[g, t, i] * (hidden @ experts.wo[i])
    return out


# --- golden values --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tokens, experts, factor, minimum, expected",
    [
        (8, 4, 1.0, 1, 2),
        (64, 8, 1.25, 4, 10),
        (64, 8, 1.0, 4, 8),
        (8, 4, 0.5, 1, 1),
        (8, 4, 0.5, 4, 4),
        (8, 2, 3.0, 1, 8),
    ],
)
def test_expert_capacity_golden_values(tokens, experts, factor, minimum, expected):
    # Eq. 3: tokens / experts * capacity factor, floored, at least min_capacity, at most tokens.
    assert expert_capacity(tokens, experts, factor, minimum) == expected


def test_balancing_loss_golden_values():
    n = 4
    # Uniform probabilities and a perfectly balanced assignment: N * sum_i (1/N)(1/N) = 1.
    uniform = torch.full((2, 8, n), 1.0 / n)
    balanced = torch.arange(8).remainder(n).expand(2, 8)
    assert load_balancing_loss(uniform, balanced).item() == pytest.approx(1.0)
    # Every token to expert 0 with probability 1: f_0 = P_0 = 1, loss = N.
    collapsed = F.one_hot(torch.zeros(2, 8, dtype=torch.long), n).float()
    assert load_balancing_loss(collapsed, torch.zeros(2, 8, dtype=torch.long)).item() == pytest.approx(n)
    # By hand, one group of 2 tokens, 2 experts: p = [[.8, .2], [.6, .4]], both choose 0:
    # f = [1, 0], P = [.7, .3]; 2 * (1 * .7 + 0 * .3) = 1.4.
    probs = torch.tensor([[0.8, 0.2], [0.6, 0.4]])
    assert load_balancing_loss(probs, torch.tensor([0, 0])).item() == pytest.approx(1.4)
    # Per group, then averaged: groups with losses 1.4 and 2 * (.5 * .5 + .5 * .5) = 1.0 give 1.2.
    probs2 = torch.stack([probs, torch.tensor([[0.5, 0.5], [0.5, 0.5]])])
    index2 = torch.tensor([[0, 0], [0, 1]])
    assert load_balancing_loss(probs2, index2).item() == pytest.approx(1.2)


def test_router_z_loss_golden_value():
    # Zero logits over N experts: logsumexp = log N, so the z-loss is (log N)^2.
    assert router_z_loss(torch.zeros(3, 5, 8)).item() == pytest.approx(math.log(8) ** 2)
    logits = torch.tensor([[[1.0, 2.0], [0.0, -1.0]]])
    expected = (math.log(math.e + math.e**2) ** 2 + math.log(1 + math.exp(-1)) ** 2) / 2
    assert router_z_loss(logits).item() == pytest.approx(expected)


def test_load_coefficient_of_variation_golden_values():
    assert load_coefficient_of_variation(torch.tensor([5, 5, 5, 5])) == 0.0
    # counts [8, 0, 0, 0]: mean 2, population std sqrt((36 + 3 * 4) / 4) = sqrt(12).
    assert load_coefficient_of_variation(torch.tensor([8, 0, 0, 0])) == pytest.approx(math.sqrt(12) / 2)


def _identity_router_layer(capacity: int) -> SwitchFFN:
    """3 experts on 3-dim tokens; the router weight is 10 * I, so a one-hot token picks its own index."""
    layer = SwitchFFN(3, 4, 3, expert_capacity=capacity)
    with torch.no_grad():
        layer.router.weight.copy_(10 * torch.eye(3))
    return layer


def test_routing_order_and_dropping_by_hand():
    layer = _identity_router_layer(capacity=1)
    # Sequence 0 chooses experts 0, 0, 2, 0; sequence 1 chooses 1, 1, 1, 2.
    choices = torch.tensor([[0, 0, 2, 0], [1, 1, 1, 2]])
    x = F.one_hot(choices, 3).float()
    out = layer(x)
    routing = layer.last_routing
    assert routing.expert_index.tolist() == choices.tolist()
    assert routing.position.tolist() == [[0, 1, 0, 2], [0, 1, 2, 0]]
    # Capacity 1 per sequence: only the first token of each expert is kept (Section 2.2).
    assert routing.kept.tolist() == [[True, False, True, False], [True, False, False, True]]
    assert layer.dropped_fraction == pytest.approx(0.5)
    assert layer.expert_counts.tolist() == [3, 3, 2]
    # Dropped tokens come out as exactly zero, so x + FFN(x) passes them on unchanged (Figure 3).
    assert torch.equal(out[~routing.kept], torch.zeros(4, 3))
    # A kept token's output is p * E_i(x): expert i's ReLU FFN scaled by its softmax probability.
    p = torch.softmax(torch.tensor([10.0, 0.0, 0.0]), 0)[0]
    expected = p * (torch.relu(x[0, 0] @ layer.experts.wi[0]) @ layer.experts.wo[0])
    torch.testing.assert_close(out[0, 0], expected)


def test_initialisation_is_the_scaled_truncated_normal():
    torch.manual_seed(0)
    layer = SwitchFFN(256, 512, 4, init_scale=0.1)
    for weight, fan_in in ((layer.router.weight, 256), (layer.experts.wi, 256), (layer.experts.wo, 512)):
        std = math.sqrt(0.1 / fan_in)
        assert weight.abs().max().item() <= 2 * std + 1e-7  # truncated at two standard deviations
        # A normal truncated at +-2 sigma has standard deviation 0.8796 sigma.
        assert weight.std().item() == pytest.approx(0.8796 * std, rel=0.05)
    # Scale 1.0 (the default Transformer init the paper reduces by 10x) is sqrt(10) times wider.
    wide = scaled_truncated_normal_(torch.empty(20000), fan_in=100, scale=1.0)
    narrow = scaled_truncated_normal_(torch.empty(20000), fan_in=100, scale=0.1)
    assert wide.std().item() / narrow.std().item() == pytest.approx(math.sqrt(10), rel=0.05)


def test_router_runs_in_float32_under_bf16():
    # Selective precision (Section 2.4): bf16 inputs and autocast still give a float32 router.
    torch.manual_seed(0)
    layer = SwitchFFN(8, 16, 4).to(torch.bfloat16)
    x = torch.randn(2, 6, 8, dtype=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x)
    assert out.dtype == torch.bfloat16
    assert layer.last_routing.logits.dtype == torch.float32
    assert layer.last_routing.probs.dtype == torch.float32
    torch.testing.assert_close(layer.last_routing.probs.sum(-1), torch.ones(2, 6))


def test_expert_dropout_acts_only_in_training():
    torch.manual_seed(0)
    layer = SwitchFFN(8, 32, 4, expert_dropout=0.4, capacity_factor=4.0)
    x = torch.randn(2, 8, 8)
    layer.eval()
    evaluated = layer(x)
    torch.testing.assert_close(evaluated, _naive(layer, x))
    layer.train()
    trained = layer(x)
    assert not torch.allclose(trained, evaluated)
    # Without dropout (and without jitter) training and evaluation agree.
    layer.experts.dropout = 0.0
    torch.testing.assert_close(layer(x), evaluated)


def test_jitter_perturbs_the_router_in_training_but_not_the_input():
    torch.manual_seed(0)
    layer = SwitchFFN(8, 16, 4, jitter_noise=0.1, capacity_factor=4.0).train()
    x = torch.randn(2, 8, 8)
    before = x.clone()
    logits = layer.router.logits(x)
    assert torch.equal(x, before)  # transformers multiplies its input in place; we do not
    assert not torch.allclose(logits, F.linear(x, layer.router.weight))
    layer.eval()
    torch.testing.assert_close(layer.router.logits(x), F.linear(x, layer.router.weight))


def test_switch_aux_loss_sums_the_layers():
    torch.manual_seed(0)
    model = nn.Sequential(SwitchFFN(8, 16, 4), nn.Identity(), SwitchFFN(8, 16, 4))
    x = torch.randn(2, 5, 8)
    model(x)
    first, second = switch_layers(model)
    expected = 0.01 * (first.balancing_loss + second.balancing_loss) + 0.001 * (first.z_loss + second.z_loss)
    torch.testing.assert_close(switch_aux_loss(model, 0.01, 0.001), expected)
    # The balancing loss reaches the router through P_i (Eq. 6).
    switch_aux_loss(model).backward()
    assert first.router.weight.grad is not None and first.router.weight.grad.abs().sum() > 0


# --- invariants over many inputs ------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    groups=st.integers(1, 3),
    tokens=st.integers(1, 12),
    experts=st.integers(1, 5),
    capacity=st.integers(1, 6),
    activation=st.sampled_from(["relu", "swiglu"]),
    seed=st.integers(0, 2**16),
)
def test_layer_equals_the_token_by_token_definition(groups, tokens, experts, capacity, activation, seed):
    torch.manual_seed(seed)
    layer = SwitchFFN(6, 10, experts, expert_capacity=capacity, activation=activation, init_scale=1.0)
    x = torch.randn(groups, tokens, 6)
    out = layer(x)
    torch.testing.assert_close(out, _naive(layer, x), atol=1e-5, rtol=1e-5)
    routing = layer.last_routing
    # No expert takes more than its capacity from any group; a token is kept iff its slot is free.
    kept_per_expert = (
        F.one_hot(routing.expert_index, experts)[routing.kept].sum(0) if routing.kept.any() else None
    )
    if kept_per_expert is not None:
        for g in range(groups):
            per_group = F.one_hot(routing.expert_index[g][routing.kept[g]], experts).sum(0)
            assert int(per_group.max()) <= capacity
        assert int(kept_per_expert.sum()) == int(routing.kept.sum())
    counts = F.one_hot(routing.expert_index, experts).sum(1)  # [groups, experts]
    assert int(routing.kept.sum()) == int(counts.clamp(max=capacity).sum())
    # Eq. 4 is bounded: 1 <= N sum f_i P_i is not guaranteed, but 0 < loss <= N is.
    assert 0 < layer.balancing_loss.item() <= experts + 1e-5


@settings(max_examples=15, deadline=None)
@given(tokens=st.integers(2, 10), cut=st.integers(1, 9), seed=st.integers(0, 2**16))
def test_routing_is_causal_and_per_sequence(tokens, cut, seed):
    # Groups are sequences and slots fill in token order, so token t's output depends only on
    # tokens <= t of its own sequence: a decoder stays causal, a batch does not leak across rows.
    cut = min(cut, tokens - 1)
    torch.manual_seed(seed)
    layer = SwitchFFN(4, 8, 3, expert_capacity=2, init_scale=1.0)
    x = torch.randn(2, tokens, 4)
    changed = x.clone()
    changed[0, cut:] = torch.randn(tokens - cut, 4)
    torch.testing.assert_close(layer(changed)[0, :cut], layer(x)[0, :cut])
    torch.testing.assert_close(layer(changed)[1], layer(x)[1])
    torch.testing.assert_close(layer(x[1:])[0], layer(x)[1])


def test_no_token_is_dropped_when_capacity_covers_the_sequence():
    torch.manual_seed(1)
    layer = SwitchFFN(8, 16, 4, capacity_factor=4.0)
    layer(torch.randn(3, 9, 8))
    assert layer.last_routing.kept.all() and layer.dropped_fraction == 0.0


# --- parity with transformers ---------------------------------------------------------------------


def _reference(hidden, ffn, experts, capacity, seed):
    modeling = pytest.importorskip("transformers.models.switch_transformers.modeling_switch_transformers")
    from transformers import SwitchTransformersConfig

    config = SwitchTransformersConfig(
        d_model=hidden, d_ff=ffn, num_experts=experts, expert_capacity=capacity,
        router_jitter_noise=0.0, dropout_rate=0.0, dense_act_fn="relu",
    )  # fmt: skip
    torch.manual_seed(seed)
    reference = modeling.SwitchTransformersSparseMLP(config).eval()
    with torch.no_grad():
        for parameter in reference.parameters():
            parameter.normal_(0.0, 0.5)
    return modeling, reference


@pytest.mark.parity
@pytest.mark.parametrize(
    "hidden, ffn, experts, capacity, batch, tokens",
    [(8, 16, 4, 64, 3, 10), (8, 16, 4, 2, 3, 10), (16, 24, 8, 1, 2, 16), (6, 12, 1, 3, 2, 7)],
)
def test_parity_with_transformers_sparse_mlp(hidden, ffn, experts, capacity, batch, tokens):
    _, reference = _reference(hidden, ffn, experts, capacity, seed=experts + capacity)
    ours = SwitchFFN(hidden, ffn, experts, expert_capacity=capacity).eval()
    load_state_dict_strict(ours, from_transformers(reference.state_dict()))
    x = torch.randn(batch, tokens, hidden)
    x_ours, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    out, expected = ours(x_ours), reference(x_ref)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)

    # Routing decisions: transformers' capacity-masked one-hot dispatch mask equals ours.
    with torch.no_grad():
        dispatch, top_prob, _ = reference.router(x)
    routing = ours.last_routing
    ours_dispatch = F.one_hot(routing.expert_index, experts) * routing.kept.unsqueeze(-1)
    assert torch.equal(ours_dispatch, dispatch.to(ours_dispatch.dtype))
    torch.testing.assert_close(routing.gate, top_prob.squeeze(-1), atol=1e-6, rtol=0)
    if capacity < tokens:
        assert (~routing.kept).any() or experts == 1  # the low-capacity cases really drop tokens

    # Gradients of the input and of every weight.
    weight = torch.randn_like(out)
    (out * weight).sum().backward()
    (expected * weight).sum().backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad, atol=1e-5, rtol=0)
    torch.testing.assert_close(
        ours.router.weight.grad, reference.router.classifier.weight.grad, atol=1e-5, rtol=0
    )
    for i in range(experts):
        expert = reference.experts[f"expert_{i}"]
        expected_wi = (
            torch.zeros_like(expert.wi.weight) if expert.wi.weight.grad is None else expert.wi.weight.grad
        )
        expected_wo = (
            torch.zeros_like(expert.wo.weight) if expert.wo.weight.grad is None else expert.wo.weight.grad
        )
        torch.testing.assert_close(ours.experts.wi.grad[i], expected_wi.t(), atol=1e-5, rtol=0)
        torch.testing.assert_close(ours.experts.wo.grad[i], expected_wo.t(), atol=1e-5, rtol=0)


@pytest.mark.parity
@pytest.mark.parametrize("experts", [2, 4, 8])
def test_parity_of_the_auxiliary_losses(experts):
    modeling = pytest.importorskip("transformers.models.switch_transformers.modeling_switch_transformers")
    torch.manual_seed(experts)
    logits = (2 * torch.randn(3, 11, experts)).requires_grad_()
    logits_ref = logits.detach().clone().requires_grad_()
    ours = load_balancing_loss(logits.softmax(-1), logits.argmax(-1))
    # transformers' model feeds softmax(logits) and argmax(logits) to its loss, as here.
    reference = modeling.load_balancing_loss_func(logits_ref.softmax(-1), logits_ref.argmax(-1))
    torch.testing.assert_close(ours, reference, atol=1e-6, rtol=0)
    ours.backward()
    reference.backward()
    torch.testing.assert_close(logits.grad, logits_ref.grad, atol=1e-6, rtol=0)
    torch.testing.assert_close(
        router_z_loss(logits), modeling.router_z_loss_func(logits_ref), atol=1e-5, rtol=0
    )


@pytest.mark.parity
def test_layer_balancing_loss_equals_transformers_on_its_router():
    modeling, reference = _reference(8, 16, 4, 3, seed=5)
    ours = SwitchFFN(8, 16, 4, expert_capacity=3).eval()
    load_state_dict_strict(ours, from_transformers(reference.state_dict()))
    x = torch.randn(2, 9, 8)
    ours(x)
    _, _, logits = reference.router(x)
    expected = modeling.load_balancing_loss_func(logits.softmax(-1), logits.argmax(-1))
    torch.testing.assert_close(ours.balancing_loss, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(ours.z_loss, modeling.router_z_loss_func(logits), atol=1e-5, rtol=0)


@pytest.mark.parity
def test_from_transformers_takes_one_layer_of_a_whole_model_and_one_rank_s_experts():
    _, reference = _reference(8, 16, 4, 3, seed=7)
    prefix = "encoder.block.1.layer.1.mlp."
    whole = {prefix + k: v for k, v in reference.state_dict().items()}
    whole["encoder.block.1.layer.1.layer_norm.weight"] = torch.ones(8)  # another module: ignored
    state = from_transformers(whole, prefix, experts=range(2, 4))
    assert state["experts.wi"].shape == (2, 8, 16) and state["experts.wo"].shape == (2, 16, 8)
    assert torch.equal(state["experts.wi"][0], reference.experts["expert_2"].wi.weight.t())
    assert torch.equal(state["experts.wo"][1], reference.experts["expert_3"].wo.weight.t())
    assert torch.equal(state["router.weight"], reference.router.classifier.weight)
    assert set(from_transformers(whole, prefix)) == set(SwitchFFN(8, 16, 4).state_dict())


# --- expert parallelism over 2 gloo processes -----------------------------------------------------

_EP = {"hidden": 8, "ffn": 12, "experts": 4, "capacity": 3, "batch": 4, "tokens": 10}


def _expert_parallel_worker(rank: int, world: int, port: int, folder: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        reference = torch.load(os.path.join(folder, "single.pt"), weights_only=True)
        layer = SwitchFFN(_EP["hidden"], _EP["ffn"], _EP["experts"], expert_capacity=_EP["capacity"],
                          process_group=dist.group.WORLD)  # fmt: skip
        local = slice(layer.expert_offset, layer.expert_offset + layer.local_experts)
        with torch.no_grad():
            layer.router.weight.copy_(reference["router"])
            layer.experts.wi.copy_(reference["wi"][local])
            layer.experts.wo.copy_(reference["wo"][local])
        rows = slice(rank * _EP["batch"] // world, (rank + 1) * _EP["batch"] // world)
        x = reference["x"][rows].clone().requires_grad_()
        out = layer(x)
        (out * reference["weight"][rows]).sum().backward()
        router_grad = layer.router.weight.grad.clone()
        dist.all_reduce(router_grad)  # the router is replicated: its gradient is the sum over ranks
        torch.save(
            {"out": out.detach(), "x_grad": x.grad, "wi_grad": layer.experts.wi.grad,
             "wo_grad": layer.experts.wo.grad, "router_grad": router_grad},
            os.path.join(folder, f"rank{rank}.pt"),
        )  # fmt: skip
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_expert_parallel_over_two_gloo_processes_equals_one_process(tmp_path):
    import torch.multiprocessing as mp

    torch.manual_seed(0)
    single = SwitchFFN(
        _EP["hidden"], _EP["ffn"], _EP["experts"], expert_capacity=_EP["capacity"], init_scale=1.0
    )
    x = torch.randn(_EP["batch"], _EP["tokens"], _EP["hidden"], requires_grad=True)
    weight = torch.randn(_EP["batch"], _EP["tokens"], _EP["hidden"])
    out = single(x)
    assert (~single.last_routing.kept).any()  # some tokens are dropped, so capacity is tested too
    (out * weight).sum().backward()
    torch.save(
        {"router": single.router.weight.detach(), "wi": single.experts.wi.detach(),
         "wo": single.experts.wo.detach(), "x": x.detach(), "weight": weight},
        tmp_path / "single.pt",
    )  # fmt: skip
    world = 2
    mp.spawn(_expert_parallel_worker, args=(world, _free_port(), str(tmp_path)), nprocs=world, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(world)]
    torch.testing.assert_close(torch.cat([r["out"] for r in ranks]), out.detach(), atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.cat([r["x_grad"] for r in ranks]), x.grad, atol=1e-5, rtol=0)
    # Each rank's experts got the gradient from every rank's tokens: the single process's gradient.
    torch.testing.assert_close(
        torch.cat([r["wi_grad"] for r in ranks]), single.experts.wi.grad, atol=1e-5, rtol=0
    )
    torch.testing.assert_close(
        torch.cat([r["wo_grad"] for r in ranks]), single.experts.wo.grad, atol=1e-5, rtol=0
    )
    for r in ranks:
        torch.testing.assert_close(r["router_grad"], single.router.weight.grad, atol=1e-5, rtol=0)


# --- bad input ------------------------------------------------------------------------------------


def test_bad_constructor_arguments_are_rejected():
    with pytest.raises(ValueError, match="capacity_factor must be finite and > 0.0, got 0.0"):
        SwitchFFN(8, 16, 4, capacity_factor=0.0)
    with pytest.raises(ValueError, match="capacity_factor must be finite and > 0.0, got -1.0"):
        SwitchFFN(8, 16, 4, capacity_factor=-1.0)
    with pytest.raises(TypeError, match="capacity_factor must be a number, got str"):
        SwitchFFN(8, 16, 4, capacity_factor="1")
    with pytest.raises(ValueError, match="num_experts must be >= 1, got 0"):
        SwitchFFN(8, 16, 0)
    with pytest.raises(TypeError, match="num_experts must be an int, got float"):
        SwitchFFN(8, 16, 2.0)
    with pytest.raises(ValueError, match="hidden_size must be >= 1, got 0"):
        SwitchFFN(0, 16, 4)
    with pytest.raises(ValueError, match="expert_capacity must be >= 1, got 0"):
        SwitchFFN(8, 16, 4, expert_capacity=0)
    with pytest.raises(ValueError, match=r"expert_dropout must be a probability in \[0, 1\), got 1.0"):
        SwitchFFN(8, 16, 4, expert_dropout=1.0)
    with pytest.raises(ValueError, match=r"jitter_noise must be a probability in \[0, 1\), got -0.1"):
        SwitchFFN(8, 16, 4, jitter_noise=-0.1)
    with pytest.raises(ValueError, match="activation must be one of .*got 'gelu'"):
        SwitchFFN(8, 16, 4, activation="gelu")
    with pytest.raises(ValueError, match="init_scale must be finite and > 0.0, got 0.0"):
        SwitchFFN(8, 16, 4, init_scale=0.0)
    with pytest.raises(ValueError, match="num_experts must be >= 1, got 0"):
        SwitchRouter(8, 0)
    with pytest.raises(ValueError, match="ffn_size must be >= 1, got 0"):
        SwitchExperts(2, 8, 0)


def test_bad_layer_input_is_rejected():
    layer = SwitchFFN(8, 16, 4)
    with pytest.raises(ValueError, match=r"x must have shape \[batch, tokens, 8\], got \(5, 8\)"):
        layer(torch.randn(5, 8))
    with pytest.raises(ValueError, match=r"x must have shape \[batch, tokens, 8\], got \(2, 5, 7\)"):
        layer(torch.randn(2, 5, 7))
    with pytest.raises(ValueError, match=r"x must have shape \[batch, tokens, 8\], got \(1, 2, 5, 8\)"):
        layer(torch.randn(1, 2, 5, 8))
    with pytest.raises(ValueError, match="at least one token"):
        layer(torch.randn(2, 0, 8))
    with pytest.raises(TypeError, match="x must be a floating-point tensor, got dtype torch.int64"):
        layer(torch.ones(2, 5, 8, dtype=torch.long))
    with pytest.raises(TypeError, match="x must be a torch.Tensor .* got list"):
        layer([[0.0] * 8])


def test_bad_function_arguments_are_rejected():
    probs = torch.full((2, 4, 3), 1 / 3)
    index = torch.zeros(2, 4, dtype=torch.long)
    with pytest.raises(
        ValueError, match=r"expert_index must have router_probs' leading shape \(2, 4\), got \(2, 3\)"
    ):
        load_balancing_loss(probs, index[:, :3])
    with pytest.raises(ValueError, match=r"expert_index must lie in \[0, 3\), got values in \[0, 3\]"):
        load_balancing_loss(probs, index + torch.tensor([0, 0, 0, 3]))
    with pytest.raises(TypeError, match="expert_index must be an integer tensor, got torch.float32"):
        load_balancing_loss(probs, index.float())
    with pytest.raises(TypeError, match="router_probs must be a floating-point tensor"):
        load_balancing_loss(index, index)
    with pytest.raises(ValueError, match=r"router_probs must be \[groups, tokens, experts\]"):
        load_balancing_loss(torch.rand(3), torch.zeros(3, dtype=torch.long)[:0])
    with pytest.raises(ValueError, match="router_logits must be"):
        router_z_loss(torch.zeros(4))
    with pytest.raises(ValueError, match="tokens_per_group must be >= 1, got 0"):
        expert_capacity(0, 4, 1.0)
    with pytest.raises(ValueError, match="capacity_factor must be finite and > 0.0, got -2.0"):
        expert_capacity(8, 4, -2.0)
    with pytest.raises(ValueError, match="counts must be a non-empty 1-D tensor"):
        load_coefficient_of_variation(torch.zeros(2, 2))
    with pytest.raises(ValueError, match="counts must sum to a positive number, got 0.0"):
        load_coefficient_of_variation(torch.zeros(3))
    with pytest.raises(ValueError, match="model must contain at least one SwitchFFN"):
        switch_aux_loss(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="must have run forward"):
        switch_aux_loss(SwitchFFN(4, 4, 2))
    with pytest.raises(ValueError, match="balancing_coef must be finite and >= 0.0, got -1.0"):
        switch_aux_loss(SwitchFFN(4, 4, 2), balancing_coef=-1.0)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got int"):
        switch_layers(3)
    with pytest.raises(ValueError, match="state_dict must contain 'router.classifier.weight'"):
        from_transformers({})
    theirs = {"router.classifier.weight": torch.zeros(2, 4)}
    for i in range(2):
        theirs.update({f"experts.expert_{i}.{w}.weight": torch.zeros(4, 4) for w in ("wi", "wo")})
    with pytest.raises(
        ValueError, match=r"missing keys \['experts.wi_0', 'experts.wi_1'\], unexpected keys \['experts.wi'\]"
    ):  # transformers' experts are ReLU FFNs
        load_state_dict_strict(SwitchFFN(4, 4, 2, activation="swiglu"), from_transformers(theirs))
    with pytest.raises(ValueError, match=r"missing \['experts.expert_1.wo.weight'\] of experts \[0, 1\]"):
        from_transformers({k: v for k, v in theirs.items() if k != "experts.expert_1.wo.weight"})
    with pytest.raises(ValueError, match=r"not a Switch layer's: \['experts.expert_0.wi_0.weight'\]"):
        from_transformers({**theirs, "experts.expert_0.wi_0.weight": torch.zeros(4, 4)})
    with pytest.raises(TypeError, match="experts must be a sequence of expert indices"):
        from_transformers(theirs, experts=[-1])
    with pytest.raises(TypeError, match="prefix must be a str, got int"):
        from_transformers(theirs, prefix=3)
