"""aicanon.language.training: the Llama 2 recipe (Section 2.2) and the shared pre-training loop."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from aicanon.language.llama import Llama, LlamaConfig
from aicanon.language.training import PretrainConfig, cosine_lr, evaluate_lm, make_optimizer, train_lm

pytestmark = pytest.mark.paper("llama2")


def tiny(vocab=20):
    torch.manual_seed(0)
    return Llama(
        LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_layers=1, num_heads=2)
    )


def test_schedule_warms_up_then_decays_to_ten_percent():
    cfg = PretrainConfig(steps=110, lr=1e-3, warmup_steps=10)
    assert cosine_lr(0, cfg) == pytest.approx(1e-4)
    assert cosine_lr(9, cfg) == pytest.approx(1e-3)
    assert cosine_lr(60, cfg) == pytest.approx(1e-4 + 0.5 * 9e-4 * (1 + math.cos(math.pi * 0.5)))
    assert cosine_lr(110, cfg) == pytest.approx(1e-4)  # Llama 2: decays to 10 % of the peak
    lrs = [cosine_lr(s, cfg) for s in range(10, 111)]
    assert all(a >= b for a, b in itertools.pairwise(lrs))


def test_optimizer_is_adamw_with_llama2_betas_and_decay_on_matrices_only():
    model = tiny()
    opt = make_optimizer(model, PretrainConfig())
    assert isinstance(opt, torch.optim.AdamW)
    decayed, plain = opt.param_groups
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert decayed["betas"] == (0.9, 0.95)
    assert all(p.dim() >= 2 for p in decayed["params"]) and all(p.dim() == 1 for p in plain["params"])


def test_training_learns_a_repeating_sequence_and_untrained_does_not():
    """A period-5 sequence is predictable from context: trained loss falls far below ln(vocab)."""
    ids = torch.arange(2000) % 5
    model = tiny(vocab=5)
    before = evaluate_lm(model, ids, seq_len=16, batch_size=8, n_batches=2)
    cfg = PretrainConfig(steps=60, batch_size=8, seq_len=16, lr=1e-2, warmup_steps=5)
    history = train_lm(model, ids, ids, cfg, torch.Generator().manual_seed(0))
    assert before > 1.0  # ~ln 5 = 1.61 untrained
    assert history["final_val_loss"] < 0.1
    assert len(history["train_loss"]) == 60 and history["lr"][-1] == pytest.approx(cosine_lr(59, cfg))


def test_extra_loss_is_added_and_runs_repeat():
    ids = torch.arange(500) % 7
    cfg = PretrainConfig(steps=5, batch_size=2, seq_len=8, warmup_steps=1)
    runs = []
    for _ in range(2):
        model = tiny(vocab=7)
        calls: list[int] = []

        def extra(_model, calls=calls):
            calls.append(1)
            return torch.zeros(())

        history = train_lm(
            model,
            ids,
            ids,
            cfg,
            torch.Generator().manual_seed(3),
            extra_loss=extra,
        )
        assert len(calls) == 5
        runs.append(history["train_loss"])
    assert runs[0] == runs[1]


def test_bad_input():
    with pytest.raises(ValueError, match="steps must be >= 1, got 0"):
        PretrainConfig(steps=0)
    with pytest.raises(ValueError, match="min_lr_ratio"):
        PretrainConfig(min_lr_ratio=2.0)
    with pytest.raises(TypeError, match="cfg must be a PretrainConfig"):
        train_lm(tiny(), torch.arange(10), None, {"steps": 1})


def test_a_killed_run_resumes_to_the_uninterrupted_weights_and_history(monkeypatch, tmp_path):
    # 12 steps with validation every 4, a checkpoint every 5, killed in step 8: the rerun resumes after
    # step 5 (weights, AdamW, the batch generator, the history) and ends as the uninterrupted run.
    from tests.interruption import interrupt_and_resume

    ids = torch.arange(600) % 7
    cfg = PretrainConfig(steps=12, batch_size=2, seq_len=8, warmup_steps=2, eval_every=4, eval_batches=1)

    def run(folder=None):
        model = tiny(vocab=7)
        history = train_lm(model, ids, ids, cfg, torch.Generator().manual_seed(1), checkpoint=folder,
                           checkpoint_every=5)  # fmt: skip
        return model, history

    reference, expected = run()
    (model, history), calls = interrupt_and_resume(
        monkeypatch, torch.optim.AdamW, "step", lambda: run(tmp_path / "lm"), kill_at=8
    )
    assert len(calls) == 12 - 5
    assert history == expected
    for a, b in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.equal(a, b)
    assert run(tmp_path / "lm")[1] == expected  # finished: the final state is loaded, nothing retrained
