"""Tests of aicanon.align.rlhf: InstructGPT's PPO(-ptx) for language models."""

from __future__ import annotations

import math

import pytest
import torch

from aicanon.align.reward_model import RewardModel
from aicanon.align.rlhf import (
    RLHFConfig,
    RLHFTrainer,
    ValueModel,
    advantages_and_returns,
    kl_penalised_rewards,
    lm_loss,
    response_mask,
    token_logprobs,
    whiten,
)
from aicanon.core.checkpoint import CheckpointMismatch
from aicanon.language.llama import Llama, LlamaConfig

pytestmark = pytest.mark.paper("instructgpt")

EOS = 1


def tiny_llama(seed: int = 0) -> Llama:
    torch.manual_seed(seed)
    return Llama(
        LlamaConfig(
            vocab_size=10, hidden_size=16, intermediate_size=32, num_layers=1, num_heads=2, max_seq_len=64
        )
    )


def count_threes(sequences, mask):
    """Toy reward: how many 3s the row holds (prompt + response)."""
    return ((sequences == 3) & mask.bool()).float().sum(1)


def make_trainer(
    cfg: RLHFConfig | None = None, reward=count_threes, seed: int = 0, ptx_data=None
) -> RLHFTrainer:
    policy = tiny_llama(seed)
    reference = tiny_llama(seed)
    value = ValueModel.from_reward_model(RewardModel(policy))
    cfg = cfg or RLHFConfig(max_new_tokens=6, minibatch_size=8, lr=3e-3, epochs=2)
    return RLHFTrainer(
        policy, reference, value, reward, cfg, eos_token_id=EOS, pad_token_id=EOS, ptx_data=ptx_data
    )


def prompts(n: int = 16, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, 10, (n, 3), generator=g)
    mask = torch.ones_like(ids)
    mask[: n // 2, 0] = 0  # some left padding
    ids[: n // 2, 0] = EOS
    return ids, mask


# ----- golden values and invariants --------------------------------------------------------------


def test_response_mask_stops_after_first_eos():
    ids = torch.tensor([[4, 5, EOS, EOS, EOS], [EOS, 2, 3, 4, 5], [2, 3, 4, 5, 6]])
    assert response_mask(ids, EOS).tolist() == [[1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]]
    assert response_mask(ids, None).eq(1).all()


def direct_gae(rewards, values, mask, gamma, lam):
    """A_t = sum_l (gamma lam)^l delta_{t+l} within each response, V after its end 0 (GAE, Eq. 16)."""
    b, length = rewards.shape
    adv = torch.zeros(b, length, dtype=torch.float64)
    for i in range(b):
        n = int(mask[i].sum())
        v = [float(values[i, t]) for t in range(n)] + [0.0]
        deltas = [float(rewards[i, t]) + gamma * v[t + 1] - v[t] for t in range(n)]
        for t in range(n):
            adv[i, t] = sum((gamma * lam) ** k * deltas[t + k] for k in range(n - t))
    return adv, (adv + values.double()) * mask


@pytest.mark.parity
@pytest.mark.parametrize(("gamma", "lam"), [(1.0, 0.95), (0.9, 0.5), (1.0, 1.0), (0.99, 0.0)])
def test_gae_equals_the_paper_equation(gamma, lam):
    g = torch.Generator().manual_seed(1)
    rewards = torch.randn(4, 7, generator=g, dtype=torch.float64)
    values = torch.randn(4, 7, generator=g, dtype=torch.float64)
    mask = torch.tensor([[1] * 7, [1] * 3 + [0] * 4, [1] + [0] * 6, [1] * 5 + [0] * 2])
    adv, ret = advantages_and_returns(rewards * mask, values * mask, mask, gamma, lam)
    want_adv, want_ret = direct_gae(rewards, values * mask, mask, gamma, lam)
    torch.testing.assert_close(adv, want_adv, atol=1e-10, rtol=0)
    torch.testing.assert_close(ret, want_ret, atol=1e-10, rtol=0)
    assert adv[mask == 0].eq(0).all()


def test_kl_penalised_rewards_sum_to_the_bracket_of_eq2():
    g = torch.Generator().manual_seed(2)
    logp, ref = torch.randn(3, 5, generator=g), torch.randn(3, 5, generator=g)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    scores = torch.tensor([0.5, -1.0, 2.0])
    rewards, log_ratio = kl_penalised_rewards(scores, logp, ref, mask, beta=0.1)
    want = scores - 0.1 * ((logp - ref) * mask).sum(1)
    torch.testing.assert_close(rewards.sum(1), want)
    assert rewards[0, 2] == pytest.approx(float(scores[0] - 0.1 * (logp[0, 2] - ref[0, 2])), abs=1e-6)
    assert log_ratio[mask == 0].eq(0).all()


def test_whiten_matches_the_formula_and_normalises():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 6, generator=g, dtype=torch.float64) * 3 + 2
    mask = torch.ones(4, 6, dtype=torch.long)
    mask[1, 4:] = 0
    out = whiten(x, mask)
    sel = x[mask.bool()]
    torch.testing.assert_close(out[mask.bool()], (sel - sel.mean()) / torch.sqrt(sel.var() + 1e-8))
    assert float(out[mask.bool()].mean()) == pytest.approx(0.0, abs=1e-9)
    assert float(out[mask.bool()].std()) == pytest.approx(1.0, abs=1e-6)
    kept = whiten(x, mask, shift_mean=False)
    assert float(kept[mask.bool()].mean()) == pytest.approx(float(sel.mean()), abs=1e-9)


@pytest.mark.parity
def test_token_logprobs_equal_trl_selective_log_softmax():
    trl_utils = pytest.importorskip("trl.trainer.utils")
    model = tiny_llama()
    ids = torch.randint(0, 10, (3, 9), generator=torch.Generator().manual_seed(4))
    attention = torch.ones_like(ids)
    ours = token_logprobs(model, ids, attention, 4, temperature=0.7)
    logits = model(ids, attention_mask=attention)[:, 3:-1] / 0.7
    theirs = trl_utils.selective_log_softmax(logits, ids[:, 4:])
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


@pytest.mark.parity
def test_response_mask_equals_trl_first_true_indices():
    experimental = pytest.importorskip("trl.experimental.utils")
    ids = torch.tensor([[4, 5, EOS, EOS, EOS], [EOS, 2, 3, 4, 5], [2, 3, 4, 5, 6]])
    # trl's PPO: the response ends at the first stop token (inclusive).
    lengths = experimental.first_true_indices(ids == EOS)
    want = (torch.arange(ids.shape[1]) <= lengths[:, None]).long()
    assert torch.equal(response_mask(ids, EOS), want)


@pytest.mark.parity
def test_trainer_losses_equal_a_direct_computation():
    """The masked token-level PPO losses of a mini-batch equal Eq. 7 (PPO paper) and the clipped value
    loss computed by hand, and PPO-ptx adds exactly gamma times the LM loss."""
    trainer = make_trainer(
        RLHFConfig(max_new_tokens=6, clip_range=0.1, clip_range_value=0.05, value_coef=0.3)
    )
    ids, mask = prompts()
    batch = trainer.rollout(ids, mask)
    # perturb the behaviour log-probabilities so that some ratios clip
    batch["logprobs"] = (batch["logprobs"] + 0.3 * torch.randn_like(batch["logprobs"])) * batch["mask"]
    batch["values"] = (batch["values"] + 0.2 * torch.randn_like(batch["values"])) * batch["mask"]
    loss, stats = trainer.losses(batch)
    start = int(batch["response_start"])
    m = batch["mask"].double()
    new = token_logprobs(trainer.policy, batch["sequences"], batch["attention_mask"], start).double()
    ratio = torch.exp(new - batch["logprobs"].double())
    adv = batch["advantages"].double()
    surrogate = torch.min(ratio * adv, ratio.clamp(0.9, 1.1) * adv)
    policy = -(surrogate * m).sum() / m.sum()
    v = trainer.value_model(batch["sequences"], batch["attention_mask"])[:, start - 1 : -1].double()
    old, ret = batch["values"].double(), batch["returns"].double()
    clipped = old + (v - old).clamp(-0.05, 0.05)
    vf = (torch.max((v - ret) ** 2, (clipped - ret) ** 2) * m).sum() / m.sum()
    assert stats["clip_fraction"] > 0
    assert float(loss.detach()) == pytest.approx(float((policy + 0.3 * vf).detach()), abs=1e-5)


def test_ptx_adds_gamma_times_the_pretraining_loss():
    data = torch.randint(0, 10, (500,), generator=torch.Generator().manual_seed(5))
    cfg = RLHFConfig(max_new_tokens=4, ptx_coef=2.5, ptx_batch_size=4, ptx_seq_len=8)
    trainer = make_trainer(cfg, ptx_data=data)
    batch = trainer.rollout(*prompts())
    state = trainer.shuffler.get_state()
    loss, stats = trainer.losses(batch)
    trainer.shuffler.set_state(state)
    window = trainer._ptx_batch()
    assert stats["ptx_loss"] == pytest.approx(float(lm_loss(trainer.policy, window).detach()), abs=1e-6)
    plain = stats["policy_loss"] + cfg.value_coef * stats["value_loss"]
    assert float(loss.detach()) == pytest.approx(plain + 2.5 * stats["ptx_loss"], abs=1e-5)


def test_value_model_starts_as_the_reward_model():
    rm = RewardModel(tiny_llama())
    value = ValueModel.from_reward_model(rm)
    ids = torch.randint(0, 10, (2, 6))
    mask = torch.ones_like(ids)
    torch.testing.assert_close(value(ids, mask)[:, -1], rm(ids, mask))


def test_rollout_kl_is_zero_at_the_start_and_ppo_raises_the_reward():
    trainer = make_trainer()
    ids, mask = prompts()
    first = trainer.rollout(ids, mask)
    assert first["kl"].abs().max() < 1e-4  # policy == reference
    assert first["mask"][:, 0].eq(1).all()
    scores = [trainer.step(ids, mask)["score"] for _ in range(12)]
    assert sum(scores[-3:]) / 3 > sum(scores[:3]) / 3 + 0.5


def test_resumed_run_equals_uninterrupted_run(tmp_path):
    ids, mask = prompts()
    straight = make_trainer()
    for _ in range(3):
        straight.step(ids, mask)
    first = make_trainer()
    for _ in range(2):
        first.step(ids, mask)
    first.save(tmp_path / "ckpt")
    torch.manual_seed(123)  # the global RNG is restored from the checkpoint
    resumed = make_trainer(seed=0)
    resumed.policy.apply(lambda m: m.reset_parameters() if hasattr(m, "reset_parameters") else None)
    assert resumed.resume(tmp_path / "ckpt")
    assert resumed.steps_done == 2
    resumed.step(ids, mask)
    for a, b in zip(straight.policy.parameters(), resumed.policy.parameters(), strict=True):
        assert torch.equal(a, b)
    for a, b in zip(straight.value_model.parameters(), resumed.value_model.parameters(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(CheckpointMismatch):
        make_trainer(RLHFConfig(beta=0.5)).resume(tmp_path / "ckpt")
    assert not make_trainer().resume(tmp_path / "empty")


# ----- bad input ---------------------------------------------------------------------------------


def test_reward_function_of_wrong_shape_or_non_finite_is_rejected():
    ids, mask = prompts(4)
    with pytest.raises(ValueError, match="reward_fn must return a tensor of shape"):
        make_trainer(reward=lambda s, m: torch.zeros(len(s), 1)).rollout(ids, mask)
    with pytest.raises(ValueError, match="non-finite"):
        make_trainer(reward=lambda s, m: torch.full((len(s),), math.nan)).rollout(ids, mask)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("beta", -0.1, "beta"),
        ("ptx_coef", -1.0, "ptx_coef"),
        ("clip_range", 0.0, "clip_range"),
        ("lam", 1.5, "lam"),
    ],
)
def test_bad_config_is_rejected(field, value, match):
    with pytest.raises(ValueError, match=match):
        RLHFConfig(**{field: value})


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="ptx_data"):
        make_trainer(RLHFConfig(ptx_coef=1.0))
    with pytest.raises(ValueError, match="beta"):
        kl_penalised_rewards(torch.zeros(1), torch.zeros(1, 2), torch.zeros(1, 2), torch.ones(1, 2), -1.0)
    with pytest.raises(ValueError, match="scores"):
        kl_penalised_rewards(torch.zeros(2), torch.zeros(1, 2), torch.zeros(1, 2), torch.ones(1, 2), 0.1)
    with pytest.raises(ValueError, match="left-padded"):
        make_trainer().rollout(torch.tensor([[2, 3]]), torch.tensor([[1, 0]]))
    with pytest.raises(ValueError, match="at least 2"):
        whiten(torch.zeros(1, 3), torch.tensor([[1, 0, 0]]))
    with pytest.raises(TypeError, match="reward_model"):
        ValueModel.from_reward_model(tiny_llama())
