"""ViT weight loading: a tiny checkpoint written here in the JAX .npz layout of
google-research/vision_transformer (converted by ours and loaded by timm's own npz loader: equal
logits), transformers ViTModel parity (features and gradients), timm state dicts at another
resolution (position embeddings resampled as timm), and missing/unexpected keys listed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aicanon.core.state_dict import load_state_dict_strict
from aicanon.vision.vit import VisionTransformer
from aicanon.vision.vit_weights import from_jax, from_timm, from_transformers

pytestmark = pytest.mark.paper("vit")

ARGS = {"img_size": 16, "patch_size": 4, "num_classes": 5, "embed_dim": 24, "depth": 2, "num_heads": 3}


def jax_layout(model: VisionTransformer) -> dict[str, np.ndarray]:
    """Write ``model`` in the Flax layout (written independently of the converter, from the Flax shapes)."""
    s = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    d, h = model.embed_dim, model.blocks[0].attn.num_heads
    out = {
        "embedding/kernel": s["patch_embed.proj.weight"].transpose(2, 3, 1, 0),
        "embedding/bias": s["patch_embed.proj.bias"],
        "cls": s["cls_token"],
        "Transformer/posembed_input/pos_embedding": s["pos_embed"],
        "Transformer/encoder_norm/scale": s["norm.weight"],
        "Transformer/encoder_norm/bias": s["norm.bias"],
        "head/kernel": s["head.weight"].T,
        "head/bias": s["head.bias"],
    }
    for i in range(len(model.blocks)):
        p, b = f"Transformer/encoderblock_{i}/", f"blocks.{i}."
        a = p + "MultiHeadDotProductAttention_1/"
        out[p + "LayerNorm_0/scale"], out[p + "LayerNorm_0/bias"] = s[b + "norm1.weight"], s[b + "norm1.bias"]
        out[p + "LayerNorm_2/scale"], out[p + "LayerNorm_2/bias"] = s[b + "norm2.weight"], s[b + "norm2.bias"]
        qkv_w, qkv_b = s[b + "attn.qkv.weight"], s[b + "attn.qkv.bias"]
        for j, name in enumerate(("query", "key", "value")):
            out[a + f"{name}/kernel"] = qkv_w[j * d : (j + 1) * d].T.reshape(d, h, d // h)
            out[a + f"{name}/bias"] = qkv_b[j * d : (j + 1) * d].reshape(h, d // h)
        out[a + "out/kernel"] = s[b + "attn.proj.weight"].T.reshape(h, d // h, d)
        out[a + "out/bias"] = s[b + "attn.proj.bias"]
        for j in (0, 1):
            out[p + f"MlpBlock_3/Dense_{j}/kernel"] = s[b + f"mlp.fc{j + 1}.weight"].T
            out[p + f"MlpBlock_3/Dense_{j}/bias"] = s[b + f"mlp.fc{j + 1}.bias"]
    return out


def randomised(**kwargs) -> VisionTransformer:
    torch.manual_seed(0)
    model = VisionTransformer(**{**ARGS, **kwargs}).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return model


def test_jax_npz_round_trip():
    model = randomised()
    converted = from_jax(jax_layout(model))
    fresh = VisionTransformer(**ARGS).eval()
    load_state_dict_strict(fresh, converted)
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(fresh(x), model(x))


@pytest.mark.parity
def test_parity_with_timm_npz_loader(tmp_path):
    timm_vit = pytest.importorskip("timm.models.vision_transformer")
    model = randomised()
    path = tmp_path / "tiny_vit.npz"
    np.savez(path, **jax_layout(model))
    reference = timm_vit.VisionTransformer(**ARGS).eval()
    timm_vit._load_weights(reference, str(path))
    with np.load(path, allow_pickle=False) as arrays:
        ours = VisionTransformer(**ARGS).eval()
        load_state_dict_strict(ours, from_jax(dict(arrays)), source=str(path))
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(ours(x), reference(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parity
def test_parity_with_transformers_vit_model_features_and_gradients():
    transformers = pytest.importorskip("transformers")
    config = transformers.ViTConfig(
        image_size=16, patch_size=4, num_channels=3, hidden_size=24, num_hidden_layers=2,
        num_attention_heads=3, intermediate_size=96, layer_norm_eps=1e-6, hidden_act="gelu",
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )  # fmt: skip
    torch.manual_seed(0)
    reference = transformers.ViTModel(config).eval()
    with torch.no_grad():
        for parameter in reference.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    ours = VisionTransformer(**{**ARGS, "num_classes": 0}).eval()
    load_state_dict_strict(ours, from_transformers(reference.state_dict()))
    x = torch.randn(2, 3, 16, 16)
    x_ref, x_ours = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out_ref = reference(pixel_values=x_ref).last_hidden_state
    out_ours = ours.forward_features(x_ours)
    torch.testing.assert_close(out_ours, out_ref, atol=1e-5, rtol=1e-5)
    weights = torch.randn_like(out_ref)
    (out_ref * weights).sum().backward()
    (out_ours * weights).sum().backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad, atol=1e-5, rtol=1e-5)
    ref_grad = reference.state_dict(keep_vars=True)["layers.0.attention.q_proj.weight"].grad
    torch.testing.assert_close(ours.blocks[0].attn.qkv.weight.grad[:24], ref_grad, atol=1e-5, rtol=1e-5)


@pytest.mark.parity
def test_timm_checkpoint_at_another_resolution_is_resampled_as_timm():
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    source = timm.create_model("vit_tiny_patch16_224", pretrained=False, **ARGS)
    target = timm.create_model("vit_tiny_patch16_224", pretrained=False, **{**ARGS, "img_size": 28})
    filtered = timm.models.vision_transformer.checkpoint_filter_fn(source.state_dict(), target)
    target.load_state_dict(filtered)
    ours = VisionTransformer(**{**ARGS, "img_size": 28}).eval()
    load_state_dict_strict(ours, from_timm(source.state_dict(), grid_size=ours.grid_size))
    at_source_size = VisionTransformer(**ARGS)
    load_state_dict_strict(at_source_size, from_timm(source.state_dict(), grid_size=at_source_size.grid_size))
    assert torch.equal(at_source_size.pos_embed, source.pos_embed)  # same grid: untouched
    x = torch.randn(2, 3, 28, 28)
    torch.testing.assert_close(ours(x), target.eval()(x), atol=1e-5, rtol=1e-5)


def test_missing_and_unexpected_keys_are_listed():
    model = VisionTransformer(**ARGS)
    state = model.state_dict()
    state.pop("head.bias")
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"missing keys \['head.bias'\], unexpected keys \['extra.weight'\]"):
        load_state_dict_strict(model, from_timm(state))
    arrays = jax_layout(randomised())
    arrays["Transformer/bogus"] = np.zeros(1)
    with pytest.raises(KeyError, match="unexpected arrays \\['Transformer/bogus'\\]"):
        from_jax(arrays)
    arrays.pop("Transformer/bogus")
    arrays.pop("embedding/bias")
    with pytest.raises(KeyError, match="lacks 'embedding/bias'"):
        from_jax(arrays)
    with pytest.raises(KeyError, match="lacks 'embeddings.cls_token'"):
        from_transformers({"layers.0.layernorm_before.weight": torch.zeros(1)})
    with pytest.raises(TypeError, match="state_dict must be a mapping"):
        from_timm([1, 2])
    with pytest.raises(TypeError, match="arrays must be a mapping"):
        from_jax(None)
    with pytest.raises(ValueError, match="grid_size must be two positive ints"):
        from_timm(model.state_dict(), grid_size=(4,))
    with pytest.raises(ValueError, match="pos_embed has 15 patch tokens, not a square grid"):
        from_timm({**model.state_dict(), "pos_embed": torch.zeros(1, 16, 24)}, grid_size=(4, 4))
