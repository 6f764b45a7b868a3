"""Mask2Former: masked attention, pixel decoder, loss; parity with transformers on a tiny config."""

from __future__ import annotations

import pytest
import torch

from aicanon.vision.mask2former import (
    ConvBackbone,
    Mask2Former,
    MaskedTransformerDecoder,
    attention_mask_from_logits,
    from_transformers,
)
from aicanon.vision.mask2former_loss import (
    Mask2FormerCriterion,
    MaskHungarianMatcher,
    dice_loss,
    pairwise_dice_cost,
    pairwise_sigmoid_ce_cost,
    point_sample,
    sigmoid_ce_loss,
    uncertainty_points,
)
from aicanon.vision.pixel_decoder import (
    MSDeformAttnPixelDecoder,
    multi_scale_deformable_attention,
    sine_position_embedding,
)

pytestmark = pytest.mark.paper("mask2former")


def tiny_model(masked_attention: bool = True) -> Mask2Former:
    backbone = ConvBackbone(1, (8, 16, 16, 16), groups=4)
    return Mask2Former(
        4,
        backbone,
        backbone.channels,
        dim=16,
        mask_dim=16,
        num_queries=5,
        num_heads=2,
        decoder_layers=3,
        decoder_ffn_dim=24,
        encoder_layers=1,
        encoder_ffn_dim=24,
        norm_groups=4,
        masked_attention=masked_attention,
    )


# --- golden values and invariants --------------------------------------------------------------------


def test_attention_mask_binarises_at_half_and_falls_back_on_empty_rows():
    logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]], [[-1.0, -1.0], [-2.0, -5.0]]]])  # [1, 2, 2, 2]
    blocked = attention_mask_from_logits(logits, (2, 2), num_heads=3)
    assert blocked.shape == (3, 2, 4)
    # query 0: sigmoid >= 0.5 at logits 2.0 and 0.5 -> those may be attended
    assert blocked[0, 0].tolist() == [False, True, False, True]
    # query 1: empty mask -> attends everywhere (Eq. 3 with the all-masked fallback)
    assert blocked[:, 1].any() == torch.tensor(False)
    assert torch.equal(blocked[0], blocked[2])


def test_attention_mask_is_resized_to_the_key_resolution():
    logits = torch.full((2, 3, 8, 8), -4.0)
    logits[:, :, :4, :4] = 4.0
    blocked = attention_mask_from_logits(logits, (2, 2), num_heads=1)
    assert blocked.shape == (2, 3, 4)
    assert blocked[0, 0].tolist() == [False, True, True, True]


def test_masked_attention_ignores_features_outside_the_mask():
    torch.manual_seed(0)
    decoder = MaskedTransformerDecoder(
        3, in_dim=8, dim=8, mask_dim=8, num_queries=1, num_heads=1, num_layers=1, ffn_dim=8
    )
    mask_features = -torch.ones(1, 8, 4, 4)
    mask_features[:, :, :2, :2] = 1.0  # the query's mask is the top-left corner or its complement
    features = [torch.randn(1, 8, 4, 4) for _ in range(3)]
    before = decoder(features, mask_features)
    allowed = attention_mask_from_logits(before.mask_logits[0], (4, 4), 1)
    changed = [f.clone() for f in features]
    outside = allowed.view(4, 4)  # positions no query may attend to
    assert outside.any() and not outside.all()
    changed[0][:, :, outside] += 100.0
    after = decoder(changed, mask_features)
    torch.testing.assert_close(after.pred_logits, before.pred_logits)
    decoder.masked_attention = False
    assert not torch.allclose(
        decoder(changed, mask_features).pred_logits, decoder(features, mask_features).pred_logits
    )


def test_deformable_attention_at_pixel_centres_reads_the_pixel():
    value = torch.randn(1, 6, 1, 3)  # one level 2x3, one head of 3 channels
    row, col = 1, 2
    location = torch.tensor([(col + 0.5) / 3, (row + 0.5) / 2]).view(1, 1, 1, 1, 1, 2)
    out = multi_scale_deformable_attention(value, [(2, 3)], location, torch.ones(1, 1, 1, 1, 1))
    torch.testing.assert_close(out[0, 0], value[0, row * 3 + col, 0])


def test_sine_embedding_is_bounded_and_distinct():
    pos = sine_position_embedding(1, 4, 5, 8)
    assert pos.shape == (1, 16, 4, 5)
    assert pos.abs().max() <= 1.0
    flat = pos[0].flatten(1).T
    assert torch.unique(flat, dim=0).shape[0] == 20


def test_forward_shapes_and_round_robin_deep_supervision():
    model = tiny_model()
    out = model(torch.randn(2, 1, 64, 64))
    assert len(out.class_logits) == len(out.mask_logits) == 4  # before layer 1 and after each of 3 layers
    assert out.pred_logits.shape == (2, 5, 5)
    assert out.pred_masks.shape == (2, 5, 16, 16)
    mask_features, levels = model.pixel_decoder(model.backbone(torch.randn(2, 1, 64, 64)))
    assert [tuple(x.shape[-2:]) for x in levels] == [(2, 2), (4, 4), (8, 8)]
    assert mask_features.shape == (2, 16, 16, 16)


def test_point_losses_golden_values():
    logits = torch.tensor([[0.0, 0.0]])
    targets = torch.tensor([[1.0, 0.0]])
    # sigmoid 0.5 everywhere: dice = 1 - (2*0.5 + 1)/(1 + 1 + 1) = 1/3, bce = log 2
    torch.testing.assert_close(dice_loss(logits, targets, 1.0), torch.tensor(1 / 3))
    torch.testing.assert_close(sigmoid_ce_loss(logits, targets, 1.0), torch.log(torch.tensor(2.0)))
    torch.testing.assert_close(pairwise_dice_cost(logits, targets), torch.tensor([[1 / 3]]))
    torch.testing.assert_close(pairwise_sigmoid_ce_cost(logits, targets), torch.log(torch.tensor([[2.0]])))


def test_point_sample_and_uncertainty_points():
    maps = torch.arange(4.0).view(1, 1, 2, 2)
    centres = torch.tensor([[[0.25, 0.25], [0.75, 0.75]]])
    assert point_sample(maps, centres).tolist() == [[[0.0, 3.0]]]
    logits = torch.full((1, 1, 8, 8), 5.0)
    logits[..., 3:5, 3:5] = 0.0  # the uncertain region
    points = uncertainty_points(logits, 40, 3.0, 0.75, torch.Generator().manual_seed(0))
    assert points.shape == (1, 40, 2)
    values = point_sample(logits, points)[0, 0]
    assert (values[:30].abs() < values[30:].abs().mean() + 1e-6).all()


def test_matcher_finds_the_identity_assignment():
    masks = torch.zeros(3, 8, 8)
    masks[0, :4] = 1
    masks[1, 4:, :4] = 1
    masks[2, 4:, 4:] = 1
    order = torch.tensor([2, 0, 1])
    mask_logits = (masks[order] * 20 - 10)[None]
    class_logits = torch.full((1, 3, 4), -5.0)
    labels = torch.tensor([0, 1, 2])
    class_logits[0, torch.arange(3), labels[order]] = 5.0
    matcher = MaskHungarianMatcher(num_points=256)
    rows, cols = matcher(class_logits, mask_logits, [{"labels": labels, "masks": masks}])[0]
    assert order[rows].tolist() == cols.tolist()


def test_criterion_is_low_for_perfect_predictions_and_handles_empty_targets():
    masks = torch.zeros(2, 16, 16)
    masks[0, :8] = 1
    masks[1, 8:] = 1
    target = {"labels": torch.tensor([0, 1]), "masks": masks}
    class_logits = torch.full((1, 3, 3), -10.0)
    class_logits[0, 0, 0] = class_logits[0, 1, 1] = class_logits[0, 2, 2] = 10.0
    mask_logits = torch.stack([masks[0], masks[1], masks[0]])[None] * 16 - 8
    from aicanon.vision.mask2former import Mask2FormerOutput

    # uniform points: importance sampling would pick the boundary, where the bilinearly sampled
    # targets are fractional and any sharp prediction pays
    criterion = Mask2FormerCriterion(2, num_points=1024, importance_sample_ratio=0.0)
    good = criterion(Mask2FormerOutput([class_logits], [mask_logits]), [target])
    bad = criterion(Mask2FormerOutput([class_logits], [-mask_logits]), [target])
    assert good["loss_cls"] < 1e-3 and good["loss_dice"] < 0.5  # weighted by 5
    assert good["loss"] < 0.2 * bad["loss"]
    empty = {"labels": torch.zeros(0, dtype=torch.int64), "masks": torch.zeros(0, 16, 16)}
    loss = criterion(Mask2FormerOutput([class_logits], [mask_logits]), [empty])
    assert torch.isfinite(loss["loss"])


def test_training_step_reduces_loss():
    torch.manual_seed(0)
    model = tiny_model()
    x = torch.randn(2, 1, 64, 64)
    masks = torch.zeros(2, 2, 64, 64)
    masks[:, 0, :32] = 1
    masks[:, 1, 32:] = 1
    targets = [{"labels": torch.tensor([0, 1]), "masks": masks[i]} for i in range(2)]
    criterion = Mask2FormerCriterion(4, num_points=128)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = criterion(model(x), targets, generator=torch.Generator().manual_seed(0))["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0]


# --- bad input ---------------------------------------------------------------------------------------


def test_bad_input_is_rejected():
    model = tiny_model()
    with pytest.raises(ValueError, match="images"):
        model(torch.zeros(2, 64, 64))
    with pytest.raises(ValueError, match="images"):
        model(torch.zeros(2, 1, 64, 64, dtype=torch.int64))
    with pytest.raises(ValueError, match="features"):
        model.decode([torch.zeros(1, 8, 16, 16)])
    with pytest.raises(ValueError, match=r"features\[1\]"):
        model.decode(
            [
                torch.zeros(1, 8, 16, 16),
                torch.zeros(1, 3, 8, 8),
                torch.zeros(1, 16, 4, 4),
                torch.zeros(1, 16, 2, 2),
            ]
        )
    with pytest.raises(ValueError, match="num_heads"):
        MaskedTransformerDecoder(3, dim=10, num_heads=3)
    with pytest.raises(ValueError, match="in_channels"):
        MSDeformAttnPixelDecoder([8, 16, 32])
    with pytest.raises(ValueError, match="norm_groups"):
        MSDeformAttnPixelDecoder([8, 16, 32, 64], dim=24, norm_groups=32)
    with pytest.raises(ValueError, match="no backbone"):
        Mask2Former(3, None, (8, 16, 16, 16), dim=16, mask_dim=16, num_heads=2, norm_groups=4)(
            torch.zeros(1, 1, 32, 32)
        )
    criterion = Mask2FormerCriterion(3, num_points=16)
    out = model(torch.randn(1, 1, 64, 64))
    with pytest.raises(ValueError, match="targets"):
        criterion(out, [])
    with pytest.raises(ValueError, match="labels"):
        criterion(out, [{"labels": torch.tensor([5]), "masks": torch.zeros(1, 64, 64)}])
    with pytest.raises(ValueError, match="masks"):
        criterion(out, [{"labels": torch.tensor([1]), "masks": torch.zeros(2, 64, 64)}])
    with pytest.raises(ValueError, match="all be 0"):
        MaskHungarianMatcher(0, 0, 0)
    with pytest.raises(ValueError, match="importance_sample_ratio"):
        Mask2FormerCriterion(3, importance_sample_ratio=1.5)


# --- reference parity --------------------------------------------------------------------------------


def _reference():
    transformers = pytest.importorskip("transformers")
    backbone = transformers.SwinConfig(
        image_size=64,
        patch_size=4,
        embed_dim=16,
        depths=[1, 1, 1, 1],
        num_heads=[1, 1, 2, 2],
        window_size=4,
        drop_path_rate=0.0,
        out_features=["stage1", "stage2", "stage3", "stage4"],
    )
    config = transformers.Mask2FormerConfig(
        backbone_config=backbone,
        num_labels=5,
        hidden_dim=32,
        feature_size=32,
        mask_feature_size=32,
        num_queries=6,
        num_attention_heads=4,
        decoder_layers=4,
        dim_feedforward=48,
        encoder_feedforward_dim=40,
        encoder_layers=2,
        train_num_points=64,
        use_auxiliary_loss=True,
    )
    torch.manual_seed(0)
    reference = transformers.Mask2FormerForUniversalSegmentation(config)
    ours = Mask2Former(
        5,
        None,
        reference.model.pixel_level_module.encoder.channels,
        dim=32,
        mask_dim=32,
        num_queries=6,
        num_heads=4,
        decoder_layers=3,
        decoder_ffn_dim=48,
        encoder_layers=2,
        encoder_ffn_dim=40,
        norm_groups=32,
    )
    ours.load_state_dict(from_transformers(reference.state_dict()), strict=True)
    return reference, ours


@pytest.mark.parity
def test_parity_with_transformers_logits_every_layer():
    reference, ours = _reference()
    reference.eval()
    ours.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        features = reference.model.pixel_level_module.encoder(x).feature_maps
        expected = reference(x, output_auxiliary_logits=True)
        got = ours.decode(features)
    torch.testing.assert_close(got.pred_logits, expected.class_queries_logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got.pred_masks, expected.masks_queries_logits, atol=1e-5, rtol=1e-5)
    for i, aux in enumerate(expected.auxiliary_logits):
        torch.testing.assert_close(got.class_logits[i], aux["class_queries_logits"], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(got.mask_logits[i], aux["masks_queries_logits"], atol=1e-5, rtol=1e-5)
    # the masked attention is active: some but not all keys are blocked after the first prediction
    blocked = attention_mask_from_logits(got.mask_logits[0], tuple(features[-1].shape[-2:]), 4)
    assert 0 < blocked.float().mean() < 1


@pytest.mark.parity
def test_parity_with_transformers_loss_and_gradients():
    reference, ours = _reference()
    reference.train()
    ours.train()
    x = torch.randn(2, 3, 64, 64)
    targets = [
        {"labels": torch.tensor([1, 3]), "masks": (torch.rand(2, 64, 64) > 0.5).float()},
        {"labels": torch.tensor([0]), "masks": (torch.rand(1, 64, 64) > 0.5).float()},
    ]
    features = [f.detach() for f in reference.model.pixel_level_module.encoder(x).feature_maps]
    torch.manual_seed(5)  # the same point draws in the same order
    expected = reference(
        x, mask_labels=[t["masks"] for t in targets], class_labels=[t["labels"] for t in targets]
    )
    torch.manual_seed(5)
    got = Mask2FormerCriterion(5, num_points=64)(ours.decode(features), targets)
    torch.testing.assert_close(got["loss"], expected.loss, atol=1e-4, rtol=1e-5)
    expected.loss.backward()
    got["loss"].backward()
    reference_parameters = dict(reference.named_parameters())
    mapping = {
        "decoder.class_predictor.weight": "class_predictor.weight",
        "decoder.queries_features.weight": "model.transformer_module.queries_features.weight",
        "decoder.layers.0.cross_attn.in_proj_weight": (
            "model.transformer_module.decoder.layers.0.cross_attn.in_proj_weight"
        ),
        "pixel_decoder.layers.0.self_attn.value_proj.weight": (
            "model.pixel_level_module.decoder.encoder.layers.0.self_attn.value_proj.weight"
        ),
        "pixel_decoder.lateral_convs.0.0.weight": "model.pixel_level_module.decoder.adapter_1.0.weight",
        "pixel_decoder.level_embed": "model.pixel_level_module.decoder.level_embed",
    }
    ours_parameters = dict(ours.named_parameters())
    for name, reference_name in mapping.items():
        torch.testing.assert_close(
            ours_parameters[name].grad, reference_parameters[reference_name].grad, atol=1e-5, rtol=1e-4
        )
