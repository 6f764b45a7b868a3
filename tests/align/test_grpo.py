"""GRPO (aicanon.align.grpo): group advantages (4.1.2), process advantages (4.1.3), the KL estimator
(Eq. 4), the clipped objective (Eq. 3); parity of the loss and its gradient with trl's
GRPOTrainer._compute_loss (loss_type="grpo"); the trainer on a tiny Llama (learning, checkpoint and
resume, iterative GRPO); bad input."""

from __future__ import annotations

import copy
import types
from collections import defaultdict

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aicanon.align.grpo import (
    GRPO,
    GRPOConfig,
    completion_logprobs,
    group_advantages,
    grpo_loss,
    iterative_grpo,
    kl_estimator,
    process_advantages,
)
from aicanon.core import load_checkpoint, save_checkpoint
from aicanon.language.llama import Llama, LlamaConfig

pytestmark = pytest.mark.paper("deepseekmath-grpo")

ALPHABET = "abcdefgh.\n"
TINY = {
    "vocab_size": len(ALPHABET) + 2,
    "hidden_size": 16,
    "intermediate_size": 32,
    "num_layers": 1,
    "num_heads": 2,
    "max_seq_len": 64,
}


class CharTokenizer:
    """Ids 0 (pad) and 1 (EOS), then one id per character of ALPHABET."""

    def encode(self, text: str) -> list[int]:
        return [ALPHABET.index(c) + 2 for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(ALPHABET[i - 2] for i in ids if i >= 2)


def count_a(prompts: list[str], completions: list[str]) -> list[float]:
    return [c.count("a") / 6 for c in completions]


def tiny_trainer(reward=count_a, seed: int = 0, **overrides) -> GRPO:
    torch.manual_seed(seed)
    settings_ = {"group_size": 4, "lr": 3e-2, "max_new_tokens": 6, "stop": ("\n",)} | overrides
    return GRPO(Llama(LlamaConfig(**TINY)), CharTokenizer(), reward, GRPOConfig(**settings_), eos_token_id=1)


# -- advantages -------------------------------------------------------------------------------------


def test_group_advantages_golden():
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0])
    out = group_advantages(rewards, 4, eps=0.0)
    std = torch.tensor([1.0, 0.0, 0.0, 1.0]).std()  # unbiased: sqrt(1/3)
    assert torch.allclose(out[:4], (torch.tensor([1.0, 0, 0, 1]) - 0.5) / std)
    # A group whose rewards are all equal carries no signal: advantage 0 (eps keeps it finite).
    assert torch.equal(group_advantages(rewards, 4)[4:], torch.zeros(4))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=6, max_size=6), st.floats(0.5, 3), st.floats(-2, 2))
def test_group_advantages_invariants(values, scale, shift):
    rewards = torch.tensor(values)
    out = group_advantages(rewards, 3)
    # Zero mean in each group; invariant to an affine change of the reward (scale > 0) when std >> eps.
    assert torch.allclose(out.view(2, 3).sum(1), torch.zeros(2), atol=1e-4)
    if bool((rewards.view(2, 3).std(1) > 0.1).all()):
        assert torch.allclose(group_advantages(rewards * scale + shift, 3), out, atol=1e-3)


def test_process_advantages_golden():
    # Group of 2: output 0 has steps ending at tokens 1 and 3 (rewards 1, 0); output 1 one step at 2 (1).
    out = process_advantages([[1.0, 0.0], [1.0]], [[1, 3], [2]], 2, 5, eps=0.0)
    values = torch.tensor([1.0, 0.0, 1.0])
    norm = (values - values.mean()) / values.std()
    expected = torch.zeros(2, 5)
    expected[0, :2] += norm[0]
    expected[0, :4] += norm[1]
    expected[1, :3] += norm[2]
    assert torch.allclose(out, expected)
    # Advantage of token t = sum of the normalised rewards of steps ending at or after t.
    assert out[0, 4] == 0 and torch.isclose(out[0, 2], norm[1])


def test_process_equals_outcome_with_one_step_at_the_end():
    rewards = [0.0, 1.0, 1.0, 0.5]
    out = process_advantages([[r] for r in rewards], [[4]] * 4, 4, 5)
    assert torch.allclose(out, group_advantages(torch.tensor(rewards), 4).unsqueeze(1).expand(4, 5))


# -- the objective ----------------------------------------------------------------------------------


def test_kl_estimator_golden_and_unbiased():
    assert kl_estimator(torch.tensor([0.0]), torch.tensor([0.0])).item() == 0.0
    lp, ref = torch.tensor([-1.0]), torch.tensor([-2.0])
    ratio = torch.exp(ref - lp)
    assert torch.allclose(kl_estimator(lp, ref), ratio - torch.log(ratio) - 1)
    # Unbiased: E_{x~π}[k3] = KL(π || π_ref), checked exactly on a 3-outcome distribution.
    pi, pref = torch.tensor([0.2, 0.5, 0.3]), torch.tensor([0.4, 0.4, 0.2])
    k3 = (pi * kl_estimator(pi.log(), pref.log())).sum()
    assert torch.allclose(k3, (pi * (pi / pref).log()).sum())
    assert bool((kl_estimator(torch.randn(50), torch.randn(50)) >= 0).all())


def test_grpo_loss_golden():
    lp = torch.tensor([[-1.0, -2.0, -0.5]], requires_grad=True)
    old = torch.tensor([[-1.0, -2.5, -0.5]])
    ref = torch.tensor([[-1.2, -2.0, -0.4]])
    mask = torch.tensor([[1, 1, 0]])
    adv = torch.tensor([2.0])
    loss, stats = grpo_loss(lp, old, ref, adv, mask, clip_eps=0.2, beta=0.1)
    ratio = torch.exp(lp.detach() - old)
    terms = -torch.minimum(ratio * 2, ratio.clamp(0.8, 1.2) * 2) + 0.1 * kl_estimator(lp.detach(), ref)
    assert torch.allclose(loss, terms[0, :2].mean())
    assert stats["clip_fraction"] == pytest.approx(0.5)  # token 2's ratio e^0.5 is clipped
    loss.backward()
    assert lp.grad[0, 2] == 0  # masked token


def test_grpo_loss_averages_per_sequence_not_per_token():
    # 1/|o_i| inside (Eq. 3): a long output weighs the same as a short one.
    lp = torch.zeros(2, 4)
    mask = torch.tensor([[1, 0, 0, 0], [1, 1, 1, 1]])
    adv = torch.tensor([1.0, -1.0])
    loss, _ = grpo_loss(lp, lp, lp, adv, mask, beta=0.0)
    assert loss.item() == pytest.approx(0.0)


def _trl_loss(lp, old, ref, adv, mask, beta, eps):
    """trl 1.16's GRPOTrainer._compute_loss (loss_type="grpo", token-level importance sampling),
    driven with fixed per-token log-probabilities in place of a model's."""
    from trl import GRPOTrainer

    accelerator = types.SimpleNamespace(
        reduce=lambda t, reduction="sum": t, gather=lambda t: t, gather_for_metrics=lambda t: t
    )
    stub = types.SimpleNamespace(
        _get_per_token_logps_and_entropies=lambda *a, **k: (lp, torch.zeros_like(lp), None),
        top_entropy_quantile=1.0,
        off_policy_mask_threshold=None,
        importance_sampling_level="token",
        beta=beta,
        args=types.SimpleNamespace(use_bias_correction_kl=False, delta=None),
        loss_type="grpo",
        epsilon_low=eps,
        epsilon_high=eps,
        use_vllm=False,
        model=types.SimpleNamespace(training=True),
        current_gradient_accumulation_steps=1,
        _entropy_bonus_enabled=False,
        aux_loss_enabled=False,
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
        accelerator=accelerator,
    )
    inputs = {
        "prompt_ids": torch.zeros(lp.shape[0], 1, dtype=torch.long),
        "prompt_mask": torch.ones(lp.shape[0], 1, dtype=torch.long),
        "completion_ids": torch.zeros(lp.shape, dtype=torch.long),
        "completion_mask": mask,
        "advantages": adv,
        "old_per_token_logps": old,
        "ref_per_token_logps": ref,
    }
    return GRPOTrainer._compute_loss(stub, None, inputs)


@pytest.mark.parity
@pytest.mark.parametrize("beta", [0.0, 0.04])
def test_loss_and_gradient_equal_trl(beta):
    pytest.importorskip("trl")
    from trl.trainer.utils import nanstd

    gen = torch.Generator().manual_seed(0)
    b, t, g = 8, 6, 4
    base = -torch.rand(b, t, generator=gen) * 3
    old = base + 0.3 * torch.randn(b, t, generator=gen)  # ratios beyond the clip range too
    ref = base + 0.2 * torch.randn(b, t, generator=gen)
    mask = torch.ones(b, t, dtype=torch.long)
    mask[1, 3:] = 0
    mask[5, 1:] = 0
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.5, 0.2, 0.9, 0.9])
    # trl's group advantages (_generate_and_score_completions, scale_rewards="group").
    grouped = rewards.view(-1, g)
    trl_adv = (grouped - grouped.mean(1, keepdim=True)) / (nanstd(grouped, dim=1).unsqueeze(1) + 1e-4)
    adv = group_advantages(rewards, g)
    assert torch.allclose(adv, trl_adv.reshape(-1), atol=1e-6)

    lp_ours = base.clone().requires_grad_(True)
    lp_trl = base.clone().requires_grad_(True)
    ours, _ = grpo_loss(lp_ours, old, ref, adv, mask, clip_eps=0.2, beta=beta)
    theirs = _trl_loss(lp_trl, old, ref, adv, mask, beta, 0.2)
    assert torch.allclose(ours, theirs, atol=1e-6)
    ours.backward()
    theirs.backward()
    assert torch.allclose(lp_ours.grad, lp_trl.grad, atol=1e-6)


# -- the trainer -----------------------------------------------------------------------------------


def test_completion_logprobs_match_a_direct_computation():
    torch.manual_seed(0)
    model = Llama(LlamaConfig(**TINY)).eval()
    ids = torch.tensor([[0, 3, 4, 5, 6], [2, 3, 4, 5, 7]])
    mask = torch.tensor([[0, 1, 1, 1, 1], [1, 1, 1, 1, 1]])
    out = completion_logprobs(model, ids, mask, 2)
    alone = model(ids[:1, 1:]).log_softmax(-1)
    assert torch.allclose(out[0], alone[0, [1, 2], [5, 6]], atol=1e-5)


def test_rollout_shapes_stop_and_masks():
    trainer = tiny_trainer()
    batch = trainer.rollout(["ab", "c"])
    assert batch.input_ids.shape[0] == 8 and batch.completion_mask.shape[1] <= 6
    assert len(batch.completions) == 8 and batch.prompts[:4] == ["ab"] * 4
    assert batch.advantages.shape == (8,) and batch.old_logprobs.shape == batch.completion_mask.shape
    assert all("\n" not in c for c in batch.completions)
    # Masked tokens are padding; the policy has not moved yet, so old == reference.
    assert torch.allclose(batch.old_logprobs, batch.ref_logprobs)
    assert bool(
        (batch.input_ids[:, -batch.completion_mask.shape[1] :][batch.completion_mask == 0] == 0).all()
    )


def test_grpo_raises_reward_on_a_tiny_model():
    trainer = tiny_trainer(group_size=8, beta=0.0)
    first = [trainer.step(["ab", "cd"])["reward"] for _ in range(3)]
    for _ in range(25):
        stats = trainer.step(["ab", "cd"])
    last = [trainer.step(["ab", "cd"])["reward"] for _ in range(3)]
    assert sum(last) / 3 > sum(first) / 3 + 0.2
    assert stats["kl"] == 0.0


def test_zero_advantage_does_not_move_the_policy():
    # Every output rewarded the same -> zero advantages -> with beta = 0 the gradient is zero.
    trainer = tiny_trainer(reward=lambda p, c: [1.0] * len(c), beta=0.0)
    before = copy.deepcopy(trainer.policy.state_dict())
    trainer.step(["ab"])
    assert all(torch.equal(before[k], v) for k, v in trainer.policy.state_dict().items())


def test_process_supervision_runs_and_maps_steps_to_tokens():
    def steps(prompts, completions):
        return [[(1, float(c[:1] == "a")), (len(c), c.count("a") / 6)] for c in completions]

    trainer = tiny_trainer(reward=steps, supervision="process")
    batch = trainer.rollout(["ab"])
    assert batch.advantages.shape == batch.completion_mask.shape
    trainer.optimise(batch)


def test_checkpoint_resume_equals_uninterrupted(tmp_path):
    prompts = ["ab", "cd"]
    full = tiny_trainer(seed=1)
    for _ in range(4):
        full.step(prompts)
    part = tiny_trainer(seed=1)
    for _ in range(2):
        part.step(prompts)
    save_checkpoint(tmp_path / "ckpt", part.state_dict())
    resumed = tiny_trainer(seed=5)  # different init and sampler: everything must come from the state
    resumed.load_state_dict(load_checkpoint(tmp_path / "ckpt"))
    for _ in range(2):
        resumed.step(prompts)
    for key, value in full.policy.state_dict().items():
        assert torch.allclose(value, resumed.policy.state_dict()[key], atol=1e-6), key
    assert resumed.steps == 4
    with pytest.raises(ValueError, match="different GRPOConfig"):
        tiny_trainer(beta=0.5).load_state_dict(part.state_dict())


def test_iterative_grpo_resets_reference_and_replays():
    trainer = tiny_trainer()
    seen: list[int] = []
    log = iterative_grpo(
        trainer,
        lambda it, step: ["ab"],
        iterations=3,
        steps_per_iteration=2,
        update_reward_model=lambda samples: seen.append(len(samples)),
    )
    assert len(log) == 6 and [s["iteration"] for s in log] == [0, 0, 1, 1, 2, 2]
    # 8 fresh samples per iteration plus 10 % of the earlier ones.
    assert seen == [8, 8 + 1, 8 + 2]
    # After the last iteration's reset, the reference equals the policy of the start of iteration 2.
    assert not all(
        torch.equal(trainer.reference.state_dict()[k], v) for k, v in trainer.policy.state_dict().items()
    )


# -- bad input --------------------------------------------------------------------------------------


def test_bad_input():
    with pytest.raises(ValueError, match="group_size"):
        GRPOConfig(group_size=1)
    with pytest.raises(ValueError, match="group_size"):
        group_advantages(torch.ones(4), 1)
    with pytest.raises(ValueError, match="beta"):
        GRPOConfig(beta=-0.1)
    with pytest.raises(ValueError, match="beta"):
        grpo_loss(
            torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1), torch.ones(1, 2), beta=-1
        )
    with pytest.raises(ValueError, match="multiple of group_size"):
        group_advantages(torch.ones(5), 2)
    with pytest.raises(ValueError, match="finite"):
        group_advantages(torch.tensor([1.0, float("nan")]), 2)
    with pytest.raises(ValueError, match="advantages"):
        grpo_loss(torch.zeros(2, 3), torch.zeros(2, 3), None, torch.zeros(3), torch.ones(2, 3), beta=0.0)
    with pytest.raises(ValueError, match="supervision"):
        GRPOConfig(supervision="dense")
    with pytest.raises(ValueError, match="reward_fn"):
        tiny_trainer(reward=lambda p, c: [0.0]).step(["ab"])  # wrong shape
    with pytest.raises(ValueError, match="finite"):
        tiny_trainer(reward=lambda p, c: [float("inf")] * len(c)).step(["ab"])
    with pytest.raises(ValueError, match="prompts"):
        tiny_trainer().step("ab")
    with pytest.raises(TypeError, match="reward_fn"):
        GRPO(Llama(LlamaConfig(**TINY)), CharTokenizer(), "reward")
