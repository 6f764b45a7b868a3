"""The survey's small-data comparison: the quick reproduction passes its claims (distilled DeiT beats
ViT, Swin is no worse), distilling from an untrained teacher fails the DeiT claim, the same seed gives
the same metrics, the augmentation and config checks behave, and bad configs are rejected."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from aicanon.catalog import reproduce
from aicanon.core.experiment import make_config
from aicanon.experiments import visual_transformer_survey as exp

pytestmark = pytest.mark.paper("visual-transformer-survey")

SLUG = "visual-transformer-survey"


def test_quick_reproduction_passes_every_quick_claim():
    cfg = make_config(exp, "quick")
    result = reproduce(SLUG, cfg)
    failed = [(c.metric, c.ours, c.threshold) for c in result.claims if c.passed is False]
    assert not failed, failed
    assert result.metrics["acc_teacher"] > result.metrics["acc_vit"]  # the convnet wins at small data
    assert set(result.details["table"][0]) >= {"vit", "deit", "swin", "teacher", "deit_dist_head"}


def test_untrained_teacher_fails_the_distillation_claim():
    cfg = make_config(exp, "quick", teacher_steps=0, models=("vit", "deit"))
    result = exp.run(cfg)
    claim = next(c for c in exp.CLAIMS if c.metric == "deit_minus_vit")
    assert claim.check(result.metrics["deit_minus_vit"], "quick") is False, result.metrics


def test_same_seed_same_metrics():
    cfg = make_config(exp, "quick", steps=5, teacher_steps=3, test_size=200, models=("vit", "deit", "swin"))
    first, second = exp.run(cfg), exp.run(dataclasses.replace(cfg))
    assert first.metrics == second.metrics


def test_random_shift_translates_within_bounds():
    x = torch.zeros(4, 1, 8, 8)
    x[:, :, 3, 4] = 1.0
    out = exp.random_shift(2)(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert torch.all(out.sum(dim=(1, 2, 3)) == 1)  # the pixel moved, nothing else appeared
    rows, cols = torch.nonzero(out[:, 0])[:, 1], torch.nonzero(out[:, 0])[:, 2]
    assert torch.all((rows - 3).abs() <= 2) and torch.all((cols - 4).abs() <= 2)
    assert torch.equal(exp.random_shift(0)(x, None), x)


def test_full_config_is_the_paper_style_setting():
    cfg = exp.Config.full()
    assert cfg.scale == "full" and cfg.dataset == "cifar10" and cfg.fractions[-1] == 1.0
    models = exp.build_models(cfg, 3, cfg.img_size, 10)
    assert models["deit"].embed_dim == 192  # DeiT-Ti width
    assert (
        sum(p.numel() for p in models["teacher"].parameters()) == 11_173_962
    )  # ResNet-18 with the 3x3 small-input stem, 10 classes


@pytest.mark.parametrize(
    "override, message",
    [
        ({"dataset": "imagenet"}, "dataset must be one of"),
        ({"fractions": (0.0,)}, "fractions must be a non-empty tuple"),
        ({"distillation": "medium"}, "distillation must be 'hard' or 'soft'"),
        ({"models": ("vit", "mixer")}, "models must be a non-empty subset"),
        ({"augment_shift": -1}, "augment_shift, test_size and teacher_steps must be >= 0"),
    ],
)
def test_rejects_bad_configs(override, message):
    cfg = make_config(exp, "quick", **override)
    with pytest.raises(ValueError, match=message):
        exp.run(cfg)
