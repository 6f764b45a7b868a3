"""aicanon.vision.training: the shared classifier loop."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from aicanon.core.checkpoint import CheckpointMismatch
from aicanon.testbeds import data_fraction
from aicanon.vision.training import ClassifierConfig, accuracy, stratified_subset, train_classifier

pytestmark = pytest.mark.paper("vit")


def blobs(n=400):
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (n,), generator=g)
    centers = torch.tensor([[3.0, 0.0], [-3.0, 0.0], [0.0, 3.0]])
    return centers[y] + torch.randn(n, 2, generator=g), y


def test_trains_a_separable_problem_and_untrained_does_not():
    x, y = blobs()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))
    before = accuracy(model, x, y)
    losses = train_classifier(
        model,
        x,
        y,
        ClassifierConfig(steps=150, batch_size=64, lr=1e-2, warmup_steps=10),
        torch.Generator().manual_seed(0),
    )
    assert accuracy(model, x, y) > 0.95 > before + 0.3
    assert losses[-1] < losses[0]


def test_custom_loss_is_used():
    x, y = blobs(50)
    model = nn.Linear(2, 3)
    calls = []

    def loss_fn(m, xb, yb):
        calls.append(xb.shape[0])
        return m(xb).sum() * 0.0

    train_classifier(model, x, y, ClassifierConfig(steps=3, batch_size=10, warmup_steps=0), loss_fn=loss_fn)
    assert calls == [10, 10, 10]


def test_stratified_subset_keeps_class_shares():
    y = torch.tensor([0] * 100 + [1] * 50 + [2] * 10)
    idx = stratified_subset(y, 0.2, torch.Generator().manual_seed(0))
    assert torch.bincount(y[idx]).tolist() == [20, 10, 2]
    assert idx.unique().numel() == idx.numel()


def test_bad_input():
    with pytest.raises(ValueError, match="fraction must be in"):
        stratified_subset(torch.zeros(3), 0.0)
    with pytest.raises(ValueError, match="one label per example"):
        train_classifier(
            nn.Linear(2, 2), torch.zeros(3, 2), torch.zeros(2, dtype=torch.long), ClassifierConfig()
        )
    with pytest.raises(ValueError, match="steps must be >= 1, got 0"):
        ClassifierConfig(steps=0)
    with pytest.raises(ValueError, match="lr must be > 0, got 0.0"):
        ClassifierConfig(lr=0.0)
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\), got 1.0"):
        ClassifierConfig(label_smoothing=1.0)


# --- checkpoint/resume ---------------------------------------------------------------------------

RESUME_CFG = ClassifierConfig(steps=12, batch_size=16, lr=1e-2, warmup_steps=3)


def dropout_net():
    # Dropout draws from the global RNG, so a resume that did not restore it would diverge.
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))


def train_once(cfg=RESUME_CFG, seeded=True, calls=None, **kwargs):
    """A fresh model and generator, as a restarted process would build them; returns (model, trace)."""
    x, y = blobs(100)
    model = dropout_net()

    def jitter(xb, generator):  # augmentation that uses the data generator, and counts the steps run
        if calls is not None:
            calls.append(1)
        return xb + 0.1 * torch.randn(xb.shape, generator=generator)

    generator = torch.Generator().manual_seed(7) if seeded else None
    trace = train_classifier(model, x, y, cfg, generator, augment=jitter, **kwargs)
    return model, trace


def assert_same_weights(a, b):
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), name


@pytest.mark.parametrize("seeded", [True, False], ids=["generator", "global-rng"])
def test_killed_run_resumes_bit_identical(tmp_path, seeded):
    reference, full_trace = train_once(seeded=seeded)
    _, partial = train_once(seeded=seeded, checkpoint_dir=tmp_path, checkpoint_every=4, stop_after=10)
    assert partial == full_trace[:10]
    torch.manual_seed(123)  # the restarted process's global RNG is elsewhere: the checkpoint must restore it
    calls = []
    resumed, trace = train_once(seeded=seeded, calls=calls, checkpoint_dir=tmp_path, checkpoint_every=4)
    # The kill came after step 10 and the last checkpoint was at step 8: steps 9-12 are rerun.
    assert len(calls) == RESUME_CFG.steps - 8
    assert trace == full_trace
    assert_same_weights(resumed, reference)
    # A finished run's rerun trains nothing and returns the saved trace and weights.
    calls = []
    again, trace = train_once(seeded=seeded, calls=calls, checkpoint_dir=tmp_path, checkpoint_every=4)
    assert calls == [] and trace == full_trace
    assert_same_weights(again, reference)


def test_checkpointing_does_not_change_the_run(tmp_path):
    # Saving consumes no randomness: the same trace, weights, and RNG positions after the run.
    plain, trace = train_once()
    after_plain = torch.get_rng_state()
    saved, saved_trace = train_once(checkpoint_dir=tmp_path, checkpoint_every=1)
    assert saved_trace == trace
    assert torch.equal(torch.get_rng_state(), after_plain)
    assert_same_weights(saved, plain)


def test_resume_refuses_another_config(tmp_path):
    train_once(checkpoint_dir=tmp_path, checkpoint_every=4, stop_after=5)
    other = ClassifierConfig(steps=12, batch_size=16, lr=2e-2, warmup_steps=3)
    with pytest.raises(CheckpointMismatch, match="classifier"):
        train_once(cfg=other, checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointMismatch, match="generator_seed"):
        train_once(seeded=False, checkpoint_dir=tmp_path)
    # Changing only how often checkpoints are written is the same run.
    train_once(checkpoint_dir=tmp_path, checkpoint_every=3)


def test_bad_checkpoint_arguments(tmp_path):
    x, y = blobs(20)
    cfg = ClassifierConfig(steps=2, batch_size=4, warmup_steps=0)
    with pytest.raises(ValueError, match="checkpoint_every must be >= 0, got -1"):
        train_classifier(nn.Linear(2, 3), x, y, cfg, checkpoint_dir=tmp_path, checkpoint_every=-1)
    with pytest.raises(TypeError, match="checkpoint_every must be an int"):
        train_classifier(nn.Linear(2, 3), x, y, cfg, checkpoint_dir=tmp_path, checkpoint_every=1.5)
    with pytest.raises(ValueError, match="checkpoint_every needs checkpoint_dir"):
        train_classifier(nn.Linear(2, 3), x, y, cfg, checkpoint_every=2)
    with pytest.raises(ValueError, match="stop_after must be >= 1 or None, got 0"):
        train_classifier(nn.Linear(2, 3), x, y, cfg, stop_after=0)


def test_fraction_curve_checkpoints_each_fraction(tmp_path):
    g = torch.Generator().manual_seed(0)
    y_train, y_test = torch.randint(0, 3, (90,), generator=g), torch.randint(0, 3, (30,), generator=g)
    data = data_fraction.FractionData(
        "toy", torch.randn(90, 1, 4, 4, generator=g), y_train, torch.randn(30, 1, 4, 4, generator=g), y_test
    )
    protocol = data_fraction.FractionProtocol(steps=6, batch_size=8, warmup_steps=2)

    def make_model():
        return nn.Sequential(nn.Flatten(), nn.Linear(16, 3))

    def curve(**kwargs):
        out = data_fraction.fraction_curve(make_model, (0.5, 1.0), protocol, 0, data, "toy", **kwargs)
        return out, {k: v for k, v in out.items() if k != "models"}

    _, plain = curve()
    first, saved = curve(checkpoint_dir=tmp_path, checkpoint_every=2)
    assert saved == plain
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy-0", "toy-1"]
    second, rerun = curve(checkpoint_dir=tmp_path, checkpoint_every=2)  # loads the finished fractions
    assert rerun == plain
    for a, b in zip(first["models"], second["models"], strict=True):
        assert_same_weights(a, b)
