"""DPO (aicanon.align.dpo): Eq. 7, its implicit rewards, sequence log-probabilities, batching, the
trainer; parity of loss and gradients with trl's DPOTrainer; bad input."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from aicanon.align.dpo import (
    DPOConfig,
    collate_preferences,
    dpo_loss,
    log_ratios,
    preference_metrics,
    sequence_logprobs,
    train_dpo,
)
from aicanon.language.llama import Llama, LlamaConfig

pytestmark = pytest.mark.paper("dpo")

TINY = {
    "vocab_size": 32,
    "hidden_size": 16,
    "intermediate_size": 32,
    "num_layers": 2,
    "num_heads": 2,
    "max_seq_len": 64,
}
PAIRS = [  # (prompt, chosen, rejected) token ids
    ([3, 4], [11, 12, 2], [18, 2]),
    ([5], [13, 2], [19, 20, 2]),
    ([6, 7, 8], [14, 15, 16, 2], [21, 2]),
    ([9, 10], [17, 2], [22, 23, 24, 2]),
]


def _tiny_llama(seed: int = 0) -> Llama:
    torch.manual_seed(seed)
    return Llama(LlamaConfig(**TINY))


def _logps(values):
    return torch.tensor(values, dtype=torch.float32)


floats = st.floats(-30.0, 30.0, allow_nan=False, width=32)


# ----- golden values and invariants: the loss --------------------------------------------------------


def test_loss_golden_value_eq7():
    # h = (-1 - -2) - (-3 - -1) = 1 - (-2) = 3; beta = 0.5: -log sigma(1.5) = log(1 + e^-1.5)
    loss, chosen, rejected = dpo_loss(
        _logps([-1.0]), _logps([-3.0]), _logps([-2.0]), _logps([-1.0]), beta=0.5
    )
    assert loss.item() == pytest.approx(math.log1p(math.exp(-1.5)), abs=1e-6)
    assert chosen.item() == pytest.approx(0.5) and rejected.item() == pytest.approx(-1.0)


def test_conservative_and_ipo_golden_values():
    args = (_logps([-1.0]), _logps([-3.0]), _logps([-2.0]), _logps([-1.0]))  # h = 3
    loss, _, _ = dpo_loss(*args, beta=0.5, label_smoothing=0.1)
    expected = 0.9 * math.log1p(math.exp(-1.5)) + 0.1 * math.log1p(math.exp(1.5))
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    loss, _, _ = dpo_loss(*args, beta=0.25, loss_type="ipo")  # (3 - 1 / 0.5)^2 = 1
    assert loss.item() == pytest.approx(1.0, abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(st.lists(floats, min_size=1, max_size=6), st.floats(0.01, 2.0), st.floats(0.0, 0.49))
def test_policy_equal_to_reference_gives_ln2_and_zero_rewards(logps, beta, epsilon):
    x = _logps(logps)
    y = x.flip(0) - 1.0
    loss, chosen, rejected = dpo_loss(x, y, x.clone(), y.clone(), beta=beta, label_smoothing=epsilon)
    assert loss.item() == pytest.approx(math.log(2.0), abs=1e-6)
    assert torch.all(chosen == 0) and torch.all(rejected == 0)
    ipo, _, _ = dpo_loss(x, y, x.clone(), y.clone(), beta=beta, loss_type="ipo")
    assert ipo.item() == pytest.approx((1.0 / (2.0 * beta)) ** 2, rel=1e-5)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(floats, floats, floats, floats), min_size=1, max_size=6), st.floats(0.01, 2.0), floats
)
def test_loss_depends_only_on_log_ratio_difference(rows, beta, shift):
    pc, pr, rc, rr = (_logps(list(c)) for c in zip(*rows, strict=True))
    loss, _, _ = dpo_loss(pc, pr, rc, rr, beta=beta)
    # Adding the same constant to a completion's policy and reference log-probs leaves Eq. 7 unchanged
    # (the log-ratio is the same); so does adding one to both chosen and rejected policy log-ratios.
    shifted, _, _ = dpo_loss(pc + shift, pr, rc + shift, rr, beta=beta)
    both, _, _ = dpo_loss(pc + shift, pr + shift, rc, rr, beta=beta)
    assert shifted.item() == pytest.approx(loss.item(), abs=1e-4)
    assert both.item() == pytest.approx(loss.item(), abs=1e-4)
    # Swapping chosen and rejected: -log sigma(x) + log sigma(-x) = -x, so L(h) - L(-h) = -beta mean(h).
    swapped, _, _ = dpo_loss(pr, pc, rr, rc, beta=beta)
    h = (pc - rc) - (pr - rr)
    assert (loss - swapped).item() == pytest.approx(-(beta * h).mean().item(), abs=1e-3)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(floats, floats, floats, floats), min_size=1, max_size=5), st.floats(0.01, 2.0))
def test_gradient_is_the_papers_weighted_update(rows, beta):
    # Section 4, "What does the DPO update do?": grad of L wrt log pi(y_w) is -beta sigma(r_l - r_w) / N,
    # and the opposite for log pi(y_l), with r the implicit rewards.
    pc, pr, rc, rr = (_logps(list(c)).requires_grad_() for c in zip(*rows, strict=True))
    loss, chosen, rejected = dpo_loss(pc, pr, rc.detach(), rr.detach(), beta=beta)
    loss.backward()
    weight = torch.sigmoid(rejected - chosen) * beta / len(rows)
    assert torch.allclose(pc.grad, -weight, atol=1e-6)
    assert torch.allclose(pr.grad, weight, atol=1e-6)


def test_loss_falls_as_the_margin_grows():
    h = torch.linspace(-5, 5, 21)
    losses = [dpo_loss(v[None], _logps([0.0]), _logps([0.0]), _logps([0.0]), beta=0.3)[0].item() for v in h]
    assert all(a > b for a, b in itertools.pairwise(losses))


def test_preference_metrics_golden():
    metrics = preference_metrics(_logps([0.2, -0.1, 0.0]), _logps([0.1, 0.3, 0.0]))
    assert metrics["accuracy"] == pytest.approx(1 / 3)  # the tie counts as wrong (trl)
    assert metrics["margin"] == pytest.approx((0.1 - 0.4 + 0.0) / 3)
    assert metrics["chosen_reward"] == pytest.approx(0.1 / 3)


# ----- batching and sequence log-probabilities -------------------------------------------------------


def test_collate_golden_layout():
    # The layout of trl's DataCollatorForPreference (its docstring example), written out by hand.
    batch = collate_preferences([[1, 2, 3], [7, 8]], [[4, 5], [9]], [[6], [10, 11]])
    assert batch.input_ids.tolist() == [[1, 2, 3, 4, 5], [7, 8, 9, 0, 0], [1, 2, 3, 6, 0], [7, 8, 10, 11, 0]]
    assert batch.attention_mask.tolist() == [
        [1, 1, 1, 1, 1],
        [1, 1, 1, 0, 0],
        [1, 1, 1, 1, 0],
        [1, 1, 1, 1, 0],
    ]
    assert batch.loss_mask.tolist() == [[0, 0, 0, 1, 1], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 1, 1, 0]]
    assert batch.num_pairs == 2


class _Uniform(nn.Module):
    """Logits of zeros: every token has probability 1 / vocab."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.vocab = vocab
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, ids, attention_mask=None):
        return torch.zeros(*ids.shape, self.vocab) + self.dummy


def test_sequence_logprobs_golden_uniform_model():
    batch = collate_preferences([[1, 2, 3], [7, 8]], [[4, 5], [9]], [[6], [10, 11]])
    logps = sequence_logprobs(_Uniform(16), batch.input_ids, batch.attention_mask, batch.loss_mask)
    lengths = torch.tensor([2.0, 1.0, 1.0, 2.0])
    assert torch.allclose(logps, -lengths * math.log(16))
    mean = sequence_logprobs(
        _Uniform(16), batch.input_ids, batch.attention_mask, batch.loss_mask, average=True
    )
    assert torch.allclose(mean, torch.full((4,), -math.log(16)))


def test_sequence_logprobs_equal_unbatched_and_unpadded_sums():
    model = _tiny_llama().eval()
    batch = collate_preferences(*zip(*PAIRS, strict=True))
    logps = sequence_logprobs(model, batch.input_ids, batch.attention_mask, batch.loss_mask)
    rows = [p + c for p, c, _ in PAIRS] + [p + r for p, _, r in PAIRS]
    starts = [len(p) for p, _, _ in PAIRS] * 2
    for i, (ids, start) in enumerate(zip(rows, starts, strict=True)):
        logits = model(torch.tensor([ids]))[0]
        token = F.log_softmax(logits[:-1], -1).gather(-1, torch.tensor(ids[1:])[:, None]).squeeze(-1)
        assert logps[i].item() == pytest.approx(token[start - 1 :].sum().item(), abs=1e-5)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 6))
def test_sequence_logprobs_ignore_extra_padding(extra):
    model = _tiny_llama().eval()
    batch = collate_preferences(*zip(*PAIRS, strict=True))
    base = sequence_logprobs(model, batch.input_ids, batch.attention_mask, batch.loss_mask)
    pad = lambda t: torch.cat([t, torch.zeros(t.shape[0], extra, dtype=t.dtype)], 1)
    padded = sequence_logprobs(model, pad(batch.input_ids), pad(batch.attention_mask), pad(batch.loss_mask))
    assert torch.allclose(base, padded, atol=1e-5)


def test_log_ratios_zero_for_a_copy_and_no_gradient():
    policy = _tiny_llama()
    reference = copy.deepcopy(policy)
    batch = collate_preferences(*zip(*PAIRS, strict=True))
    ratios = log_ratios(policy, reference, batch.input_ids, batch.attention_mask, batch.loss_mask)
    assert torch.allclose(ratios, torch.zeros(8), atol=1e-6) and not ratios.requires_grad


# ----- the trainer -----------------------------------------------------------------------------------


def _train(seed: int = 0, **overrides):
    policy = _tiny_llama(seed)
    reference = copy.deepcopy(policy)
    cfg = DPOConfig(
        **{"beta": 0.5, "lr": 3e-3, "batch_size": 4, "epochs": 30, "warmup_steps": 2, **overrides}
    )
    log = train_dpo(policy, reference, PAIRS, cfg, generator=torch.Generator().manual_seed(seed))
    return policy, reference, log


def test_trainer_starts_at_ln2_learns_the_preferences_and_keeps_the_reference():
    policy, reference, log = _train()
    before = copy.deepcopy(reference.state_dict())
    assert log["loss"][0] == pytest.approx(math.log(2.0), abs=1e-6)
    assert log["loss"][-1] < 0.3 and log["accuracy"][-1] == 1.0 and log["margin"][-1] > 1.0
    assert log["lr"][0] == pytest.approx(3e-3 / 3) and log["lr"][-1] == pytest.approx(3e-3)  # warm-up
    assert all(torch.equal(v, before[k]) for k, v in reference.state_dict().items())
    assert all(p.grad is None for p in reference.parameters())
    # the implicit rewards now order the training pairs
    batch = collate_preferences(*zip(*PAIRS, strict=True))
    ratios = log_ratios(policy, reference, batch.input_ids, batch.attention_mask, batch.loss_mask)
    assert torch.all(ratios[:4] > ratios[4:])


def test_trainer_variants_and_zero_learning_rate():
    for overrides in (
        {"loss_type": "ipo", "beta": 0.1},
        {"label_smoothing": 0.1},
        {"optimizer": "rmsprop", "lr": 1e-3},
    ):
        _, _, log = _train(epochs=15, **overrides)
        assert log["accuracy"][-1] == 1.0, overrides
    policy, reference, log = _train(lr=0.0, epochs=2)
    assert all(torch.equal(a, b) for a, b in zip(policy.parameters(), reference.parameters(), strict=True))
    assert log["loss"] == pytest.approx([math.log(2.0)] * 2, abs=1e-6)


def test_grouped_deduplicated_and_precomputed_steps_equal_the_plain_loss():
    # K = 3 completions per prompt give 3 pairs per prompt that share rows: grouping by prompt scores
    # each distinct row once, precomputing scores the reference once; the loss must not change.
    completions = {(3, 4): ([11, 2], [12, 13, 2], [14, 2]), (5,): ([15, 2], [16, 17, 2], [18, 19, 20, 2])}
    pairs = [
        (list(p), list(c[a]), list(c[b])) for p, c in completions.items() for a, b in ((0, 1), (0, 2), (1, 2))
    ]
    reference = _tiny_llama()
    policy = copy.deepcopy(reference)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(3)))
    batch = collate_preferences(*zip(*pairs, strict=True))
    logps = sequence_logprobs(policy, batch.input_ids, batch.attention_mask, batch.loss_mask)
    ref = sequence_logprobs(reference, batch.input_ids, batch.attention_mask, batch.loss_mask)
    expected, _, _ = dpo_loss(logps[:6], logps[6:], ref[:6], ref[6:], beta=0.2)
    for group, precompute in ((False, False), (True, False), (True, True), (False, True)):
        cfg = DPOConfig(
            beta=0.2,
            lr=0.0,
            batch_size=6,
            warmup_steps=0,
            group_by_prompt=group,
            precompute_reference=precompute,
        )
        log = train_dpo(policy, reference, pairs, cfg)
        assert log["loss"] == [pytest.approx(expected.item(), abs=1e-6)], (group, precompute)
    grouped = DPOConfig(beta=0.2, lr=1e-2, batch_size=3, epochs=3, warmup_steps=0, group_by_prompt=True)
    runs = []
    for precompute in (False, True):
        fresh = copy.deepcopy(policy)
        cfg = dataclasses.replace(grouped, precompute_reference=precompute)
        runs.append(
            train_dpo(fresh, reference, pairs, cfg, generator=torch.Generator().manual_seed(0))["loss"]
        )
    assert runs[0] == pytest.approx(runs[1], abs=1e-5)


def test_trainer_same_seed_same_log():
    assert _train(epochs=3, batch_size=2)[2] == _train(epochs=3, batch_size=2)[2]


# ----- reference parity: trl's DPOTrainer on transformers' LlamaForCausalLM --------------------------


@pytest.fixture
def trl_setup(tmp_path):
    """A fresh trl DPOTrainer (policy and an explicit reference copy) for every test: tests step or
    perturb its models."""
    transformers = pytest.importorskip("transformers")
    datasets = pytest.importorskip("datasets")
    trl = pytest.importorskip("trl")
    from tokenizers import Tokenizer, models, pre_tokenizers

    # A word-level tokenizer whose words are token ids ("t7" -> 7), so the trl side sees exactly PAIRS.
    words = ["<pad>", "<s>", "</s>"] + [f"t{i}" for i in range(3, TINY["vocab_size"])]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<pad>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )
    text = lambda ids: " ".join(f"t{i}" for i in ids)
    data = datasets.Dataset.from_dict(
        {  # trl appends the EOS token (id 2) to each completion itself
            "prompt": [text(p) + " " for p, _, _ in PAIRS],
            "chosen": [text(c[:-1]) for _, c, _ in PAIRS],
            "rejected": [text(r[:-1]) for _, _, r in PAIRS],
        }
    )
    hf_cfg = transformers.LlamaConfig(
        vocab_size=TINY["vocab_size"],
        hidden_size=TINY["hidden_size"],
        intermediate_size=TINY["intermediate_size"],
        num_hidden_layers=TINY["num_layers"],
        num_attention_heads=TINY["num_heads"],
        max_position_embeddings=TINY["max_seq_len"],
        attn_implementation="eager",
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    torch.manual_seed(0)
    policy = transformers.LlamaForCausalLM(hf_cfg)
    reference = copy.deepcopy(policy)
    args = trl.DPOConfig(
        output_dir=str(tmp_path / "trl_dpo"),
        per_device_train_batch_size=len(PAIRS),
        max_steps=1,
        logging_steps=1,
        learning_rate=1e-3,
        beta=0.1,
        report_to="none",
        bf16=False,
        gradient_checkpointing=False,
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
    )
    trainer = trl.DPOTrainer(
        model=policy, ref_model=reference, args=args, train_dataset=data, processing_class=tokenizer
    )
    return trainer, hf_cfg


def _ours_from(hf_model) -> Llama:
    from aicanon.language.llama_weights import config_from_transformers, from_transformers

    cfg = config_from_transformers(hf_model.config)
    ours = Llama(cfg)
    ours.load_state_dict(from_transformers(hf_model.state_dict(), cfg))
    return ours


@pytest.mark.parity
def test_parity_trl_tokenisation_equals_our_pairs(trl_setup):
    trainer, _ = trl_setup
    triples = [(r["prompt_ids"], r["chosen_ids"], r["rejected_ids"]) for r in trainer.train_dataset]
    assert triples == [tuple(list(x) for x in p) for p in PAIRS]
    collated = trainer.data_collator([trainer.train_dataset[i] for i in range(len(PAIRS))])
    ours = collate_preferences(*zip(*PAIRS, strict=True))
    assert torch.equal(collated["input_ids"], ours.input_ids)
    assert torch.equal(collated["attention_mask"], ours.attention_mask)
    assert torch.equal(collated["completion_mask"], ours.loss_mask)


@pytest.mark.parity
def test_parity_trl_first_step_loss_is_ln2_and_ours(trl_setup):
    trainer, _ = trl_setup
    ours = _ours_from(trainer.model)  # before training: policy == reference
    reference = copy.deepcopy(ours)
    trainer.train()
    first = trainer.state.log_history[0]
    assert first["loss"] == pytest.approx(math.log(2.0), abs=1e-6)
    log = train_dpo(ours, reference, PAIRS, DPOConfig(beta=0.1, lr=1e-3, batch_size=4, warmup_steps=0))
    assert log["loss"][0] == pytest.approx(first["loss"], abs=1e-6)
    assert log["accuracy"][0] == first["rewards/accuracies"] == 0.0
    # and the first AdamW step (lr 1e-3, no decay; trl's gradient norm is under its clipping norm 1)
    assert first["grad_norm"] < 1.0
    stepped = {k.removeprefix("model."): p for k, p in trainer.model.named_parameters()}
    for name, p in ours.named_parameters():
        assert torch.allclose(p, stepped[name], atol=1e-5), (name, (p - stepped[name]).abs().max())
    assert not torch.equal(ours.lm_head.weight, reference.lm_head.weight)


@pytest.mark.parity
@pytest.mark.parametrize(("loss_type", "average"), [("sigmoid", False), ("ipo", True)])
def test_parity_trl_loss_and_gradients_for_a_perturbed_policy(trl_setup, loss_type, average):
    trainer, _ = trl_setup
    hf_policy, hf_reference = trainer.model, trainer.ref_model
    with torch.no_grad():  # move the policy away from the reference so the ratios are not zero
        generator = torch.Generator().manual_seed(1)
        for p in hf_policy.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=generator))
    ours, reference = _ours_from(hf_policy), _ours_from(hf_reference)
    inputs = trainer.data_collator([trainer.train_dataset[i] for i in range(len(PAIRS))])
    trainer.loss_types = [loss_type]
    hf_policy.train()
    hf_policy.zero_grad(set_to_none=True)
    trl_loss = trainer.compute_loss(hf_policy, inputs)
    trl_loss.backward()

    batch = collate_preferences(*zip(*PAIRS, strict=True))
    logps = sequence_logprobs(ours, batch.input_ids, batch.attention_mask, batch.loss_mask, average=average)
    ref = sequence_logprobs(
        reference, batch.input_ids, batch.attention_mask, batch.loss_mask, average=average
    )
    loss, chosen, rejected = dpo_loss(logps[:4], logps[4:], ref[:4], ref[4:], beta=0.1, loss_type=loss_type)
    loss.backward()
    assert abs(loss.item() - math.log(2.0)) > 1e-3  # the policy really differs from the reference
    assert loss.item() == pytest.approx(trl_loss.item(), abs=1e-5)
    if loss_type == "sigmoid":
        metrics = trainer._metrics["train"]
        assert metrics["rewards/chosen"][-1] == pytest.approx(chosen.mean().item(), abs=1e-5)
        assert metrics["rewards/margins"][-1] == pytest.approx((chosen - rejected).mean().item(), abs=1e-5)
    hf_grads = {k.removeprefix("model."): p.grad for k, p in hf_policy.named_parameters()}
    for name, p in ours.named_parameters():
        assert torch.allclose(p.grad, hf_grads[name], atol=1e-5), name


# ----- bad input -------------------------------------------------------------------------------------


def test_bad_input_loss():
    x = _logps([-1.0, -2.0])
    with pytest.raises(ValueError, match="ref_rejected_logps must have the shape"):
        dpo_loss(x, x, x, _logps([-1.0]))
    with pytest.raises(TypeError, match="policy_chosen_logps must be a torch.Tensor, got list"):
        dpo_loss([-1.0], x, x, x)
    with pytest.raises(ValueError, match=r"policy_rejected_logps must be a 1-D tensor, got shape \(2, 1\)"):
        dpo_loss(x, x[:, None], x, x)
    with pytest.raises(TypeError, match="ref_chosen_logps must be a floating-point tensor, got torch.int64"):
        dpo_loss(x, x, x.long(), x)
    with pytest.raises(ValueError, match="beta must be finite and > 0, got 0"):
        dpo_loss(x, x, x, x, beta=0)
    with pytest.raises(ValueError, match="beta must be finite and > 0, got inf"):
        dpo_loss(x, x, x, x, beta=float("inf"))
    with pytest.raises(TypeError, match="beta must be a number, got bool"):
        dpo_loss(x, x, x, x, beta=True)
    with pytest.raises(ValueError, match="label_smoothing must be in \\[0, 0.5\\), got 0.5"):
        dpo_loss(x, x, x, x, label_smoothing=0.5)
    with pytest.raises(ValueError, match="loss_type must be one of .* got 'hinge'"):
        dpo_loss(x, x, x, x, loss_type="hinge")
    with pytest.raises(ValueError, match="label_smoothing applies to loss_type='sigmoid' only"):
        dpo_loss(x, x, x, x, loss_type="ipo", label_smoothing=0.1)
    with pytest.raises(ValueError, match="at least one pair"):
        dpo_loss(*[torch.zeros(0)] * 4)
    with pytest.raises(ValueError, match="rejected_rewards must have the shape"):
        preference_metrics(x, x[:1])


def test_bad_input_collate():
    with pytest.raises(ValueError, match="same number .* got 2, 2 and 1"):
        collate_preferences([[1], [2]], [[3], [4]], [[5]])
    with pytest.raises(
        ValueError, match=r"prompts\[0\] \+ chosen\[0\] must fit max_length=4 tokens, got 3 \+ 2 = 5"
    ):
        collate_preferences([[1, 2, 3]], [[4, 5]], [[6]], max_length=4)
    with pytest.raises(ValueError, match=r"prompts\[0\] must hold at least one token"):
        collate_preferences([[]], [[4]], [[6]])
    with pytest.raises(ValueError, match=r"rejected\[0\] must hold at least one token"):
        collate_preferences([[1]], [[4]], [[]])
    with pytest.raises(
        TypeError, match=r"chosen\[0\] must be a 1-D integer tensor or a list of ints, got str"
    ):
        collate_preferences([[1]], ["ab"], [[6]])
    with pytest.raises(ValueError, match=r"prompts\[0\] must be a 1-D integer tensor .*float32"):
        collate_preferences([torch.tensor([1.0])], [[4]], [[6]])
    with pytest.raises(TypeError, match="prompts must be a sequence of token-id sequences, got Tensor"):
        collate_preferences(torch.tensor([[1]]), [[4]], [[6]])
    with pytest.raises(ValueError, match="pad_token_id must be >= 0, got -1"):
        collate_preferences([[1]], [[4]], [[6]], pad_token_id=-1)
    with pytest.raises(TypeError, match="pad_token_id must be an int, got bool"):
        collate_preferences([[1]], [[4]], [[6]], pad_token_id=False)
    with pytest.raises(ValueError, match="max_length must be >= 2 or None, got 1"):
        collate_preferences([[1]], [[4]], [[6]], max_length=1)


def test_bad_input_sequence_logprobs():
    model = _tiny_llama()
    batch = collate_preferences(*zip(*PAIRS, strict=True))
    ids, mask, loss_mask = batch.input_ids, batch.attention_mask, batch.loss_mask
    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got function"):
        sequence_logprobs(lambda x: x, ids, mask, loss_mask)
    with pytest.raises(
        ValueError, match="input_ids must be an integer tensor .* got \\(8, 7\\) torch.float32"
    ):
        sequence_logprobs(model, ids.float(), mask, loss_mask)
    with pytest.raises(
        ValueError, match="loss_mask must be a tensor of input_ids' shape \\(8, 7\\), got \\(8, 5\\)"
    ):
        sequence_logprobs(model, ids, mask, loss_mask[:, :5])
    with pytest.raises(ValueError, match="loss_mask must be 0 in the first column"):
        sequence_logprobs(model, ids, mask, torch.ones_like(loss_mask))
    with pytest.raises(ValueError, match="loss_mask must be 0 wherever attention_mask is 0"):
        sequence_logprobs(
            model, ids, mask, torch.cat([loss_mask[:, :1], torch.ones_like(loss_mask[:, 1:])], 1)
        )
    with pytest.raises(ValueError, match="at least 2 tokens"):
        sequence_logprobs(model, ids[:, :1], mask[:, :1], loss_mask[:, :1])


def test_bad_input_trainer():
    policy = _tiny_llama()
    reference = copy.deepcopy(policy)
    cfg = DPOConfig(batch_size=2, warmup_steps=0)
    with pytest.raises(ValueError, match="reference must be a separate, frozen copy of the policy"):
        train_dpo(policy, policy, PAIRS, cfg)
    with pytest.raises(ValueError, match="pairs must be a non-empty sequence"):
        train_dpo(policy, reference, [], cfg)
    with pytest.raises(ValueError, match=r"pairs\[1\] must be a \(prompt, chosen, rejected\) triple"):
        train_dpo(policy, reference, [PAIRS[0], ([1], [2])], cfg)
    with pytest.raises(TypeError, match="reference must be a torch.nn.Module, got NoneType"):
        train_dpo(policy, None, PAIRS, cfg)
    with pytest.raises(TypeError, match="cfg must be a DPOConfig, got dict"):
        train_dpo(policy, reference, PAIRS, {"beta": 0.1})
    long_prompt = ([5] * 70, [6], [7])  # longer than the model's context of 64
    with pytest.raises(
        ValueError,
        match=r"pairs\[0\]\[0\] \(prompt\) \+ pairs\[0\]\[1\] \(chosen\) must fit max_length=64 tokens, "
        r"got 70 \+ 1",
    ):
        train_dpo(policy, reference, [long_prompt], cfg)
    with pytest.raises(ValueError, match=r"pairs\[1\]\[2\] \(rejected\) must hold at least one token"):
        train_dpo(policy, reference, [PAIRS[0], ([1], [2], [])], cfg)
    with pytest.raises(ValueError, match=r"pairs\[0\]\[0\] \(prompt\) must hold at least one token"):
        train_dpo(policy, reference, [([], [2], [3])], cfg)
    with pytest.raises(TypeError, match=r"pairs\[0\]\[1\] \(chosen\) must be a 1-D integer .* got str"):
        train_dpo(policy, reference, [([1], "ab", [3])], cfg)
    with pytest.raises(ValueError, match="pad_token_id must be >= 0, got -1"):
        train_dpo(policy, reference, PAIRS, cfg, pad_token_id=-1)
    # A bad pair is caught before any step: the policy is left as it was.
    state = copy.deepcopy(policy.state_dict())
    with pytest.raises(ValueError, match=r"pairs\[3\]\[2\] \(rejected\) must hold"):
        train_dpo(policy, reference, [*PAIRS[:3], ([1], [2], [])], cfg)
    assert all(torch.equal(v, state[k]) for k, v in policy.state_dict().items())
    frozen = _tiny_llama().requires_grad_(False)
    with pytest.raises(ValueError, match="policy must have trainable parameters"):
        train_dpo(frozen, reference, PAIRS, cfg)
    for field, value in (
        ("beta", 0.0),
        ("loss_type", "kto"),
        ("label_smoothing", 0.7),
        ("batch_size", 0),
        ("warmup_steps", -1),
        ("optimizer", "sgd"),
        ("max_grad_norm", 0.0),
        ("lr", -1e-3),
        ("epochs", 0),
    ):
        with pytest.raises(ValueError, match=f"DPOConfig.{field} must"):
            DPOConfig(**{field: value})
    for field, value in (("beta", "0.1"), ("batch_size", 2.0), ("warmup_steps", None), ("lr", True)):
        with pytest.raises(TypeError, match=f"DPOConfig.{field} must be an? (int|number), got"):
            DPOConfig(**{field: value})
