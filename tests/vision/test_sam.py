"""Segment Anything model: invariants, losses, weight layouts, transformers parity, bad input."""

import pytest
import torch

from aicanon.vision.sam import Sam, SamConfig, dice_loss, focal_loss, mask_iou, sam_loss
from aicanon.vision.sam_encoder import relative_positions, window_partition, window_unpartition
from aicanon.vision.sam_weights import (
    config_from_original,
    config_from_transformers,
    from_original,
    from_transformers,
    to_original,
    to_transformers,
)

pytestmark = pytest.mark.paper("segment-anything")

TINY = SamConfig(
    image_size=64,
    patch_size=8,
    encoder_dim=32,
    encoder_depth=2,
    encoder_heads=2,
    encoder_mlp_dim=64,
    window_size=3,
    global_attn_indexes=(1,),
    prompt_dim=32,
    mask_in_channels=8,
    decoder_heads=2,
    decoder_mlp_dim=64,
    iou_head_hidden_dim=32,
)


def _model(seed: int = 0) -> Sam:
    torch.manual_seed(seed)
    model = Sam(TINY).eval()
    with torch.no_grad():  # non-trivial values everywhere (zero-initialised tables included)
        for parameter in model.parameters():
            parameter.normal_(0, 0.2)
    return model


def _prompts(batch: int = 2, prompts: int = 3):
    torch.manual_seed(1)
    points = torch.rand(batch, prompts, 2, 2) * 64
    labels = torch.tensor([[1, 0], [1, -1], [0, 1]])[:prompts].expand(batch, -1, -1)
    return points, labels


def test_output_shapes_multi_single_and_all():
    model = _model()
    images = torch.randn(2, 3, 64, 64)
    points, labels = _prompts()
    masks, iou = model(images, points, labels)
    assert masks.shape == (2, 3, 3, 32, 32) and iou.shape == (2, 3, 3)
    single, single_iou = model(images, points, labels, multimask_output=False)
    every, every_iou = model(images, points, labels, multimask_output=None)
    assert single.shape == (2, 3, 1, 32, 32)
    torch.testing.assert_close(every[:, :, 1:], masks)
    torch.testing.assert_close(every[:, :, :1], single)
    torch.testing.assert_close(every_iou[:, :, 1:], iou)


def test_window_partition_round_trip_with_padding():
    x = torch.randn(2, 7, 5, 4)
    windows, padded = window_partition(x, 3)
    assert windows.shape == (2 * 3 * 2, 3, 3, 4) and padded == (9, 6)
    torch.testing.assert_close(window_unpartition(windows, 3, padded, (7, 5)), x)


def test_relative_positions_index_offsets():
    table = torch.arange(5.0).unsqueeze(1)  # 2 * 3 - 1 rows
    rel = relative_positions(3, 3, table)[..., 0]
    # row q, column k holds table[q - k + 2]
    assert torch.equal(rel, torch.tensor([[2.0, 1, 0], [3, 2, 1], [4, 3, 2]]))


def test_prompts_are_per_prompt_independent_and_image_embeddings_path_matches():
    model = _model()
    images = torch.randn(2, 3, 64, 64)
    points, labels = _prompts()
    masks, iou = model(images, points, labels)
    alone, alone_iou = model(images[1:], points[1:, 2:], labels[1:, 2:])
    torch.testing.assert_close(alone[0, 0], masks[1, 2], atol=1e-5, rtol=1e-5)
    embedded = model.image_encoder(images)
    again, _ = model(image_embeddings=embedded, points=points, labels=labels)
    torch.testing.assert_close(again, masks)


def test_padding_point_changes_nothing_but_is_added_without_boxes():
    model = _model()
    images = torch.randn(1, 3, 64, 64)
    points, labels = _prompts(1, 1)
    sparse, _ = model.prompt_encoder(points, labels)
    assert sparse.shape == (1, 1, 3, 32)  # 2 points + the padding point
    torch.testing.assert_close(sparse[0, 0, 2], model.prompt_encoder.not_a_point.weight[0])
    with_pad, _ = model(
        images,
        torch.cat([points, torch.zeros(1, 1, 1, 2)], 2),
        torch.cat([labels, -torch.ones(1, 1, 1, dtype=torch.long)], 2),
    )
    assert with_pad.shape == (1, 1, 3, 32, 32)


def test_fourier_encoding_is_bounded_and_grid_matches_points():
    model = _model()
    encoding = model.prompt_encoder.positional_encoding
    grid = encoding.grid(8)
    assert grid.shape == (32, 8, 8) and grid.abs().max() <= 1
    # the cell (row 2, column 5) centre, in unit coordinates, encodes to the grid's entry
    point = torch.tensor([[(5 + 0.5) / 8, (2 + 0.5) / 8]])
    torch.testing.assert_close(encoding(point)[0], grid[:, 2, 5])
    # sin^2 + cos^2 = 1 per frequency
    torch.testing.assert_close(grid[:16] ** 2 + grid[16:] ** 2, torch.ones(16, 8, 8))


def test_focal_and_dice_golden_values():
    logits = torch.tensor([[[0.0, 2.0], [-2.0, 0.0]]])
    target = torch.tensor([[[1.0, 1.0], [0.0, 0.0]]])
    p = torch.sigmoid(logits)
    ce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    alpha = 0.25 * target + 0.75 * (1 - target)
    torch.testing.assert_close(focal_loss(logits, target), (alpha * ce * (1 - p_t) ** 2).mean().view(1))
    expected_dice = 1 - (2 * (p * target).sum() + 1) / (p.sum() + target.sum() + 1)
    torch.testing.assert_close(dice_loss(logits, target), expected_dice.view(1))
    assert torch.equal(mask_iou(logits, target), torch.tensor([1 / 2]))  # logits>0: one pixel of two


def test_sam_loss_takes_the_minimum_over_masks():
    target = torch.zeros(1, 1, 8, 8)
    target[..., :4, :] = 1
    good = torch.where(target > 0, 10.0, -10.0)[:, :, None]
    bad = -good
    logits = torch.cat([bad, good, bad], dim=2)
    iou = torch.tensor([[[0.0, 1.0, 0.0]]])
    loss_min, parts = sam_loss(logits, iou, target)
    loss_mean, _ = sam_loss(logits, iou, target, minimum_over_masks=False)
    assert parts["mask"] < 1e-3 < loss_mean
    assert parts["iou"] == pytest.approx(0.0)  # predicted IoU equals the masks' true IoU (0, 1, 0)
    assert loss_min < loss_mean


def test_original_layout_round_trip_and_key_names():
    model = _model()
    original = to_original(model.state_dict())
    for key in (
        "image_encoder.blocks.0.attn.qkv.weight",
        "image_encoder.blocks.1.attn.rel_pos_h",
        "image_encoder.patch_embed.proj.weight",
        "image_encoder.neck.0.weight",
        "image_encoder.neck.3.bias",
        "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix",
        "prompt_encoder.point_embeddings.3.weight",
        "prompt_encoder.mask_downscaling.6.weight",
        "prompt_encoder.not_a_point_embed.weight",
        "mask_decoder.transformer.layers.1.cross_attn_image_to_token.out_proj.weight",
        "mask_decoder.transformer.norm_final_attn.weight",
        "mask_decoder.output_upscaling.3.weight",
        "mask_decoder.output_hypernetworks_mlps.3.layers.2.weight",
        "mask_decoder.iou_prediction_head.layers.2.bias",
        "mask_decoder.transformer.layers.0.mlp.lin2.weight",
    ):
        assert key in original, key
    back = from_original(original, TINY)
    assert back.keys() == model.state_dict().keys()
    for key, value in model.state_dict().items():
        assert torch.equal(back[key], value), key
    read = config_from_original(original)
    fields = ("image_size", "patch_size", "encoder_dim", "encoder_depth", "encoder_heads", "window_size")
    fields += ("global_attn_indexes", "prompt_dim", "mask_in_channels", "decoder_depth", "decoder_mlp_dim")
    for field in fields:
        assert getattr(read, field) == getattr(TINY, field), field


def test_original_layout_rejects_missing_and_unexpected_keys():
    original = to_original(_model().state_dict())
    broken = dict(original)
    broken.pop("mask_decoder.iou_token.weight")
    broken["mask_decoder.extra"] = torch.zeros(1)
    with pytest.raises(ValueError, match="missing .*iou_token.*unexpected .*extra"):
        from_original(broken, TINY)
    with pytest.raises(TypeError, match="state_dict must be a mapping"):
        from_original([1, 2], TINY)


# ------------------------------------------------------------------------------- transformers parity


def _reference():
    transformers = pytest.importorskip("transformers")
    from transformers.models.sam.configuration_sam import (
        SamMaskDecoderConfig,
        SamPromptEncoderConfig,
        SamVisionConfig,
    )

    vision = SamVisionConfig(hidden_size=32, output_channels=32, num_hidden_layers=2, num_attention_heads=2,
                             image_size=64, patch_size=8, mlp_dim=64, window_size=3, global_attn_indexes=[1],
                             num_pos_feats=16)  # fmt: skip
    prompt = SamPromptEncoderConfig(hidden_size=32, image_size=64, patch_size=8, mask_input_channels=8)
    decoder = SamMaskDecoderConfig(hidden_size=32, mlp_dim=64, num_hidden_layers=2, num_attention_heads=2,
                                   iou_head_hidden_dim=32)  # fmt: skip
    config = transformers.SamConfig(
        vision_config=vision.to_dict(),
        prompt_encoder_config=prompt.to_dict(),
        mask_decoder_config=decoder.to_dict(),
    )
    torch.manual_seed(0)
    reference = transformers.SamModel(config).eval()
    with torch.no_grad():
        for name, parameter in reference.named_parameters():
            if "positional_embedding" not in name:
                parameter.normal_(0, 0.2)
    ours_config = config_from_transformers(config)
    ours = Sam(ours_config).eval()
    ours.load_state_dict(from_transformers(reference.state_dict(), ours_config))
    return reference, ours, ours_config


@pytest.mark.parity
@pytest.mark.parametrize("prompt", ["points", "boxes", "points+boxes+mask"])
@pytest.mark.parametrize("multimask", [True, False])
def test_matches_transformers_sam_model(prompt, multimask):
    reference, ours, _ = _reference()
    torch.manual_seed(2)
    images = torch.randn(2, 3, 64, 64)
    points, labels = _prompts()
    boxes = torch.sort(torch.rand(2, 3, 2, 2) * 64, dim=2).values.flatten(2)
    mask = torch.randn(2, 1, 32, 32)
    ref_kwargs, our_kwargs = {}, {}
    if "points" in prompt:
        ref_kwargs |= {"input_points": points, "input_labels": labels}
        our_kwargs |= {"points": points, "labels": labels}
    if "boxes" in prompt:
        ref_kwargs["input_boxes"] = boxes
        our_kwargs["boxes"] = boxes
    if "mask" in prompt:
        ref_kwargs["input_masks"] = mask
        our_kwargs["masks"] = mask
    expected = reference(pixel_values=images, multimask_output=multimask, **ref_kwargs)
    masks, iou = ours(images, multimask_output=multimask, **our_kwargs)
    torch.testing.assert_close(masks, expected.pred_masks, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(iou, expected.iou_scores, atol=1e-5, rtol=1e-5)


@pytest.mark.parity
def test_gradients_match_transformers_and_layout_round_trips():
    reference, ours, config = _reference()
    torch.manual_seed(3)
    images = torch.randn(2, 3, 64, 64)
    points, labels = _prompts()
    out = reference(pixel_values=images, input_points=points, input_labels=labels)
    (out.pred_masks.square().mean() + out.iou_scores.sum()).backward()
    masks, iou = ours(images, points, labels)
    (masks.square().mean() + iou.sum()).backward()
    theirs = {k: p.grad for k, p in reference.named_parameters() if p.grad is not None}
    mine = to_transformers({k: p.grad for k, p in ours.named_parameters() if p.grad is not None}, config)
    shared = [k for k in mine if k in theirs]
    assert len(shared) > 100
    for key in shared:
        torch.testing.assert_close(mine[key], theirs[key], atol=1e-5, rtol=1e-4, msg=key)
    exported = to_transformers(ours.state_dict(), config)
    assert exported.keys() == reference.state_dict().keys()
    for key, value in reference.state_dict().items():
        assert torch.equal(exported[key], value), key


# --------------------------------------------------------------------------------------------- bad input


def test_bad_inputs_are_rejected():
    model = _model()
    images = torch.randn(1, 3, 64, 64)
    points, labels = _prompts(1, 1)
    with pytest.raises(ValueError, match="images must be a tensor of shape"):
        model(torch.randn(1, 3, 32, 32), points, labels)
    with pytest.raises(ValueError, match="exactly one of images and image_embeddings"):
        model(None, points, labels)
    with pytest.raises(ValueError, match="labels must be given with points"):
        model(images, points)
    with pytest.raises(ValueError, match="points must be a 4-D tensor"):
        model(images, points[0], labels)
    with pytest.raises(ValueError, match="boxes must be"):
        model(images, boxes=torch.rand(1, 1, 3))
    with pytest.raises(ValueError, match="masks must be a tensor of shape"):
        model(images, points, labels, masks=torch.randn(1, 1, 16, 16))
    with pytest.raises(ValueError, match="prompts must have the images' batch size"):
        model(torch.randn(2, 3, 64, 64), points, labels)
    with pytest.raises(TypeError, match="config must be a SamConfig"):
        Sam({"image_size": 64})
    with pytest.raises(ValueError, match="patch_size must divide image_size"):
        SamConfig(image_size=60, patch_size=8)
    with pytest.raises(ValueError, match="targets must be"):
        sam_loss(torch.randn(1, 1, 3, 4, 4), torch.rand(1, 1, 3), torch.ones(2, 1, 4, 4))
