"""Reward models (aicanon.align.reward_model): InstructGPT's Eq. 1 over all C(K, 2) comparisons of a
prompt, Llama 2's margin (Eq. 2), the last-token scalar head, normalisation, training.

Golden values: hand-computed losses, comparison lists, strength bins and margins. Invariants: the
grouped loss is Eq. 1 written out; the reward reads only the last real token (padding and left/right
padding change nothing; a row scores the same alone or in a batch); normalisation centres the
reference set and keeps orderings. Parity: trl 1.16's RewardTrainer.compute_loss on a tiny random
LlamaForSequenceClassification equals our loss on our RewardModel with the same weights and batch,
with and without the margin column (values and every gradient, float32 atol 1e-5). Bad input: every
public entry point.
"""

from __future__ import annotations

import math
import os
import tempfile
import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from aicanon.align.reward_model import (
    MARGINS,
    STRENGTHS,
    Comparisons,
    RewardModel,
    RewardTrainConfig,
    accuracy_by_strength,
    comparisons,
    from_sequence_classification,
    last_token_index,
    margins,
    normalise_reward_model,
    pairwise_accuracy,
    pairwise_loss,
    ranked_comparisons,
    score_sequences,
    strength_edges,
    strength_levels,
    to_sequence_classification,
    train_reward_model,
)
from aicanon.language.llama import Llama, LlamaConfig

pytestmark = pytest.mark.paper("instructgpt")

TINY = {
    "vocab_size": 23,
    "hidden_size": 16,
    "intermediate_size": 24,
    "num_layers": 2,
    "num_heads": 2,
    "max_seq_len": 32,
}


def _model(seed: int = 0) -> RewardModel:
    torch.manual_seed(seed)
    return RewardModel(Llama(LlamaConfig(**TINY))).eval()


# ----- golden values -------------------------------------------------------------------------------


def test_comparisons_are_all_k_choose_2_pairs():
    assert comparisons(2).tolist() == [[0, 1]]
    assert comparisons(4).tolist() == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]
    for k in range(2, 10):  # InstructGPT's K = 4 ... 9
        assert len(comparisons(k)) == math.comb(k, 2)


def test_ranked_comparisons_golden():
    pairs = ranked_comparisons([[0.1, 0.5, 0.3], [2.0, 2.0], [1.0, -1.0]])
    # prompt 0: completions 0..2; prompt 1: 3, 4 (tied, dropped); prompt 2: 5, 6
    assert pairs.chosen.tolist() == [1, 2, 1, 5]
    assert pairs.rejected.tolist() == [0, 0, 2, 6]
    assert pairs.group.tolist() == [0, 0, 0, 2]
    assert torch.allclose(pairs.gap, torch.tensor([0.4, 0.2, 0.2, 2.0]))
    assert len(pairs) == 4 and pairs.select(torch.tensor([3])).chosen.tolist() == [5]


def test_pairwise_loss_golden():
    r_c, r_r = torch.tensor([1.0, 0.0, 2.0]), torch.tensor([0.0, 0.0, -1.0])
    a, b, c = math.log1p(math.exp(-1.0)), math.log(2.0), math.log1p(math.exp(-3.0))
    assert pairwise_loss(r_c, r_r).item() == pytest.approx((a + b + c) / 3, abs=1e-6)
    # Eq. 1's grouping: prompt 0 holds comparisons 0 and 1, prompt 1 comparison 2; prompts weigh equally.
    grouped = pairwise_loss(r_c, r_r, group=torch.tensor([0, 0, 1]))
    assert grouped.item() == pytest.approx(((a + b) / 2 + c) / 2, abs=1e-6)
    # Eq. 2: m = 1 turns the first comparison's difference 1 into 0, so its loss into ln 2.
    with_margin = pairwise_loss(r_c, r_r, margin=torch.tensor([1.0, 0.0, 0.0]))
    assert with_margin.item() == pytest.approx((b + b + c) / 3, abs=1e-6)
    assert pairwise_loss(r_c, r_r, margin=1.0).item() == pytest.approx(
        (b + math.log1p(math.exp(1.0)) + math.log1p(math.exp(-2.0))) / 3, abs=1e-6
    )


def test_margin_tables_and_strength_bins():
    assert MARGINS["small"] == pytest.approx((0.0, 1 / 3, 2 / 3, 1.0))
    assert MARGINS["large"] == (0.0, 1.0, 2.0, 3.0)
    assert STRENGTHS[-1] == "significantly better" and len(STRENGTHS) == 4
    levels = torch.tensor([0, 1, 2, 3])
    assert margins(levels, "large").tolist() == [0.0, 1.0, 2.0, 3.0]
    assert margins(levels).tolist() == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0])
    gaps = torch.arange(1, 9, dtype=torch.float32)  # 1..8: quartile edges 2.75, 4.5, 6.25
    edges = strength_edges(gaps)
    assert edges.tolist() == pytest.approx([2.75, 4.5, 6.25])
    assert strength_levels(gaps, edges).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert strength_levels(torch.tensor([4.5]), edges).tolist() == [2]  # on an edge: the stronger bin


def test_accuracy_metrics_golden():
    r_c, r_r = torch.tensor([1.0, 0.0, 2.0, -1.0]), torch.tensor([0.0, 0.0, 3.0, -2.0])
    assert pairwise_accuracy(r_c, r_r) == 0.5  # a tie counts as wrong
    by = accuracy_by_strength(r_c, r_r, torch.tensor([0, 0, 3, 3]))
    assert by[0] == 0.5 and by[3] == 0.5 and math.isnan(by[1]) and math.isnan(by[2])


def test_ranked_comparisons_agree_with_preference_pairs():
    """The index form used for one-forward-per-completion batching gives the pairs (and order) that
    aicanon.testbeds.sentiment.preference_pairs gives as text."""
    from aicanon.testbeds.sentiment import preference_pairs

    prompts = ["a ", "b "]
    completions = [["x", "y", "z", "w"], ["u", "v", "t"]]
    scores = [[0.3, -1.0, 0.3, 2.0], [1.0, 0.5, 1.5]]
    flat = [c for row in completions for c in row]
    pairs = ranked_comparisons(scores)
    reference = preference_pairs(prompts, completions, scores)
    assert [
        (flat[c], flat[r]) for c, r in zip(pairs.chosen.tolist(), pairs.rejected.tolist(), strict=True)
    ] == [(p.chosen, p.rejected) for p in reference]
    assert torch.allclose(pairs.gap, torch.tensor([p.reward_chosen - p.reward_rejected for p in reference]))


def test_last_token_index():
    mask = torch.tensor([[1, 1, 0, 0], [0, 0, 1, 1], [1, 1, 1, 1], [0, 1, 0, 0]])
    assert last_token_index(mask).tolist() == [1, 3, 3, 1]


# ----- invariants ----------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    k=st.integers(2, 6),
    prompts=st.integers(1, 4),
    seed=st.integers(0, 2**16),
    margin=st.floats(0.0, 3.0),
)
def test_grouped_loss_is_eq1_written_out(k, prompts, seed, margin):
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randn(prompts, k, generator=g, dtype=torch.float64)
    pairs = comparisons(k)
    r_c = rewards[:, pairs[:, 0]].flatten()
    r_r = rewards[:, pairs[:, 1]].flatten()
    group = torch.arange(prompts).repeat_interleave(len(pairs))
    ours = pairwise_loss(r_c, r_r, torch.full_like(r_c, margin), group)
    # Eq. 1 (with Eq. 2's margin): -1/C(K,2) * sum over the pairs of each prompt, then the mean over prompts.
    explicit = torch.stack(
        [
            -sum(torch.log(torch.sigmoid(rewards[p, i] - rewards[p, j] - margin)) for i, j in pairs.tolist())
            / math.comb(k, 2)
            for p in range(prompts)
        ]
    ).mean()
    assert torch.allclose(ours, explicit, atol=1e-10)
    # Every prompt has C(K, 2) pairs, so the grouped mean is also trl's plain mean.
    assert torch.allclose(ours, pairwise_loss(r_c, r_r, margin), atol=1e-10)
    assert float(ours) > 0


@settings(max_examples=40, deadline=None)
@given(d=st.floats(-5, 5), m=st.floats(0, 3), extra=st.floats(0.01, 2))
def test_loss_is_monotone_in_the_difference_and_the_margin(d, m, extra):
    r = torch.zeros(1, dtype=torch.float64)
    base = pairwise_loss(torch.tensor([d], dtype=torch.float64), r, m)
    assert pairwise_loss(torch.tensor([d + extra], dtype=torch.float64), r, m) < base
    assert pairwise_loss(torch.tensor([d], dtype=torch.float64), r, m + extra) > base
    assert torch.allclose(base, F.softplus(torch.tensor(-(d - m), dtype=torch.float64)))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), levels=st.integers(2, 6), n=st.integers(8, 60))
def test_strength_levels_fill_equal_bins(seed, levels, n):
    gaps = torch.rand(n * levels, generator=torch.Generator().manual_seed(seed)) + 1e-3
    counts = torch.bincount(strength_levels(gaps, strength_edges(gaps, levels)), minlength=levels)
    assert int(counts.sum()) == n * levels
    assert int(counts.max() - counts.min()) <= 1  # distinct values: quantile bins differ by at most one


def test_reward_reads_only_the_last_real_token_and_ignores_padding():
    model = _model()
    g = torch.Generator().manual_seed(1)
    seqs = [torch.randint(1, 23, (n,), generator=g) for n in (5, 9, 3)]
    alone = torch.stack([model(s[None]) for s in seqs]).flatten()
    right = torch.zeros(3, 9, dtype=torch.long)
    left = torch.zeros(3, 9, dtype=torch.long)
    right_mask = torch.zeros(3, 9, dtype=torch.bool)
    left_mask = torch.zeros(3, 9, dtype=torch.bool)
    for i, s in enumerate(seqs):
        right[i, : len(s)], right_mask[i, : len(s)] = s, True
        left[i, 9 - len(s) :], left_mask[i, 9 - len(s) :] = s, True
    with torch.no_grad():
        r_right = model(right, right_mask)
        r_left = model(left, left_mask)
        junk = right.clone()
        junk[~right_mask] = 7  # different pad ids change nothing
        r_junk = model(junk, right_mask)
    assert torch.allclose(r_right, alone, atol=1e-5)
    assert torch.allclose(r_left, alone, atol=1e-5)
    assert torch.allclose(r_junk, r_right, atol=1e-6)
    # The reward is the head applied to the trunk's final normalised state at the last real token.
    with torch.no_grad():
        hidden = model.backbone(seqs[1][None])[0, -1]
        assert torch.allclose(model(seqs[1][None])[0], model.score.weight[0] @ hidden, atol=1e-6)
    # Causality: tokens after the last real one cannot matter, tokens before it do.
    changed = right.clone()
    changed[0, 0] = (changed[0, 0] % 22) + 1
    with torch.no_grad():
        assert not torch.allclose(model(changed, right_mask)[0], r_right[0])


def test_reward_model_leaves_the_backbone_alone():
    torch.manual_seed(0)
    lm = Llama(LlamaConfig(**TINY))
    head = lm.lm_head.weight.clone()
    rm = RewardModel(lm)
    assert isinstance(lm.lm_head, torch.nn.Linear) and torch.equal(lm.lm_head.weight, head)
    assert rm.backbone.embed_tokens.weight is not lm.embed_tokens.weight
    assert "backbone.lm_head.weight" not in rm.state_dict()


def test_normalisation_centres_the_reference_set_and_keeps_orderings():
    model = _model()
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(1, 23, (12, 7), generator=g)
    mask = torch.ones_like(ids, dtype=torch.bool)
    before = score_sequences(model, ids, mask)
    shift, scale = normalise_reward_model(model, ids, mask)
    after = score_sequences(model, ids, mask)
    assert abs(float(after.mean())) < 1e-5 and scale == 1.0
    assert torch.allclose(after, before - shift, atol=1e-5)
    shift2, scale2 = normalise_reward_model(model, ids, mask, unit_std=True)
    unit = score_sequences(model, ids, mask)
    assert shift2 == pytest.approx(shift, abs=1e-5) and scale2 > 0
    assert abs(float(unit.mean())) < 1e-5 and float(unit.std()) == pytest.approx(1.0, abs=1e-4)
    assert torch.equal(torch.argsort(unit), torch.argsort(before))


def test_state_dict_round_trip_through_the_sequence_classification_layout():
    model = _model(3)
    other = _model(4)
    missing, unexpected = other.load_state_dict(
        from_sequence_classification(to_sequence_classification(model)), strict=False
    )
    assert set(missing) == {"reward_shift", "reward_scale"} and not unexpected
    ids = torch.randint(1, 23, (2, 6), generator=torch.Generator().manual_seed(0))
    assert torch.equal(model(ids), other(ids))
    assert all(k.startswith("model.") or k == "score.weight" for k in to_sequence_classification(model))


def test_training_learns_a_token_count_preference_with_and_without_margin():
    """Labeler: more copies of token 5 is better. Trained on 48 prompts of K = 4, the RM orders held-out
    pairs far above chance; with Llama 2's margin the strong pairs' reward gaps grow larger."""
    g = torch.Generator().manual_seed(0)

    def task(prompts):
        ids = torch.randint(6, 23, (prompts * 4, 8), generator=g)
        fives = torch.randint(0, 6, (prompts * 4,), generator=g)
        for row, n in enumerate(fives.tolist()):
            ids[row, torch.randperm(8, generator=g)[:n]] = 5
        scores = fives.float().view(prompts, 4)
        return ids, torch.ones_like(ids, dtype=torch.bool), ranked_comparisons(scores.tolist())

    train_ids, train_mask, train_pairs = task(48)
    test_ids, test_mask, test_pairs = task(24)
    edges = strength_edges(train_pairs.gap)
    gaps = {}
    for scale in (None, "large"):
        model = _model(5)
        cfg = RewardTrainConfig(epochs=6, prompts_per_batch=8, lr=3e-3, margin_scale=scale)
        log = train_reward_model(
            model,
            train_ids,
            train_mask,
            train_pairs,
            cfg,
            levels=strength_levels(train_pairs.gap, edges),
            generator=torch.Generator().manual_seed(0),
        )
        assert log["loss"][-1] < log["loss"][0]
        rewards = score_sequences(model, test_ids, test_mask)
        r_c, r_r = rewards[test_pairs.chosen], rewards[test_pairs.rejected]
        assert pairwise_accuracy(r_c, r_r) > 0.85
        strong = strength_levels(test_pairs.gap, edges) == 3
        gaps[scale] = float((r_c - r_r)[strong].mean())
    assert gaps["large"] > gaps[None]


def test_each_completion_is_scored_once_per_step():
    """InstructGPT Section 3.5: all C(K, 2) comparisons of a prompt in one batch element, one forward
    pass per completion, not one per comparison."""
    model = _model(6)
    calls = []
    model.register_forward_hook(lambda module, args, output: calls.append(args[0].shape[0]))
    k, prompts = 5, 6
    ids = torch.randint(1, 23, (k * prompts, 6), generator=torch.Generator().manual_seed(0))
    scores = torch.randn(prompts, k, generator=torch.Generator().manual_seed(1))
    pairs = ranked_comparisons(scores.tolist())
    assert len(pairs) == prompts * math.comb(k, 2)
    cfg = RewardTrainConfig(epochs=1, prompts_per_batch=2, lr=1e-3)
    log = train_reward_model(
        model, ids, torch.ones_like(ids), pairs, cfg, generator=torch.Generator().manual_seed(0)
    )
    assert calls == [2 * k] * 3 and len(log["loss"]) == 3  # 2 prompts x K completions per step


def test_untrained_reward_model_is_near_chance():
    model = _model(5)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(6, 23, (96, 8), generator=g)
    fives = torch.randint(0, 6, (96,), generator=g)
    for row, n in enumerate(fives.tolist()):
        ids[row, :n] = 5
    pairs = ranked_comparisons(fives.float().view(24, 4).tolist())
    rewards = score_sequences(model, ids, torch.ones_like(ids))
    assert 0.2 < pairwise_accuracy(rewards[pairs.chosen], rewards[pairs.rejected]) < 0.8


# ----- reference parity: trl's RewardTrainer ------------------------------------------------------


def _trl_setup(margin: bool):
    transformers = pytest.importorskip("transformers")
    datasets = pytest.importorskip("datasets")
    trl = pytest.importorskip("trl")
    from tokenizers import Tokenizer, models

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    vocab = {f"t{i}": i for i in range(TINY["vocab_size"])}
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="t1")),
        pad_token="t0",
        unk_token="t1",
        eos_token="t2",
    )
    hf_cfg = transformers.LlamaConfig(
        vocab_size=TINY["vocab_size"],
        hidden_size=TINY["hidden_size"],
        intermediate_size=TINY["intermediate_size"],
        num_hidden_layers=TINY["num_layers"],
        num_attention_heads=TINY["num_heads"],
        num_key_value_heads=TINY["num_heads"],
        max_position_embeddings=TINY["max_seq_len"],
        rms_norm_eps=1e-5,
        num_labels=1,
        pad_token_id=0,
        attn_implementation="eager",
    )
    torch.manual_seed(0)
    reference = transformers.LlamaForSequenceClassification(hf_cfg)
    with torch.no_grad():  # norm gains and a head away from their defaults, so a mix-up would show
        for name, p in reference.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
        reference.score.weight.normal_(0, 0.5)
    g = torch.Generator().manual_seed(1)
    rows = []
    for i in range(6):
        # Token ids from 3 up: the pad id 0 never occurs inside a sequence (transformers finds the
        # last real token as the rightmost non-pad id, we from the attention mask).
        chosen = torch.randint(
            3, TINY["vocab_size"], (int(torch.randint(3, 10, (1,), generator=g)),), generator=g
        )
        rejected = torch.randint(
            3, TINY["vocab_size"], (int(torch.randint(3, 10, (1,), generator=g)),), generator=g
        )
        row = {"chosen_ids": chosen.tolist(), "rejected_ids": rejected.tolist()}
        if margin:
            row["margin"] = MARGINS["large"][i % 4]
        rows.append(row)
    dataset = datasets.Dataset.from_list(rows)
    folder = tempfile.mkdtemp()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        args = trl.RewardConfig(
            output_dir=folder,
            report_to="none",
            use_cpu=True,
            per_device_train_batch_size=6,
            disable_dropout=True,
        )
        trainer = trl.RewardTrainer(
            model=reference, args=args, train_dataset=dataset, processing_class=tokenizer
        )
    batch = trainer.data_collator([dataset[i] for i in range(len(dataset))])
    ours = RewardModel(Llama(LlamaConfig(**TINY)))
    missing, unexpected = ours.load_state_dict(
        from_sequence_classification(reference.state_dict()), strict=False
    )
    assert set(missing) == {"reward_shift", "reward_scale"} and not unexpected
    return trainer, reference, ours, batch


@pytest.mark.parity
@pytest.mark.parametrize("margin", [False, True])
def test_loss_and_gradients_equal_trl_reward_trainer(margin):
    trainer, reference, ours, batch = _trl_setup(margin)
    assert batch["attention_mask"][:, -1].eq(0).any()  # right padding really occurs in the batch
    reference.train()
    ref_loss = trainer.compute_loss(reference, dict(batch))
    ref_loss.backward()

    ours.train()
    rewards = ours(batch["input_ids"], batch["attention_mask"])
    r_c, r_r = rewards.chunk(2)  # trl's collator: chosen rows first, then rejected
    loss = pairwise_loss(r_c, r_r, batch.get("margin"))
    loss.backward()

    assert torch.allclose(loss, ref_loss, atol=1e-5), (float(loss), float(ref_loss))
    with torch.no_grad():
        hf_rewards = reference(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).logits.squeeze(-1)
    assert torch.allclose(rewards.detach(), hf_rewards, atol=1e-5)
    ref_grads = from_sequence_classification({k: p.grad for k, p in reference.named_parameters()})
    checked = 0
    for name, p in ours.named_parameters():
        assert torch.allclose(p.grad, ref_grads[name], atol=1e-5), name
        checked += 1
    assert checked == len(ref_grads)
    # trl's accuracy metric is ours.
    assert trainer._metrics["train"]["accuracy"][-1] == pytest.approx(
        pairwise_accuracy(r_c.detach(), r_r.detach())
    )


# ----- bad input -----------------------------------------------------------------------------------


def test_bad_input_is_rejected_with_a_clear_message():
    model = _model()
    ids = torch.randint(1, 23, (2, 5))
    with pytest.raises(TypeError, match="backbone must be an aicanon.language.llama.Llama"):
        RewardModel(torch.nn.Linear(2, 2))
    with pytest.raises(
        ValueError, match=r"input_ids must be an integer tensor \[batch, length\], got \(5,\)"
    ):
        model(ids[0])
    with pytest.raises(ValueError, match="input_ids must be an integer tensor"):
        model(ids.float())
    with pytest.raises(
        ValueError, match=r"attention_mask must have the shape of input_ids \(2, 5\), got \(2, 4\)"
    ):
        model(ids, torch.ones(2, 4))
    with pytest.raises(ValueError, match=r"at least one real token in every row, rows \[1\]"):
        model(ids, torch.tensor([[1, 1, 0, 0, 0], [0, 0, 0, 0, 0]]))
    with pytest.raises(ValueError, match=r"k must be >= 2 \(a prompt needs two completions to compare\), got 1"):
        comparisons(1)
    with pytest.raises(ValueError, match=r"scores\[1\] must hold K >= 2 scores"):
        ranked_comparisons([[1.0, 2.0], [3.0]])
    with pytest.raises(ValueError, match="scores must be a non-empty list"):
        ranked_comparisons([])
    with pytest.raises(ValueError, match=r"scores\[0\] must be finite"):
        ranked_comparisons([[1.0, float("nan")]])
    with pytest.raises(ValueError, match="same number of comparisons, got 3 and 2"):
        pairwise_loss(torch.zeros(3), torch.zeros(2))
    with pytest.raises(ValueError, match="r_chosen must be a 1-D float tensor"):
        pairwise_loss(torch.zeros(3, dtype=torch.long), torch.zeros(3))
    with pytest.raises(ValueError, match="at least one comparison"):
        pairwise_loss(torch.zeros(0), torch.zeros(0))
    with pytest.raises(
        ValueError, match=r"margin must be a scalar or have one value per comparison \(3,\), got shape \(2,\)"
    ):
        pairwise_loss(torch.zeros(3), torch.zeros(3), torch.zeros(2))
    with pytest.raises(TypeError, match="margin must be a tensor, a number or None, got str"):
        pairwise_loss(torch.zeros(3), torch.zeros(3), "large")
    with pytest.raises(ValueError, match="group must be an integer tensor with one prompt id per comparison"):
        pairwise_loss(torch.zeros(3), torch.zeros(3), group=torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"scale must be one of \('small', 'large'\), got 'huge'"):
        margins(torch.tensor([0]), "huge")
    with pytest.raises(ValueError, match=r"levels must be in \[0, 3\], got values in \[0, 4\]"):
        margins(torch.tensor([0, 4]))
    with pytest.raises(ValueError, match="levels must be a 1-D integer tensor"):
        margins(torch.tensor([0.5]))
    with pytest.raises(ValueError, match="gaps must be a non-empty 1-D float tensor"):
        strength_edges(torch.tensor([], dtype=torch.float32))
    with pytest.raises(ValueError, match="levels must be >= 2, got 1"):
        strength_edges(torch.rand(5), 1)
    with pytest.raises(ValueError, match="edges must be non-decreasing"):
        strength_levels(torch.rand(5), torch.tensor([0.5, 0.2]))
    with pytest.raises(ValueError, match="levels must be an integer tensor with one level per comparison"):
        accuracy_by_strength(torch.zeros(3), torch.zeros(3), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="RewardTrainConfig.epochs must be >= 1, got 0"):
        RewardTrainConfig(epochs=0)
    with pytest.raises(ValueError, match="margin_scale must be None or one of"):
        RewardTrainConfig(margin_scale="medium")
    with pytest.raises(ValueError, match="RewardTrainConfig.lr must be > 0, got -1.0"):
        RewardTrainConfig(lr=-1.0)
    pairs = ranked_comparisons([[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="pairs index completion 3, but input_ids holds 2 completions"):
        train_reward_model(model, ids, torch.ones_like(ids), pairs)
    with pytest.raises(
        ValueError, match=r"levels must give one strength level per comparison \(2\) when margin_scale is set"
    ):
        train_reward_model(
            model,
            torch.randint(1, 23, (4, 5)),
            torch.ones(4, 5),
            pairs,
            RewardTrainConfig(margin_scale="small"),
        )
    with pytest.raises(TypeError, match="cfg must be a RewardTrainConfig, got dict"):
        train_reward_model(model, ids, torch.ones_like(ids), pairs, {"epochs": 1})
    with pytest.raises(ValueError, match="pairs must be a non-empty Comparisons"):
        train_reward_model(
            model,
            ids,
            torch.ones_like(ids),
            Comparisons(*(torch.zeros(0, dtype=torch.long),) * 3, torch.zeros(0)),
        )
    with pytest.raises(TypeError, match="model must be a RewardModel, got Linear"):
        score_sequences(torch.nn.Linear(2, 2), ids, torch.ones_like(ids))
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        score_sequences(model, ids, torch.ones_like(ids), batch_size=0)
    with pytest.raises(ValueError, match=">= 2 reference sequences to scale to unit std, got 1"):
        normalise_reward_model(model, ids[:1], torch.ones_like(ids[:1]), unit_std=True)
    with pytest.raises(ValueError, match="only 'model.\\*' and 'score.weight' keys"):
        from_sequence_classification({"lm_head.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="'score.weight' \\(the reward head\\), it is missing"):
        from_sequence_classification({"model.norm.weight": torch.zeros(1)})
    with pytest.raises(TypeError, match="model must be a RewardModel, got Linear"):
        to_sequence_classification(torch.nn.Linear(2, 2))
