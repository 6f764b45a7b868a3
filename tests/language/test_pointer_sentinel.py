"""aicanon.language.pointer_sentinel: the mixture of Eq. (7)-(9), the loss of Section 2.4, the window."""

from __future__ import annotations

import math

import pytest
import torch

from aicanon.language.pointer_sentinel import (
    LSTMLanguageModel,
    PointerMemory,
    PointerSentinelLSTM,
    PointerSentinelOutput,
    detach_state,
)

pytestmark = pytest.mark.paper("pointer-sentinel")

VOCAB = 13


def _model(**kwargs) -> PointerSentinelLSTM:
    torch.manual_seed(0)
    model = PointerSentinelLSTM(VOCAB, 8, window=kwargs.pop("window", 5), **kwargs)
    with torch.no_grad():  # a sentinel and query away from zero, so the gate is not trivial
        model.sentinel.normal_()
    return model.eval()


def _tokens(batch: int, length: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


def test_mixture_is_a_distribution_and_matches_the_target_path():
    model = _model()
    inputs, targets = _tokens(3, 7), _tokens(3, 7, seed=2)
    first = model(inputs)
    second = model(_tokens(3, 4, seed=3), first.state, first.memory)  # with a carried window
    for output, target in ((first, targets), (second, targets[:, :4])):
        log_probs = output.log_probs()
        torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(target.shape), atol=1e-6, rtol=0)
        # The attention over the window and the sentinel is one softmax (Eq. 7): a's and g sum to 1.
        total = output.log_pointer.exp().sum(-1) + output.gate
        torch.testing.assert_close(total, torch.ones(target.shape), atol=1e-6, rtol=0)
        assert ((output.gate > 0) & (output.gate < 1)).all()
        gathered = log_probs.gather(-1, target.unsqueeze(-1)).squeeze(-1)
        torch.testing.assert_close(output.target_log_prob(target), gathered, atol=1e-5, rtol=0)


def test_pointer_mass_lands_on_the_window_ids_and_repeats_add_up():
    # Hand-made components: p_vocab uniform over 6 words, g = 0.4, the window reads (3, 5, 3) with
    # a = (0.1, 0.2, 0.3): p(3) = 0.4/6 + 0.1 + 0.3, p(5) = 0.4/6 + 0.2, every other word 0.4/6.
    output = PointerSentinelOutput(
        logits=torch.zeros(1, 1, 6),
        state=(torch.zeros(1), torch.zeros(1)),
        log_gate=torch.tensor([[math.log(0.4)]]),
        log_pointer=torch.tensor([[[0.1, 0.2, 0.3]]]).log(),
        pointer_tokens=torch.tensor([[3, 5, 3]]),
    )
    expected = torch.full((6,), 0.4 / 6)
    expected[3] += 0.4
    expected[5] += 0.2
    torch.testing.assert_close(output.log_probs()[0, 0].exp(), expected)
    for word in range(6):
        got = output.target_log_prob(torch.tensor([[word]])).exp().item()
        assert got == pytest.approx(expected[word].item(), rel=1e-6)
    # The pointer-supervision term, -log(g + sum_{i in I(y)} a_i): the copies' mass counts once each.
    supervision = output.pointer_supervision(torch.tensor([[3]]))
    assert supervision.item() == pytest.approx(-math.log(0.4 + 0.4))
    assert output.pointer_supervision(torch.tensor([[0]])).item() == pytest.approx(-math.log(0.4))
    loss, nll = output.loss(torch.tensor([[5]]))
    assert nll.item() == pytest.approx(-math.log(0.4 / 6 + 0.2), rel=1e-6)
    assert loss.item() == pytest.approx(-math.log(0.4 / 6 + 0.2) - math.log(0.4 + 0.2), rel=1e-6)


def test_gate_fixed_at_one_is_the_softmax_lm():
    torch.manual_seed(0)
    plain = LSTMLanguageModel(VOCAB, 8).eval()
    gated = PointerSentinelLSTM(VOCAB, 8, window=5, fixed_gate=1.0).eval()
    gated.load_state_dict(plain.state_dict(), strict=False)  # the LSTM-LM's weights; W, b, s unused
    inputs, targets = _tokens(2, 6), _tokens(2, 6, seed=2)
    ours, reference = gated(inputs), plain(inputs)
    torch.testing.assert_close(ours.log_probs(), reference.log_probs(), atol=1e-6, rtol=0)
    torch.testing.assert_close(ours.target_log_prob(targets), reference.target_log_prob(targets))
    torch.testing.assert_close(ours.loss(targets)[0], reference.loss(targets)[0])  # no supervision term
    ours.loss(targets)[0].backward()
    assert all(torch.isfinite(p.grad).all() for p in gated.parameters() if p.grad is not None)


def test_target_outside_the_window_gives_finite_gradients():
    model = _model().train()
    inputs = torch.zeros(2, 6, dtype=torch.long)  # the window holds only word 0
    targets = torch.full((2, 6), 7)
    loss, _ = model(inputs).loss(targets)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_loss_gradient_matches_finite_differences():
    torch.manual_seed(0)
    model = PointerSentinelLSTM(7, 4, window=3).double()
    with torch.no_grad():
        model.sentinel.normal_()
    inputs = torch.tensor([[1, 2, 1, 3, 2], [0, 4, 4, 6, 5]])
    targets = torch.tensor([[2, 1, 3, 2, 2], [4, 4, 6, 5, 0]])
    memory = PointerMemory(torch.randn(2, 2, 4, dtype=torch.float64), torch.tensor([[2, 5], [6, 4]]))
    names = ["query.weight", "query.bias", "sentinel", "decoder.weight", "embedding.weight"]
    params = {name: p for name, p in model.named_parameters()}

    def loss_of(*tensors):
        values = {**params, **dict(zip(names, tensors))}
        output = torch.func.functional_call(model, values, (inputs, None, memory))
        return output.loss(targets)[0]

    chosen = tuple(params[n].detach().clone().requires_grad_(True) for n in names)
    assert torch.autograd.gradcheck(loss_of, chosen, eps=1e-6, atol=1e-6)


def test_window_covers_the_last_L_inputs_across_segments():
    model = _model(window=4)
    inputs = _tokens(2, 11)
    whole = model(inputs)
    # Only the L = 4 most recent key positions (the current one included) carry attention.
    mass = whole.log_pointer.detach().exp()[0]  # [T, K]
    for t in range(11):
        inside = [k for k in range(11) if t - 4 < k <= t]
        assert (mass[t, inside] > 0).all()
        assert mass[t].sum() == pytest.approx(mass[t, inside].sum().item())
    # Segments of 5, 2 and 4 tokens with the state and window carried equal one pass over all 11.
    state, memory, pieces = None, None, []
    for start, end in ((0, 5), (5, 7), (7, 11)):
        part = model(inputs[:, start:end], state, memory)
        assert part.memory.hidden.shape == (2, min(end, 3), 8)  # L - 1 outputs carried
        assert torch.equal(part.memory.tokens, inputs[:, max(0, end - 3) : end])
        pieces.append(part.log_probs())
        state, memory = detach_state(part.state), part.memory
    torch.testing.assert_close(torch.cat(pieces, 1), whole.log_probs(), atol=1e-5, rtol=0)


def test_carried_window_is_detached():
    model = _model().train()
    first = model(_tokens(2, 6))
    assert not first.memory.hidden.requires_grad


def test_window_of_one_points_at_the_current_input_only():
    model = _model(window=1)
    inputs = _tokens(1, 5)
    output = model(inputs)
    assert output.memory.hidden.shape == (1, 0, 8)
    # p(y) gets the pointer's whole (1 - g) when y is the current input.
    expected = (output.gate * output.logits.softmax(-1).gather(-1, inputs.unsqueeze(-1)).squeeze(-1)) + (
        1 - output.gate
    )
    torch.testing.assert_close(output.target_log_prob(inputs).exp(), expected, atol=1e-6, rtol=0)


def test_pointer_adds_only_query_and_sentinel_parameters():
    plain = LSTMLanguageModel(VOCAB, 8)
    pointer = PointerSentinelLSTM(VOCAB, 8)
    extra = sum(p.numel() for p in pointer.parameters()) - sum(p.numel() for p in plain.parameters())
    assert extra == 8 * 8 + 8 + 8  # W, b, s


def test_bad_input():
    model = _model()
    good = _tokens(2, 4)
    with pytest.raises(TypeError, match="inputs must be a torch.int64 tensor"):
        model(good.float())
    with pytest.raises(ValueError, match="inputs must be a 2-D tensor"):
        model(good[0])
    with pytest.raises(ValueError, match=r"inputs must be token ids in \[0, 13\)"):
        model(good + VOCAB)
    with pytest.raises(ValueError, match="state\\[0\\] must be a tensor of shape \\[1, 2, 8\\]"):
        model(good, (torch.zeros(1, 3, 8), torch.zeros(1, 3, 8)))
    with pytest.raises(TypeError, match="state must be a tuple"):
        model(good, torch.zeros(1, 2, 8))
    with pytest.raises(ValueError, match="memory.hidden must be a tensor of shape \\[2, \\*, 8\\]"):
        model(good, None, PointerMemory(torch.zeros(3, 2, 8), torch.zeros(3, 2, dtype=torch.long)))
    with pytest.raises(TypeError, match="memory must be a PointerMemory"):
        model(good, None, (torch.zeros(2, 2, 8), torch.zeros(2, 2)))
    output = model(good)
    with pytest.raises(ValueError, match="targets must be a tensor of shape \\[2, 4\\]"):
        output.target_log_prob(good[:, :3])
    with pytest.raises(ValueError, match=r"targets must be token ids in \[0, 13\)"):
        output.loss(good - 1 - good.max())
    with pytest.raises(ValueError, match="window must be >= 1"):
        PointerSentinelLSTM(VOCAB, 8, window=0)
    with pytest.raises(ValueError, match=r"fixed_gate must be in \(0.0, 1.0\]"):
        PointerSentinelLSTM(VOCAB, 8, fixed_gate=0.0)
    with pytest.raises(ValueError, match=r"dropout must be a probability in \[0, 1\)"):
        LSTMLanguageModel(VOCAB, 8, dropout=1.0)
    with pytest.raises(ValueError, match="vocab_size must be >= 2"):
        LSTMLanguageModel(1, 8)
    with pytest.raises(TypeError, match="hidden_size must be an int"):
        LSTMLanguageModel(VOCAB, 8.0)
