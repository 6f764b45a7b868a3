"""Packed sequences in the Llama model: ``segment_ids`` make each document run as if alone."""

from __future__ import annotations

import pytest
import torch

from aicanon.language.llama import Llama, LlamaConfig

pytestmark = pytest.mark.paper("llama2")


def tiny(position: str = "rope") -> Llama:
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=17, hidden_size=16, intermediate_size=24, num_layers=2, num_heads=4,
        num_kv_heads=2, max_seq_len=32, position=position,
    )  # fmt: skip
    return Llama(cfg).eval()


@pytest.mark.parametrize("position", ["rope", "learned"])
def test_packed_documents_give_the_logits_of_each_document_alone(position):
    model = tiny(position)
    docs = [torch.randint(0, 17, (n,)) for n in (5, 3, 7)]
    row = torch.cat(docs)[None]
    segments = torch.cat([torch.full((len(d),), i) for i, d in enumerate(docs)])[None]
    packed = model(row, segment_ids=segments)
    start = 0
    for doc in docs:
        alone = model(doc[None])
        torch.testing.assert_close(packed[:, start : start + len(doc)], alone, atol=1e-5, rtol=0)
        start += len(doc)
    # Without segment ids the later documents see the earlier ones (and shifted positions).
    assert not torch.allclose(model(row)[:, 5:8], model(docs[1][None]), atol=1e-3)


def test_packed_rows_of_a_batch_with_padding_segments():
    model = tiny()
    a, b, c = torch.randint(0, 17, (4,)), torch.randint(0, 17, (2,)), torch.randint(0, 17, (6,))
    rows = torch.stack([torch.cat([a, b]), c])
    segments = torch.tensor([[0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 0]])
    out = model(rows, segment_ids=segments)
    torch.testing.assert_close(out[0, 4:], model(b[None])[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(out[1], model(c[None])[0], atol=1e-5, rtol=0)


def test_gradients_do_not_cross_document_boundaries():
    model = tiny()
    row = torch.randint(0, 17, (1, 8))
    segments = torch.tensor([[0, 0, 0, 1, 1, 1, 1, 1]])
    embeddings = model.embed_tokens(row).detach().requires_grad_(True)
    model.embed_tokens.forward = lambda ids: embeddings  # feed the leaf through the model
    model(row, segment_ids=segments)[0, 3:].sum().backward()
    assert embeddings.grad[0, :3].abs().max() == 0
    assert embeddings.grad[0, 3:].abs().max() > 0


def test_bad_input():
    model = tiny()
    row = torch.randint(0, 17, (1, 6))
    with pytest.raises(ValueError, match="segment_ids must be an integer tensor of shape"):
        model(row, segment_ids=torch.zeros(1, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="segment_ids must be an integer tensor of shape"):
        model(row, segment_ids=torch.zeros(1, 6))
    with pytest.raises(ValueError, match="cannot be used with a KV cache"):
        model(row, segment_ids=torch.zeros(1, 6, dtype=torch.long), use_cache=True)
