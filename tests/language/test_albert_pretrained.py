"""ALBERT folders in one call: ``from_pretrained`` reads what transformers' ``save_pretrained`` writes and
``save_pretrained`` writes what transformers' ``from_pretrained`` reads (random tiny models, offline)."""

from __future__ import annotations

import json

import pytest
import torch

from aicanon.language.albert import AlbertConfig, AlbertEncoder, AlbertForPreTraining, config_to_transformers

transformers = pytest.importorskip("transformers")

pytestmark = pytest.mark.paper("albert")

CFG = AlbertConfig(
    vocab_size=50, embedding_size=8, hidden_size=16, num_layers=3, num_heads=2, intermediate_size=32,
    max_position_embeddings=24, classifier_dropout=0.0,
)  # fmt: skip


def _inputs():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, CFG.vocab_size, (2, 7), generator=g)
    types = torch.randint(0, 2, (2, 7), generator=g)
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[1, 5:] = 0
    return ids, types, mask


def _randomise(model):
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


@pytest.mark.parametrize("sharing", ["all", "none"])
@pytest.mark.parametrize("shards", [None, "4KB"])
def test_encoder_round_trips_with_albert_model(tmp_path, sharing, shards):
    torch.manual_seed(0)
    cfg = AlbertConfig(**{**CFG.__dict__, "sharing": sharing})
    reference = _randomise(
        transformers.AlbertModel(transformers.AlbertConfig(**config_to_transformers(cfg)))
    ).eval()
    reference.save_pretrained(tmp_path / "theirs", safe_serialization=True)
    ids, types, mask = _inputs()
    with torch.no_grad():
        expected = reference(input_ids=ids, token_type_ids=types, attention_mask=mask)
        ours = AlbertEncoder.from_pretrained(tmp_path / "theirs").eval()
        hidden, pooled = ours(ids, types, mask)
    torch.testing.assert_close(hidden, expected.last_hidden_state, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(pooled, expected.pooler_output, atol=1e-5, rtol=1e-5)

    ours.save_pretrained(tmp_path / "ours", max_shard_size=shards)
    if shards:
        assert (tmp_path / "ours" / "model.safetensors.index.json").is_file()
    back = transformers.AlbertModel.from_pretrained(tmp_path / "ours").eval()
    with torch.no_grad():
        again = back(input_ids=ids, token_type_ids=types, attention_mask=mask)
    torch.testing.assert_close(again.last_hidden_state, expected.last_hidden_state, atol=1e-5, rtol=1e-5)


def test_pretraining_model_round_trips_with_albert_for_pretraining(tmp_path):
    torch.manual_seed(0)
    config = transformers.AlbertConfig(**config_to_transformers(CFG))
    reference = _randomise(transformers.AlbertForPreTraining(config)).eval()
    reference.tie_weights()
    reference.save_pretrained(tmp_path / "theirs", safe_serialization=True)
    ids, types, mask = _inputs()
    with torch.no_grad():
        expected = reference(input_ids=ids, token_type_ids=types, attention_mask=mask)
        ours = AlbertForPreTraining.from_pretrained(tmp_path / "theirs").eval()
        mlm, sop = ours(ids, types, mask)
    torch.testing.assert_close(mlm, expected.prediction_logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(sop, expected.sop_logits, atol=1e-5, rtol=1e-5)
    # The encoder alone loads from the same folder (heads left out, as AlbertModel does).
    with torch.no_grad():
        hidden, _ = AlbertEncoder.from_pretrained(tmp_path / "theirs")(ids, types, mask)
    torch.testing.assert_close(mlm, ours.mlm_logits(hidden), atol=1e-5, rtol=1e-5)

    ours.save_pretrained(tmp_path / "ours")
    assert json.loads((tmp_path / "ours" / "config.json").read_text())["architectures"] == [
        "AlbertForPreTraining"
    ]
    back = transformers.AlbertForPreTraining.from_pretrained(tmp_path / "ours").eval()
    with torch.no_grad():
        again = back(input_ids=ids, token_type_ids=types, attention_mask=mask)
    torch.testing.assert_close(again.prediction_logits, expected.prediction_logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(again.sop_logits, expected.sop_logits, atol=1e-5, rtol=1e-5)


def test_unsupported_configs_and_models_are_refused(tmp_path):
    model = AlbertEncoder(CFG)
    model.save_pretrained(tmp_path / "m")
    config_path = tmp_path / "m" / "config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "position_embedding_type": "relative_key"}))
    with pytest.raises(ValueError, match="position_embedding_type must be 'absolute', got 'relative_key'"):
        AlbertEncoder.from_pretrained(tmp_path / "m")
    config_path.write_text(json.dumps({**config, "inner_group_num": 2}))
    with pytest.raises(ValueError, match="inner_group_num must be 1"):
        AlbertEncoder.from_pretrained(tmp_path / "m")
    config_path.write_text(json.dumps(config))
    with pytest.raises(
        ValueError, match="state_dict lacks 'albert.embeddings"
    ):  # an AlbertModel folder: no heads
        AlbertForPreTraining.from_pretrained(tmp_path / "m")
    with pytest.raises(ValueError, match="sharing must be 'all' or 'none'"):
        AlbertEncoder(AlbertConfig(**{**CFG.__dict__, "sharing": "ffn"})).save_pretrained(tmp_path / "x")
    with pytest.raises(ValueError, match="must have its pooler"):
        AlbertEncoder(CFG, add_pooler=False).save_pretrained(tmp_path / "x")
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "config.json").write_text(json.dumps(config))
    (tmp_path / "p" / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(ValueError, match=r"pickled \['pytorch_model.bin'\].*AlbertModel.from_pretrained"):
        AlbertEncoder.from_pretrained(tmp_path / "p")
