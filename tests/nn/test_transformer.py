"""aicanon.nn.transformer and nn.patch_embed: ViT's encoder block and patch embedding against timm."""

from __future__ import annotations

import pytest
import torch

from aicanon.nn.patch_embed import PatchEmbed
from aicanon.nn.transformer import Block, DropPath

pytestmark = pytest.mark.paper("vit")


@pytest.mark.parity
@pytest.mark.parametrize("init_values", [None, 0.1])
def test_block_matches_timm(init_values):
    from timm.models.vision_transformer import Block as TimmBlock

    torch.manual_seed(0)
    ref = TimmBlock(32, 4, mlp_ratio=2.0, qkv_bias=True, init_values=init_values).eval()
    ours = Block(32, 4, mlp_ratio=2.0, init_values=init_values).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 7, 32, requires_grad=True)
    a, b = ours(x), ref(x)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    (ga,) = torch.autograd.grad(a.square().sum(), x)
    (gb,) = torch.autograd.grad(b.square().sum(), x)
    torch.testing.assert_close(ga, gb, atol=1e-5, rtol=1e-5)


@pytest.mark.parity
def test_patch_embed_matches_timm():
    from timm.layers import PatchEmbed as TimmPatchEmbed

    ref = TimmPatchEmbed(img_size=32, patch_size=8, in_chans=3, embed_dim=16)
    ours = PatchEmbed(8, 3, 16)
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(ours(x), ref(x), atol=1e-6, rtol=1e-6)
    assert ours(x).shape == (2, 16, 16)


def test_patch_embed_is_the_linear_projection_of_flattened_patches():
    """ViT Eq. 1: x_p^i E, with patches flattened in (channel, row, column) order."""
    embed = PatchEmbed(4, 2, 5)
    x = torch.randn(1, 2, 8, 8)
    patch = x[0, :, 4:8, 0:4].reshape(-1)  # patch row 1, column 0 -> token 2
    expected = embed.proj.weight.reshape(5, -1) @ patch + embed.proj.bias
    torch.testing.assert_close(embed(x)[0, 2], expected, atol=1e-5, rtol=1e-5)


def test_drop_path_keeps_the_mean_and_is_identity_in_eval():
    torch.manual_seed(0)
    drop = DropPath(0.25).train()
    x = torch.ones(20000, 3)
    out = drop(x)
    assert torch.isclose(out[:, 0].unique(), torch.tensor([0.0, 1 / 0.75])).all()
    assert out.mean().item() == pytest.approx(1.0, abs=0.02)
    assert torch.equal(drop.eval()(x), x)


def test_bad_input():
    with pytest.raises(ValueError, match="multiples of patch_size=4"):
        PatchEmbed(4, 3, 8)(torch.randn(1, 3, 10, 12))
    with pytest.raises(ValueError, match=r"images \[batch, 3"):
        PatchEmbed(4, 3, 8)(torch.randn(1, 1, 8, 8))
    with pytest.raises(ValueError, match="dim must be divisible by num_heads"):
        Block(30, 4)
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\)"):
        DropPath(1.0)
