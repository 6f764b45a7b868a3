"""Swin: the relative position index and shift mask by hand, patch merging's order, which tokens each
(S)W-MSA token may see (against a brute-force rule, hypothesis), Section 3.3 sizes (timm's counts),
timm parity of logits, gradients and feature maps on tiny random models, and bad input."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from aicanon.core.state_dict import load_state_dict_strict
from aicanon.vision.swin import (
    SWIN_SIZES,
    PatchMerging,
    SwinBlock,
    SwinTransformer,
    from_timm,
    relative_position_index,
    shifted_window_mask,
    swin,
)

pytestmark = pytest.mark.paper("visual-transformer-survey")

TINY = {
    "img_size": 32,
    "patch_size": 2,
    "in_chans": 3,
    "num_classes": 5,
    "embed_dim": 16,
    "depths": (2, 2, 2),
    "num_heads": (2, 2, 4),
    "window_size": 4,
}


def tiny(**kwargs) -> SwinTransformer:
    return SwinTransformer(**{**TINY, **kwargs})


# --- golden values -------------------------------------------------------------------------------


def test_relative_position_index_by_hand():
    # 2x2 window, table 3x3 indexed (dy + 1) * 3 + (dx + 1); tokens (0,0), (0,1), (1,0), (1,1).
    expected = torch.tensor([[4, 3, 1, 0], [5, 4, 2, 1], [7, 6, 4, 3], [8, 7, 5, 4]])
    assert torch.equal(relative_position_index((2, 2)), expected)


def test_shifted_window_mask_by_hand():
    # 4x4 map, window 2, shift 1: the first window holds unwrapped neighbours only; in the last one
    # every token comes from a different part of the image, so all off-diagonal pairs are masked.
    mask = shifted_window_mask(4, 4, (2, 2), (1, 1))
    assert mask.shape == (4, 4, 4)
    assert torch.equal(mask[0], torch.zeros(4, 4))
    assert torch.equal(mask[3], torch.full((4, 4), -100.0).fill_diagonal_(0.0))
    # window 1 (rows 0-1, cols 2-3): columns 2 and 3 are different parts, rows the same part.
    assert torch.equal(
        mask[1] != 0, torch.tensor([[0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0]]).bool()
    )


def test_patch_merging_concatenation_order():
    merge = PatchMerging(1, 4)
    merge.norm = nn.Identity()  # look at the concatenation itself
    with torch.no_grad():
        merge.reduction.weight.copy_(torch.eye(4))
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 2, 2, 1)  # [[a, b], [c, d]]
    # Section 3.1 / official code: x0 top-left, x1 bottom-left, x2 top-right, x3 bottom-right.
    assert torch.equal(merge(x).flatten(), torch.tensor([1.0, 3.0, 2.0, 4.0]))


@pytest.mark.parametrize("name, params", [("T", 28_288_354), ("S", 49_606_258), ("B", 87_768_224)])
def test_section_3_3_sizes_parameter_counts(name, params):
    with torch.device("meta"):
        model = swin(name)
    assert sum(p.numel() for p in model.parameters()) == params
    size = SWIN_SIZES[name]
    assert model.num_features == size.embed_dim * 8
    assert model.feature_strides == (4, 8, 16, 32)


# --- invariants ----------------------------------------------------------------------------------


@settings(max_examples=15, deadline=None)
@given(mh=st.integers(1, 5), mw=st.integers(1, 5))
def test_relative_position_index_properties(mh, mw):
    index = relative_position_index((mh, mw))
    center = (mh - 1) * (2 * mw - 1) + (mw - 1)  # offset (0, 0)
    assert index.min() >= 0 and index.max() < (2 * mh - 1) * (2 * mw - 1)
    assert torch.all(index.diagonal() == center)
    assert torch.equal(index + index.T, torch.full_like(index, 2 * center))  # offsets negate
    ys, xs = torch.meshgrid(torch.arange(mh), torch.arange(mw), indexing="ij")
    offsets = torch.stack([ys.flatten()[:, None] - ys.flatten(), xs.flatten()[:, None] - xs.flatten()], -1)
    # same offset <=> same table entry
    same_offset = (offsets[:, :, None, None] == offsets[None, None]).all(-1)
    same_index = index[:, :, None, None] == index[None, None]
    assert torch.equal(same_offset, same_index)


def _dependence(block: SwinBlock, h: int, w: int, c: int) -> torch.Tensor:
    """[HW, HW]: whether the attention output at token p depends on the input at token q."""
    x = torch.randn(1, h, w, c)
    jac = torch.autograd.functional.jacobian(lambda t: block._window_attention(t), x)
    return jac.abs().sum(dim=(0, 3, 4, 7)).reshape(h * w, h * w) > 1e-20


@settings(max_examples=8, deadline=None)
@given(windows=st.integers(2, 3), window=st.integers(2, 3), shifted=st.booleans(), seed=st.integers(0, 99))
def test_each_token_sees_exactly_its_shifted_window_neighbours(windows, window, shifted, seed):
    torch.manual_seed(seed)
    side, c = windows * window, 4
    shift = window // 2 if shifted else 0
    block = SwinBlock(c, (side, side), 2, window, shift).eval()
    with torch.no_grad():
        block.attn.relative_position_bias_table.normal_()
    ys, xs = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    # Brute force (Section 3.2): q is visible from p iff they fall in the same window of the shifted
    # partition and are neighbours in the image (no wrap-around: closer than a window along each axis).
    wy, wx = (ys - shift) % side // window, (xs - shift) % side // window
    same_window = (wy[:, None] == wy) & (wx[:, None] == wx)
    near = ((ys[:, None] - ys).abs() < window) & ((xs[:, None] - xs).abs() < window)
    assert torch.equal(_dependence(block, side, side, c), same_window & near)


def test_feature_maps_strides_and_forward_head():
    model = tiny().eval()
    x = torch.randn(2, 3, 32, 32)
    maps = model.feature_maps(x)
    assert {s: tuple(m.shape) for s, m in maps.items()} == {
        2: (2, 16, 16, 16),
        4: (2, 32, 8, 8),
        8: (2, 64, 4, 4),
    }
    assert model.feature_channels == {2: 16, 4: 32, 8: 64}
    features = model.forward_features(x)
    assert torch.allclose(maps[8].permute(0, 2, 3, 1), features)
    assert torch.allclose(model(x), model.head.fc(features.mean(dim=(1, 2))))
    model.reset_classifier(0)
    assert model(x).shape == (2, 64)
    model.reset_classifier(7)
    assert model(x).shape == (2, 7)


def test_last_stage_no_larger_than_window_uses_one_unshifted_window():
    model = tiny()
    last = model.layers[-1].blocks[1]
    assert last.window == (4, 4) and last.shift == (0, 0) and last.attn_mask is None
    first = model.layers[0].blocks[1]
    assert first.shift == (2, 2) and first.attn_mask.shape == (16, 16, 16)


def test_training_step_reduces_loss():
    torch.manual_seed(0)
    model = tiny(drop_path_rate=0.1)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 5, (8,))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


# --- reference parity ----------------------------------------------------------------------------


def _timm_pair(**kwargs):
    timm = pytest.importorskip("timm")
    cfg = {**TINY, **kwargs}
    ref = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, drop_path_rate=0.0, **cfg)
    ours = SwinTransformer(**cfg)
    load_state_dict_strict(ours, from_timm(ref.state_dict()), source="timm swin state dict")
    return ref, ours


@pytest.mark.parity
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"img_size": (32, 64)}, {"window_size": 2, "depths": (2, 4, 2), "num_heads": (1, 2, 2)}],
    ids=["square", "rectangular", "window2"],
)
def test_parity_with_timm_logits_and_gradients(kwargs):
    torch.manual_seed(0)
    ref, ours = _timm_pair(**kwargs)
    # random (not trivial) bias tables, so the relative position index is exercised
    with torch.no_grad():
        for (_, a), (_, b) in zip(ref.named_parameters(), ours.named_parameters()):
            a.normal_(std=0.3)
            b.copy_(a)
    size = ours.img_size
    x = torch.randn(2, 3, *size)
    out_ref, out = ref(x), ours(x)
    torch.testing.assert_close(out, out_ref, atol=1e-5, rtol=0)
    (out_ref.square().sum() + out_ref.sum()).backward()
    (out.square().sum() + out.sum()).backward()
    grads = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, grads[name].grad, atol=1e-5, rtol=1e-5, msg=name)


@pytest.mark.parity
def test_parity_with_timm_feature_maps():
    torch.manual_seed(1)
    ref, ours = _timm_pair()
    ref.eval(), ours.eval()
    x = torch.randn(2, 3, 32, 32)
    _, inter = ref.forward_intermediates(x, norm=True)
    ours_maps = list(ours.feature_maps(x).values())
    for a, b in zip(ours_maps, inter):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


@pytest.mark.parity
def test_from_timm_drops_computed_buffers_of_original_checkpoints():
    torch.manual_seed(2)
    ref, ours = _timm_pair()
    state = dict(ref.state_dict())
    state["layers.0.blocks.0.attn.relative_position_index"] = relative_position_index((4, 4))
    state["layers.0.blocks.1.attn_mask"] = shifted_window_mask(16, 16, (4, 4), (2, 2))
    with pytest.raises(ValueError, match=r"unexpected keys \['layers.0.blocks.0.attn.relative_position_index'"):
        load_state_dict_strict(ours, state)  # they are not ours to load ...
    load_state_dict_strict(ours, from_timm(state))  # ... and the converter drops them
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(ours.eval()(x), ref.eval()(x), atol=1e-5, rtol=0)


# --- bad input -----------------------------------------------------------------------------------


def test_rejects_wrong_channels_and_sizes():
    model = tiny()
    with pytest.raises(ValueError, match="3 channels, got 1"):
        model(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match="must be 32x32 images.*got 64x64"):
        model(torch.randn(1, 3, 64, 64))
    with pytest.raises(ValueError, match=r"images \[batch, 3, height, width\], got \(3, 32, 32\)"):
        model(torch.randn(3, 32, 32))
    with pytest.raises(ValueError, match=r"features must be a \[batch, h, w, 64\] map"):
        model.forward_head(torch.randn(2, 10, 64))


def test_rejects_image_sizes_that_do_not_fit_the_grid():
    with pytest.raises(
        ValueError, match=r"img_size must be a multiple of patch_size \* 2\^\(stages-1\) = 8, got \(36, 36\)"
    ):
        tiny(img_size=36)


def test_rejects_window_not_dividing_the_feature_map():
    with pytest.raises(ValueError, match="window_size .*must divide the feature map 16x16"):
        tiny(window_size=6)


def test_rejects_bad_configs():
    with pytest.raises(ValueError, match="one entry per stage"):
        tiny(depths=(2, 2), num_heads=(2, 2, 4))
    with pytest.raises(ValueError, match="dim must be divisible by num_heads"):
        tiny(num_heads=(3, 2, 4))
    with pytest.raises(TypeError, match="window_size must be an int"):
        tiny(window_size=2.5)
    with pytest.raises(ValueError, match="name must be one of"):
        swin("XL")
    with pytest.raises(ValueError, match="depths is set by the name"):
        swin("T", depths=(1, 1, 1, 1))


def test_loading_lists_missing_and_unexpected_keys():
    model = tiny()
    state = dict(model.state_dict())
    state.pop("norm.weight")
    state["head.weight"] = torch.zeros(5, 64)
    with pytest.raises(
        ValueError, match=r"missing keys \['norm.weight'\], unexpected keys \['head.weight'\]"
    ):
        load_state_dict_strict(model, from_timm(state))
    state = dict(model.state_dict())
    state["head.fc.weight"] = torch.zeros(10, 64)
    with pytest.raises(ValueError, match=r"head.fc.weight: expected \(5, 64\), got \(10, 64\)"):
        load_state_dict_strict(model, from_timm(state))
    with pytest.raises(TypeError, match="state_dict must be a mapping"):
        from_timm([1, 2])
