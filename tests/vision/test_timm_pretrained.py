"""One-call loading of timm checkpoints (ViT, DeiT, Swin, MLP-Mixer): ``<Model>.from_timm(state dict or
.safetensors file, timm model name)`` against timm models built offline with random weights, and the
way back (our state dict loads strictly into timm)."""

from __future__ import annotations

import pytest
import torch

from aicanon.vision.deit import DistilledVisionTransformer
from aicanon.vision.mlp_mixer import MlpMixer
from aicanon.vision.swin import SwinTransformer
from aicanon.vision.vit import VisionTransformer

timm = pytest.importorskip("timm")
safetensors_torch = pytest.importorskip("safetensors.torch")

pytestmark = pytest.mark.paper("vit")

# (our class, timm name, timm overrides, our overrides, image size): small images keep these fast;
# the architectures are the variants' own (the names fix widths and depths).
CASES = [
    (VisionTransformer, "vit_tiny_patch16_224", {"img_size": 32, "num_classes": 7}, {"img_size": 32}, 32),
    (VisionTransformer, "deit_tiny_patch16_224", {"img_size": 32}, {"img_size": 32}, 32),
    (DistilledVisionTransformer, "deit_tiny_distilled_patch16_224", {"img_size": 32}, {"img_size": 32}, 32),
    (SwinTransformer, "swin_tiny_patch4_window7_224", {"num_classes": 5}, {}, 224),
    (MlpMixer, "mixer_s32_224", {"num_classes": 3}, {}, 224),
]


@pytest.mark.parametrize(
    ("cls", "name", "timm_kwargs", "ours_kwargs", "size"), CASES, ids=[c[1] for c in CASES]
)
def test_from_timm_state_dict_and_file_match_timm(tmp_path, cls, name, timm_kwargs, ours_kwargs, size):
    torch.manual_seed(0)
    reference = timm.create_model(name, pretrained=False, **timm_kwargs).eval()
    with torch.no_grad():  # timm zero-inits some heads: random values make the comparison bite
        for p in reference.parameters():
            p.add_(0.02 * torch.randn_like(p))
    state = reference.state_dict()
    path = tmp_path / "model.safetensors"
    safetensors_torch.save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        expected = reference(x)
    for source in (state, path, str(path)):
        ours = cls.from_timm(source, name + ".some_pretrained_tag", **ours_kwargs).eval()
        assert type(ours) is cls
        with torch.no_grad():  # equal logits also show the head's width was read from the checkpoint
            torch.testing.assert_close(ours(x), expected, atol=1e-5, rtol=1e-5)
    # The way back: our names are timm's, so our state dict loads strictly into timm.
    fresh = timm.create_model(name, pretrained=False, **timm_kwargs).eval()
    fresh.load_state_dict(ours.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), expected, atol=1e-5, rtol=1e-5)


def test_vit_from_timm_resamples_to_another_resolution():
    reference = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, num_classes=0)
    ours = VisionTransformer.from_timm(reference.state_dict(), "vit_tiny_patch16_224", img_size=48)
    assert ours.grid_size == (3, 3) and ours.num_classes == 0
    assert ours(torch.randn(1, 3, 48, 48)).shape == (1, 192)


def test_from_timm_refuses_unknown_variants_clashes_and_pickles(tmp_path):
    state = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32).state_dict()
    with pytest.raises(ValueError, match="variant must be a timm ViT model name.*vit_clip"):
        VisionTransformer.from_timm(state, "vit_clip_base_patch16_224")
    with pytest.raises(ValueError, match="variant must be a timm distilled DeiT"):
        DistilledVisionTransformer.from_timm(state, "vit_tiny_patch16_224")
    with pytest.raises(TypeError, match="variant must be a timm model name"):
        VisionTransformer.from_timm(state, 16)
    with pytest.raises(ValueError, match=r"\['depth'\] are set by the timm variant"):
        VisionTransformer.from_timm(state, "vit_tiny_patch16_224", depth=2)
    with pytest.raises(
        ValueError, match="timm vit_small_patch16_224 state dict does not match.*wrong shapes"
    ):
        VisionTransformer.from_timm(state, "vit_small_patch16_224", img_size=32)
    with pytest.raises(ValueError, match="must be a .safetensors file.*never unpickle"):
        VisionTransformer.from_timm(tmp_path / "model.pth", "vit_tiny_patch16_224")
    with pytest.raises(ValueError, match="must name an existing .safetensors file"):
        VisionTransformer.from_timm(tmp_path / "absent.safetensors", "vit_tiny_patch16_224")
    with pytest.raises(TypeError, match="mapping of names to tensors or a path"):
        MlpMixer.from_timm([1, 2], "mixer_s32_224")
    with pytest.raises(ValueError, match="variant must be a timm Swin model name"):
        SwinTransformer.from_timm(state, "swin_s3_tiny_224")
