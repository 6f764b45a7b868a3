"""aicanon.language.roformer: parity with transformers' RoFormerModel (outputs and gradients, with an
attention mask), the state-dict converters, invariants of the encoder, and bad input."""

from __future__ import annotations

import pytest
import torch

from aicanon.core.state_dict import load_state_dict_strict
from aicanon.language.roformer import (
    RoFormer,
    RoFormerConfig,
    config_from_transformers,
    from_transformers,
    to_transformers,
)
from aicanon.nn.rotary import apply_rotary

pytestmark = pytest.mark.paper("roformer")

TINY = {
    "vocab_size": 50,
    "hidden_size": 32,
    "num_layers": 2,
    "num_heads": 4,
    "intermediate_size": 64,
    "max_position_embeddings": 64,
}


def tiny(**overrides) -> RoFormerConfig:
    return RoFormerConfig(**{**TINY, "hidden_dropout": 0.0, "attention_dropout": 0.0, **overrides})


def reference_pair(rotary_value: bool = False, embedding_size: int | None = None, hidden_act: str = "gelu"):
    """A random transformers RoFormerModel and ours with its weights (through the converter)."""
    import transformers

    torch.manual_seed(0)
    config = transformers.RoFormerConfig(
        vocab_size=50,
        hidden_size=32,
        embedding_size=embedding_size,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        rotary_value=rotary_value,
        hidden_act=hidden_act,
    )
    reference = transformers.RoFormerModel(config).eval()
    with torch.no_grad():  # non-trivial LayerNorm parameters and biases, so they are tested too
        for name, p in reference.named_parameters():
            if "LayerNorm" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    ours = RoFormer(config_from_transformers(config)).eval()
    load_state_dict_strict(ours, from_transformers(reference.state_dict()))
    return ours, reference


def batch():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 50, (3, 12), generator=g)
    mask = torch.ones(3, 12, dtype=torch.long)
    mask[1, 8:] = 0
    mask[2, 3:] = 0
    ids[mask == 0] = 0  # padding token
    token_types = torch.zeros_like(ids)
    token_types[:, 6:] = 1
    return ids, mask, token_types


@pytest.mark.parity
@pytest.mark.parametrize(
    "rotary_value, embedding_size, hidden_act",
    [(False, None, "gelu"), (True, None, "gelu"), (False, 16, "gelu_new"), (True, 16, "relu")],
)
def test_outputs_and_gradients_equal_transformers(rotary_value, embedding_size, hidden_act):
    ours, reference = reference_pair(rotary_value, embedding_size, hidden_act)
    ids, mask, token_types = batch()
    out = ours(ids, attention_mask=mask, token_type_ids=token_types)
    ref = reference(ids, attention_mask=mask, token_type_ids=token_types).last_hidden_state
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)
    # a fixed random read-out of the real tokens, so every output and parameter gets a gradient
    weights = (
        torch.randn(out.shape, generator=torch.Generator().manual_seed(2)) * mask.unsqueeze(-1) / out.numel()
    )
    (out * weights).sum().backward()
    (ref * weights).sum().backward()
    ours_grads = to_transformers({n: p.grad for n, p in ours.named_parameters()})
    ref_grads = {n: p.grad for n, p in reference.named_parameters() if p.requires_grad}
    assert set(ours_grads) == set(ref_grads)
    for name, grad in ref_grads.items():
        torch.testing.assert_close(ours_grads[name], grad, rtol=0, atol=1e-5, msg=name)
    # BERT's padding row gets no gradient in either
    assert torch.all(ours.token_embedding.weight.grad[0] == 0)


@pytest.mark.parity
def test_state_dict_round_trip_and_task_heads():
    import transformers

    config = transformers.RoFormerConfig(
        vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64
    )
    masked_lm = transformers.RoFormerForMaskedLM(config)
    converted = from_transformers(masked_lm.state_dict())  # 'roformer.' prefix, 'cls.' head dropped
    ours = RoFormer(config_from_transformers(config))
    load_state_dict_strict(ours, converted)
    back = to_transformers(ours.state_dict())
    encoder = {
        k: v for k, v in masked_lm.roformer.state_dict().items() if k != "encoder.embed_positions.weight"
    }
    assert set(back) == set(encoder)
    for key, value in encoder.items():
        assert torch.equal(back[key], value), key


@pytest.mark.parity
def test_rotation_tables_match_transformers_sinusoids():
    """transformers' table is [sin(m theta_i) | cos(m theta_i)] (float64, then float32); ours float32."""
    from transformers.models.roformer.modeling_roformer import RoFormerSinusoidalPositionalEmbedding

    table = RoFormerSinusoidalPositionalEmbedding(1536, 64).create_weight()
    cos, sin = RoFormer(tiny(hidden_size=128, num_heads=2)).rotary.cos_sin(torch.arange(1536))
    # adjacent-pair layout: every angle twice (theta_0, theta_0, theta_1, theta_1, ...)
    assert torch.equal(cos[:, 0::2], cos[:, 1::2])
    torch.testing.assert_close(sin[:512, 0::2], table[:512, :32], rtol=0, atol=3e-5)
    torch.testing.assert_close(cos[:512, 0::2], table[:512, 32:], rtol=0, atol=3e-5)
    torch.testing.assert_close(sin[:, 0::2], table[:, :32], rtol=0, atol=1e-4)
    torch.testing.assert_close(cos[:, 0::2], table[:, 32:], rtol=0, atol=1e-4)


def test_attention_scores_depend_on_relative_position_only():
    """Eq. (16) inside the model: a run of one repeated token gives Toeplitz first-layer scores."""
    torch.manual_seed(0)
    model = RoFormer(tiny()).eval()
    t = 20
    ids = torch.full((1, t), 7)
    with torch.no_grad():
        x = model.embedding_norm(
            model.token_embedding(ids) + model.token_type_embedding(torch.zeros_like(ids))
        )
        attention = model.layers[0].attention
        q = attention.query(x).view(1, t, 4, 8).transpose(1, 2)
        k = attention.key(x).view(1, t, 4, 8).transpose(1, 2)
        cos, sin = model.rotary.cos_sin(torch.arange(t))
        q, k = apply_rotary(q, cos, sin, interleaved=True), apply_rotary(k, cos, sin, interleaved=True)
        scores = q @ k.transpose(-1, -2)
    for offset in range(-t + 1, t):
        diagonal = scores.diagonal(offset, dim1=-2, dim2=-1)
        torch.testing.assert_close(diagonal, diagonal[..., :1].expand_as(diagonal), rtol=1e-4, atol=1e-4)
    # and position matters: the scores are not constant along rows
    assert (scores[0, 0, 0] - scores[0, 0, 0, 0]).abs().max() > 1e-3


def test_padding_content_does_not_change_real_tokens():
    torch.manual_seed(0)
    model = RoFormer(tiny()).eval()
    ids, mask, _ = batch()
    other = ids.clone()
    other[mask == 0] = torch.randint(1, 50, (int((mask == 0).sum()),))
    with torch.no_grad():
        a, b = model(ids, mask), model(other, mask.bool())
    real = mask.bool()
    torch.testing.assert_close(a[real], b[real], rtol=0, atol=1e-6)
    assert not torch.allclose(a[~real], b[~real])


def test_positions_matter_and_rotary_value_changes_the_output():
    torch.manual_seed(0)
    model = RoFormer(tiny()).eval()
    ids = torch.randint(1, 50, (2, 9))
    reversed_ids = ids.flip(1)
    with torch.no_grad():
        # without positions, self-attention is permutation-equivariant; RoPE breaks that
        assert not torch.allclose(model(reversed_ids), model(ids).flip(1), atol=1e-4)
        value_model = RoFormer(tiny(rotary_value=True)).eval()
        value_model.load_state_dict(model.state_dict())
        assert not torch.allclose(value_model(ids), model(ids), atol=1e-4)


def test_dropout_only_in_training_and_shapes():
    torch.manual_seed(0)
    model = RoFormer(RoFormerConfig(**TINY))
    ids = torch.randint(1, 50, (2, 5))
    assert model(ids).shape == (2, 5, 32)
    assert not torch.equal(model.train()(ids), model(ids))
    model.eval()
    assert torch.equal(model(ids), model(ids))
    assert torch.all(model.token_embedding.weight[0] == 0)  # padding row initialised to zero, as BERT


def test_longer_than_any_earlier_sequence_regrows_the_table():
    model = RoFormer(tiny(max_position_embeddings=600)).eval()
    with torch.no_grad():
        short = model(torch.arange(1, 11).unsqueeze(0) % 50)
        long = model(torch.arange(1, 301).unsqueeze(0) % 50)
    assert short.shape == (1, 10, 32) and long.shape == (1, 300, 32)
    assert torch.isfinite(long).all()


# --------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "overrides, error, match",
    [
        ({"hidden_size": 30, "num_heads": 4}, ValueError, "hidden_size must split"),
        ({"hidden_size": 12, "num_heads": 4}, ValueError, "heads of even size"),
        ({"num_layers": 0}, ValueError, "num_layers must be >= 1, got 0"),
        ({"vocab_size": 2.5}, TypeError, "vocab_size must be an int, got float"),
        ({"pad_token_id": 50}, ValueError, r"pad_token_id must be in \[0, \d+\] or None, got 50"),
        ({"hidden_act": "swish"}, ValueError, "hidden_act must be one of"),
        ({"attention_dropout": 1.0}, ValueError, "attention_dropout must be in"),
        ({"rope_base": 1.0}, ValueError, "rope_base must be > 1"),
    ],
)
def test_config_rejects_bad_values(overrides, error, match):
    with pytest.raises(error, match=match):
        RoFormerConfig(**{**TINY, **overrides})


def test_model_rejects_bad_input():
    model = RoFormer(tiny(max_position_embeddings=16))
    with pytest.raises(TypeError, match="cfg must be a RoFormerConfig"):
        RoFormer(TINY)
    with pytest.raises(
        ValueError, match=r"input_ids must be an integer tensor \[batch, length\], got \(2, 3\) torch.float32"
    ):
        model(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="input_ids must be an integer tensor"):
        model(torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"input_ids must be in \[0, 50\), got values in \[0, 50\]"):
        model(torch.tensor([[0, 50]]))
    with pytest.raises(ValueError, match="max_position_embeddings=16, got 17"):
        model(torch.zeros(1, 17, dtype=torch.long))
    ids = torch.ones(2, 4, dtype=torch.long)
    with pytest.raises(ValueError, match=r"attention_mask must have shape \(2, 4\)"):
        model(ids, attention_mask=torch.ones(2, 5))
    with pytest.raises(ValueError, match="attention_mask must hold 0/1"):
        model(ids, attention_mask=torch.full((2, 4), 0.5))
    with pytest.raises(ValueError, match=r"token_type_ids must have shape \(2, 4\)"):
        model(ids, token_type_ids=torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"token_type_ids must be in \[0, 2\)"):
        model(ids, token_type_ids=torch.full((2, 4), 2))


def test_converters_reject_foreign_keys():
    with pytest.raises(
        ValueError, match="not part of a RoFormerModel: 'encoder.layer.0.crossattention.self.query.weight'"
    ):
        from_transformers({"encoder.layer.0.crossattention.self.query.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="not part of a RoFormerModel: 'pooler.dense.weight'"):
        from_transformers({"pooler.dense.weight": torch.zeros(1)})
    with pytest.raises(TypeError, match="state_dict must be a mapping"):
        from_transformers([("a", torch.zeros(1))])
    with pytest.raises(ValueError, match="not part of a RoFormer: 'layers.0.mlp.weight'"):
        to_transformers({"layers.0.mlp.weight": torch.zeros(1)})
    with pytest.raises(TypeError, match="state_dict must be a mapping"):
        to_transformers(None)
