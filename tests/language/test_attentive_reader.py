"""The Deep LSTM, Attentive and Impatient Readers (Hermann et al. 2015, Section 4.2, Eq. 5-10).

There is no maintained reference implementation of these readers to test against; the parity test
compares our bidirectional encoder with torch's packed bidirectional LSTM, and the equations are
checked by recomputing them from each module's weights.
"""

import pytest
import torch
from torch import nn

from aicanon.language.attentive_reader import AttentiveReader, DeepLSTMReader, ImpatientReader, reverse_padded

pytestmark = pytest.mark.paper("attentive-reader")

VOCAB, ENTITIES, DELIMITER = 30, 6, 2


def make(kind: str, **kwargs) -> nn.Module:
    torch.manual_seed(0)
    sizes = dict(embedding_size=8, hidden_size=5, **kwargs)
    if kind == "deep_lstm":
        return DeepLSTMReader(VOCAB, ENTITIES, delimiter_id=DELIMITER, num_layers=3, **sizes).eval()
    if kind == "impatient":
        return ImpatientReader(VOCAB, ENTITIES, attention_size=7, **sizes).eval()
    return AttentiveReader(VOCAB, ENTITIES, attention_size=7, attention=kind, **sizes).eval()


def batch():
    generator = torch.Generator().manual_seed(1)
    document = torch.randint(3, VOCAB, (3, 9), generator=generator)
    query = torch.randint(3, VOCAB, (3, 5), generator=generator)
    document_lengths = torch.tensor([9, 4, 6])
    query_lengths = torch.tensor([5, 2, 3])
    candidates = torch.tensor([[1, 1, 0, 0, 0, 1], [0, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    return document, document_lengths, query, query_lengths, candidates


READERS = ["additive", "uniform", "impatient", "deep_lstm"]


def test_reverse_padded_reverses_within_each_length():
    x = torch.arange(10).view(2, 5)
    reversed_x = reverse_padded(x, torch.tensor([3, 5]))
    assert reversed_x.tolist() == [[2, 1, 0, 3, 4], [9, 8, 7, 6, 5]]
    assert torch.equal(reverse_padded(reversed_x, torch.tensor([3, 5])), x)


@pytest.mark.parametrize("kind", READERS)
def test_output_is_restricted_to_the_candidates(kind):
    logits = make(kind)(*batch())
    candidates = batch()[-1]
    assert logits.shape == (3, ENTITIES)
    assert torch.isinf(logits[~candidates]).all() and torch.isfinite(logits[candidates]).all()
    probabilities = logits.softmax(dim=1)
    assert torch.allclose(probabilities.sum(dim=1), torch.ones(3))
    assert probabilities[1, 1] == 1.0  # a single candidate is certain


@pytest.mark.parametrize("kind", READERS)
def test_padding_never_changes_an_example(kind):
    model = make(kind)
    document, document_lengths, query, query_lengths, candidates = batch()
    together = model(document, document_lengths, query, query_lengths, candidates)
    for row in range(3):
        d, q = document_lengths[row], query_lengths[row]
        alone = model(
            document[row : row + 1, :d],
            d.view(1),
            query[row : row + 1, :q],
            q.view(1),
            candidates[row : row + 1],
        )
        assert torch.allclose(alone, together[row : row + 1], atol=1e-6)


@pytest.mark.parametrize("kind", READERS)
def test_gradients_are_finite_through_the_masked_softmax(kind):
    model = make(kind).train()
    document, document_lengths, query, query_lengths, candidates = batch()
    logits = model(document, document_lengths, query, query_lengths, candidates)
    nn.functional.cross_entropy(logits, torch.tensor([0, 1, 3])).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parity
def test_bidirectional_encoder_matches_torch_packed_bidirectional_lstm():
    model = make("additive")
    encoder = model.document_encoder
    reference = nn.LSTM(8, 5, batch_first=True, bidirectional=True)
    with torch.no_grad():
        for suffix, lstm in (("", encoder.forward_lstm), ("_reverse", encoder.backward_lstm)):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(reference, f"{name}_l0{suffix}").copy_(getattr(lstm, f"{name}_l0"))
    x = torch.randn(3, 9, 8)
    lengths = torch.tensor([9, 4, 6])
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    expected, (h, _) = reference(packed)
    expected, _ = nn.utils.rnn.pad_packed_sequence(expected, batch_first=True)
    outputs, last_forward, first_backward = encoder(x, lengths)
    assert torch.allclose(outputs, expected, atol=1e-6)
    assert torch.allclose(last_forward, h[0], atol=1e-6) and torch.allclose(first_backward, h[1], atol=1e-6)


def test_attentive_reader_computes_eq_5_to_7():
    model = make("additive")
    document, document_lengths, query, query_lengths, candidates = batch()
    logits, s = model(document, document_lengths, query, query_lengths, candidates, return_attention=True)
    with torch.no_grad():
        for row in range(3):
            d, q = document_lengths[row], query_lengths[row]
            y_d, _, _ = model.document_encoder(model.embedding(document[row : row + 1, :d]), d.view(1))
            _, forward, backward = model.query_encoder(model.embedding(query[row : row + 1, :q]), q.view(1))
            u = torch.cat([forward, backward], dim=-1)[0]
            y_d = y_d[0]
            m = torch.tanh(
                y_d @ model.attention.key_proj.weight.T + model.attention.query_proj.weight @ u
            )  # Eq. 5
            weights = (m @ model.attention.score.weight[0]).softmax(dim=0)  # Eq. 6
            r = weights @ y_d
            g = torch.tanh(model.read_gate.weight @ r + model.query_gate.weight @ u)  # Eq. 7
            expected = (model.output.weight @ g + model.output.bias).masked_fill(
                ~candidates[row], float("-inf")
            )
            assert torch.allclose(s[row, :d], weights, atol=1e-6) and (s[row, d:] == 0).all()
            assert torch.allclose(logits[row], expected, atol=1e-5)


def test_uniform_reader_attends_evenly():
    document, document_lengths, query, query_lengths, candidates = batch()
    _, s = make("uniform")(
        document, document_lengths, query, query_lengths, candidates, return_attention=True
    )
    assert torch.allclose(s[1, :4], torch.full((4,), 0.25)) and (s[1, 4:] == 0).all()


def test_impatient_reader_computes_eq_8_to_10():
    model = make("impatient")
    document, document_lengths, query, query_lengths, candidates = batch()
    logits, s = model(document, document_lengths, query, query_lengths, candidates, return_attention=True)
    assert s.shape == (3, 5, 9) and (s[1, 2:] == 0).all()
    size = 10
    w_rm, w_qm = model.attention.query_proj.weight[:, :size], model.attention.query_proj.weight[:, size:]
    with torch.no_grad():
        for row in range(3):
            d, q = document_lengths[row], query_lengths[row]
            y_d = model.document_encoder(model.embedding(document[row : row + 1, :d]), d.view(1))[0][0]
            y_q, forward, backward = model.query_encoder(model.embedding(query[row : row + 1, :q]), q.view(1))
            u = torch.cat([forward, backward], dim=-1)[0]
            r = model.initial_read
            for i in range(q):
                m = torch.tanh(y_d @ model.attention.key_proj.weight.T + w_rm @ r + w_qm @ y_q[0, i])  # Eq. 8
                weights = (m @ model.attention.score.weight[0]).softmax(dim=0)
                r = weights @ y_d + torch.tanh(model.recurrence.weight @ r)  # Eq. 9
                assert torch.allclose(s[row, i, :d], weights, atol=1e-6)
            g = torch.tanh(model.read_gate.weight @ r + model.query_gate.weight @ u)  # Eq. 10
            expected = (model.output.weight @ g + model.output.bias).masked_fill(
                ~candidates[row], float("-inf")
            )
            assert torch.allclose(logits[row], expected, atol=1e-5)


def test_deep_lstm_reader_reads_document_delimiter_query_with_skip_connections():
    model = make("deep_lstm")
    document, document_lengths, query, query_lengths, candidates = batch()
    joined, lengths = model.concatenate(document, document_lengths, query, query_lengths)
    assert joined[1, :8].tolist() == [*document[1, :4].tolist(), DELIMITER, *query[1, :2].tolist(), 0]
    assert lengths.tolist() == [15, 7, 10]
    logits = model(document, document_lengths, query, query_lengths, candidates)
    with torch.no_grad():
        for row in range(3):
            x = model.embedding(joined[row : row + 1, : lengths[row]])
            outputs, layer_input = [], x
            for layer in model.layers:  # x'(t, k) = x(t) || y'(t, k-1)
                y, _ = layer(layer_input)
                outputs.append(y)
                layer_input = torch.cat([x, y], dim=-1)
            g = torch.cat(outputs, dim=-1)[0, -1]  # y(t) = y'(t, 1) || ... || y'(t, K) at the last token
            expected = (model.output.weight @ g + model.output.bias).masked_fill(
                ~candidates[row], float("-inf")
            )
            assert torch.allclose(logits[row], expected, atol=1e-5)


def test_a_reader_can_fit_a_batch():
    model = make("additive").train()
    document, document_lengths, query, query_lengths, candidates = batch()
    answers = torch.tensor([5, 1, 2])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(60):
        loss = nn.functional.cross_entropy(
            model(document, document_lengths, query, query_lengths, candidates), answers
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05


def test_bad_input_is_rejected():
    model = make("additive")
    document, document_lengths, query, query_lengths, candidates = batch()
    with pytest.raises(TypeError, match="document must be a torch.int64 tensor"):
        model(document.float(), document_lengths, query, query_lengths, candidates)
    with pytest.raises(ValueError, match=r"document_lengths must be in \[1, 9\]"):
        model(document, torch.tensor([9, 0, 6]), query, query_lengths, candidates)
    with pytest.raises(ValueError, match=r"query_lengths must be in \[1, 5\]"):
        model(document, document_lengths, query, torch.tensor([6, 1, 1]), candidates)
    with pytest.raises(ValueError, match="candidates must be a tensor of shape"):
        model(document, document_lengths, query, query_lengths, candidates[:, :3])
    with pytest.raises(ValueError, match="candidates must mark at least one entity"):
        model(document, document_lengths, query, query_lengths, torch.zeros(3, ENTITIES, dtype=torch.bool))
    with pytest.raises(ValueError, match="token ids must be in"):
        model(document + VOCAB, document_lengths, query, query_lengths, candidates)
    with pytest.raises(ValueError, match="attention must be one of"):
        AttentiveReader(VOCAB, ENTITIES, attention="dot")
    with pytest.raises(ValueError, match="num_entities must be >= 2"):
        ImpatientReader(VOCAB, 1)
    with pytest.raises(ValueError, match="dropout must be a probability"):
        DeepLSTMReader(VOCAB, ENTITIES, delimiter_id=2, dropout=1.0)
    with pytest.raises(ValueError, match="delimiter_id must be in"):
        DeepLSTMReader(VOCAB, ENTITIES, delimiter_id=VOCAB)
