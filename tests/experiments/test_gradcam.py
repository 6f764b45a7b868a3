"""The Grad-CAM experiment: quick reproduction, the untrained ablation that must fail, determinism, pieces."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import aicanon.experiments.gradcam as experiment
from aicanon.catalog import reproduce
from aicanon.core.experiment import make_config

pytestmark = pytest.mark.paper("gradcam")

CLAIMS = {claim.metric: claim for claim in experiment.CLAIMS}


def tiny(**overrides) -> experiment.Config:
    """A seconds-long config: same code path, far fewer steps and images."""
    base = {
        "seeds": 1,
        "train_images": 256,
        "train_steps": 5,
        "test_images": 32,
        "faithfulness_images": 8,
        "example_images": 2,
    }
    base.update(overrides)
    return make_config(experiment, "quick", **base)


# --------------------------------------------------------------------------- the quick reproduction
@pytest.fixture(scope="module")
def quick_reproduction():
    return reproduce("gradcam", make_config(experiment, "quick"))


def test_quick_reproduction_passes_every_quick_claim(quick_reproduction):
    claimed = [c for c in quick_reproduction.claims if c.threshold is not None]
    assert claimed, "the quick config must claim something"
    failures = [(c.metric, c.ours, c.threshold) for c in claimed if not c.passed]
    assert not failures, failures
    metrics = quick_reproduction.metrics
    # the pointing game is won by a wide margin over a random map
    assert metrics["pointing_accuracy_grad_cam"] > 4 * metrics["pointing_random"]
    assert metrics["test_accuracy"] > 0.9
    assert set(quick_reproduction.figures) == {"examples"}


# --------------------------------------------------------------------------- the ablation must fail
def test_untrained_cnn_fails_the_pointing_claim():
    result = experiment.run(dataclasses.replace(make_config(experiment, "quick"), train_steps=0))
    value = result.metrics["pointing_accuracy_grad_cam"]
    assert CLAIMS["pointing_accuracy_grad_cam"].check(value, "quick") is False


# --------------------------------------------------------------------------- determinism
def test_same_seed_gives_identical_metrics():
    cfg = tiny()
    first = experiment.run(cfg).metrics
    assert experiment.run(dataclasses.replace(cfg)).metrics == first
    assert experiment.run(dataclasses.replace(cfg, seed=1)).metrics != first


def test_a_killed_run_resumes_from_its_checkpoint_to_the_same_result(tmp_path, monkeypatch):
    monkeypatch.setenv("AICANON_RESULTS", str(tmp_path))  # checkpoints live under the results folder
    cfg = tiny(train_steps=8, checkpoint_every=3)
    reference = experiment.run(cfg).metrics
    assert not any((tmp_path / "_checkpoints").rglob("*.json"))  # a finished run leaves none behind
    real_track = experiment.track

    def killed(iterable, description, total=None):
        for i, item in enumerate(real_track(iterable, description, total=total)):
            if i == 5:
                raise KeyboardInterrupt  # after 5 of 8 steps (checkpoint at step 3)
            yield item

    monkeypatch.setattr(experiment, "track", killed)
    with pytest.raises(KeyboardInterrupt):
        experiment.run(cfg)
    totals = []

    def counting(iterable, description, total=None):
        totals.append(total)
        return real_track(iterable, description, total=total)

    monkeypatch.setattr(experiment, "track", counting)
    assert experiment.run(cfg).metrics == reference
    assert totals[0] == 5  # resumed at step 3 of 8


# --------------------------------------------------------------------------- pieces
def test_rendered_scenes_and_boxes():
    cfg = experiment.Config.quick()
    images, labels, boxes = experiment.render_scenes(64, cfg, torch.Generator().manual_seed(0))
    assert images.shape == (64, 3, 32, 32) and images.min() >= 0 and images.max() <= 1
    assert labels.min() >= 0 and labels.max() < cfg.classes
    sides = boxes[:, 2:] - boxes[:, :2]
    assert (sides >= 2 * cfg.min_radius - 1).all() and (sides <= 2 * cfg.max_radius + 1).all()
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= 32).all()


def test_shape_masks_golden():
    centre = torch.tensor([[4.0, 4.0]] * 5)
    masks = experiment.shape_masks(torch.arange(5), centre, torch.full((5,), 2.0), 8)
    # square of half-side 2 around (4, 4): pixel centres 2.5..5.5 -> columns 2..5
    assert masks[0].sum() == 16 and masks[0][2:6, 2:6].all()
    assert masks[1].sum() < masks[0].sum()  # disk inside the square
    assert not masks[4][3:5, 3:5].any()  # the ring's hole


def test_threshold_box_takes_the_largest_segment():
    saliency = np.zeros((10, 10))
    saliency[1:3, 1:3] = 1.0  # small segment with the peak
    saliency[5:9, 4:9] = 0.5  # larger segment above 15 % of the peak
    assert experiment.threshold_box(saliency, 0.15) == (4, 5, 9, 9)
    assert experiment.threshold_box(np.zeros((4, 6)), 0.15) == (0, 0, 6, 4)


def test_box_iou_and_pointing():
    assert experiment.box_iou((0, 0, 2, 2), (1, 1, 3, 3)) == pytest.approx(1 / 7)
    assert experiment.box_iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0
    maps = np.zeros((2, 8, 8))
    maps[0, 3, 4] = 1  # inside (x 4, y 3)
    maps[1, 0, 0] = 1  # outside, but within a 2-pixel tolerance of (2, 2, ...)
    boxes = np.array([[2, 2, 6, 6], [2, 2, 6, 6]])
    assert experiment.pointing_hits(maps, boxes).tolist() == [True, False]
    assert experiment.pointing_hits(maps, boxes, tolerance=2).tolist() == [True, True]
    assert experiment.grown_area_fraction(boxes[:1], 2, 8)[0] == pytest.approx(64 / 64)


def test_rank_correlation():
    a = np.arange(12.0).reshape(1, 3, 4)
    assert experiment.rank_correlation(a, a**3)[0] == pytest.approx(1.0)
    assert experiment.rank_correlation(a, -a)[0] == pytest.approx(-1.0)
    assert experiment.rank_correlation(a, np.zeros_like(a))[0] == 0.0


def test_occlusion_sensitivity_of_a_linear_model():
    # score = sum of the red channel; mean-colour fill of a patch changes the score by sum(x - mean)
    # over the patch, so the map has the right sign where the image is brighter than its mean.
    class Red(torch.nn.Module):
        def forward(self, x):
            return x[:, 0].sum((1, 2))[:, None]

    x = torch.zeros(1, 3, 8, 8)
    x[0, 0, :4, :4] = 1.0
    occlusion = experiment.occlusion_sensitivity(Red(), x, torch.tensor([0]), 4, 4)
    assert occlusion.shape == (1, 8, 8)
    assert occlusion[0, :4, :4].min() > 0 and occlusion[0, 4:, 4:].max() < 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"image_size": 30}, "image_size must be a multiple of 4"),
        ({"classes": 9}, "classes must be between 2 and 5"),
        ({"min_radius": 6.0, "max_radius": 5.0}, "radii must satisfy"),
        ({"threshold": 1.5}, r"threshold must be in \(0, 1\)"),
        ({"train_steps": -1}, "train_steps must be >= 0"),
        ({"faithfulness_images": 64}, "faithfulness_images <= test_images"),
        ({"occlusion_patch": 0}, "occlusion_patch must be in"),
        ({"pointing_tolerance": -1}, "pointing_tolerance must be >= 0"),
    ],
)
def test_bad_config_is_rejected(overrides, message):
    with pytest.raises(ValueError, match=message):
        experiment.run(tiny(**overrides))
