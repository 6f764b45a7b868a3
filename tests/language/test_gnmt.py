"""aicanon.language.gnmt and aicanon.language.wordpiece: the GNMT model's structure and invariants,
the quantisation option, the wordpiece model, bad input."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from aicanon.language.gnmt import (
    GNMT,
    GNMTConfig,
    fake_quantize_accumulator,
    fake_quantize_weight,
    quantize_for_inference,
    teacher_forced_loss,
)
from aicanon.language.wordpiece import WordPieceTokenizer

pytestmark = pytest.mark.paper("gnmt")

BOS, EOS = 2, 3


def _model(seed: int = 0, **overrides) -> GNMT:
    torch.manual_seed(seed)
    settings = dict(
        source_vocab_size=30, target_vocab_size=20, hidden_size=12, encoder_layers=4, decoder_layers=3,
        dropout=0.0, init_scale=0.3,
    )  # fmt: skip
    settings.update(overrides)
    return GNMT(GNMTConfig(**settings)).eval()


def _batch():
    source = torch.tensor([[5, 6, 7, 8, 9], [10, 11, 12, 0, 0], [13, 0, 0, 0, 0]])
    target = torch.tensor([[4, 5, 6, EOS], [7, 8, EOS, 0], [EOS, 0, 0, 0]])
    return source, target


def test_shapes_and_attention_is_a_distribution_over_real_source_words():
    model = _model()
    source, target = _batch()
    logits, attention = model(source, target, return_attention=True)
    assert logits.shape == (3, 4, 20) and attention.shape == (3, 4, 5)
    assert torch.allclose(attention.sum(-1), torch.ones(3, 4), atol=1e-6)
    assert attention[1, :, 3:].abs().max() == 0 and attention[2, :, 1:].abs().max() == 0


def test_teacher_forcing_equals_step_by_step_decoding():
    model = _model()
    source, target = _batch()
    decoder_input = torch.cat([torch.full((3, 1), BOS), target[:, :-1]], dim=1)
    logits, attention = model(source, decoder_input, return_attention=True)
    state, steps, weights = model.encode(source), [], []
    for t in range(decoder_input.size(1)):
        log_probs, alpha, state = model.decode_step(state, decoder_input[:, t])
        steps.append(log_probs)
        weights.append(alpha)
    assert torch.allclose(torch.stack(steps, 1), logits.log_softmax(-1), atol=1e-5)
    assert torch.allclose(torch.stack(weights, 1), attention, atol=1e-6)


def test_padding_does_not_change_a_sentence_and_the_bottom_layer_is_bidirectional():
    model = _model()
    memory, _ = model.encode_source(torch.tensor([[10, 11, 12]]))
    padded, _ = model.encode_source(torch.tensor([[10, 11, 12, 0, 0, 0]]))
    assert torch.allclose(memory, padded[:, :3], atol=1e-6)
    # The first position sees the last word (backward direction of the bottom layer).
    changed, _ = model.encode_source(torch.tensor([[10, 11, 25]]))
    assert (changed[0, 0] - memory[0, 0]).abs().max() > 1e-4


def _silence(lstm: torch.nn.LSTM) -> None:
    """Zero weights and biases: gates 0.5, candidate tanh(0) = 0, so c and the output stay 0."""
    for parameter in lstm.parameters():
        torch.nn.init.zeros_(parameter)


def test_residual_connections_start_at_the_third_layer():
    model = _model(encoder_layers=4)
    source, _ = _batch()
    truncated = copy.deepcopy(model)
    truncated.encoder_layers = truncated.encoder_layers[:1]  # bottom + layer 2 only
    # Layers 3 and 4 output zeros: with residuals the stack passes layer 2's output through unchanged.
    _silence(model.encoder_layers[1])
    _silence(model.encoder_layers[2])
    assert torch.allclose(model.encode_source(source)[0], truncated.encode_source(source)[0], atol=1e-6)
    # Layer 2 has no residual: silencing it zeroes what it passes on.
    _silence(truncated.encoder_layers[0])
    assert truncated.encode_source(source)[0].abs().max() == 0


def test_every_decoder_layer_reads_the_attention_context():
    model = _model()
    assert model.decoder_bottom.input_size == model.config.hidden_size * 2  # embedding + context
    assert all(layer.input_size == 2 * model.config.hidden_size for layer in model.decoder_layers)
    assert model.encoder_layers[0].input_size == 2 * model.config.hidden_size  # concatenated directions


@pytest.mark.parity
def test_clipped_step_by_step_lstm_matches_torch_lstm_when_the_clip_is_inactive():
    model = _model()
    source, target = _batch()
    reference = model(source, target)
    looped = _model(accumulator_clip=1e6)
    looped.load_state_dict(model.state_dict())
    assert torch.allclose(looped(source, target), reference, atol=1e-5)
    # Gradients through the loop match those through torch's fused LSTM.
    teacher_forced_loss(model, source, target, BOS).backward()
    teacher_forced_loss(looped, source, target, BOS).backward()
    for (name, a), (_, b) in zip(model.named_parameters(), looped.named_parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-5), name


def test_accumulator_and_logit_clipping_bound_the_values():
    model = _model(accumulator_clip=0.05, logit_clip=0.01, init_scale=2.0)
    source, target = _batch()
    memory, _ = model.encode_source(source)
    assert memory.abs().max() <= 0.05 + 1e-7
    assert model(source, target).abs().max() <= 0.01 + 1e-7


def test_fake_quantisation_golden_values():
    weight = torch.tensor([[1.0, -0.5, 0.3], [0.0, 0.0, 0.0]])
    quantized = fake_quantize_weight(weight, bits=8)
    expected = torch.tensor([[127, -64, 38], [0, 0, 0]]) / 127.0  # -63.5 rounds to -64 (half to even)
    assert torch.allclose(quantized, expected)
    assert torch.allclose(
        fake_quantize_accumulator(torch.tensor([2.0, -0.3, 0.6]), 1.0, bits=2), torch.tensor([1.0, 0.0, 1.0])
    )


def test_quantised_inference_stays_close_to_the_float_model():
    model = _model(accumulator_clip=8.0)
    source, target = _batch()
    quantized = quantize_for_inference(model)
    assert quantized is not model and quantized.accumulator_bits == 16
    reference, approximate = model(source, target).log_softmax(-1), quantized(source, target).log_softmax(-1)
    assert (approximate - reference).abs().max() < 0.05
    assert not torch.equal(approximate, reference)
    with pytest.raises(ValueError, match="accumulator_clip must be set"):
        quantize_for_inference(_model())


def test_loss_at_initialisation_is_near_log_vocabulary_and_training_reduces_it():
    model = _model(init_scale=0.04)
    source, target = _batch()
    loss = teacher_forced_loss(model, source, target, BOS)
    assert abs(loss.item() - math.log(20)) < 0.1
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(150):
        optimizer.zero_grad()
        loss = teacher_forced_loss(model, source, target, BOS)
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.3  # memorised the three pairs


def test_bad_input():
    model = _model()
    source, target = _batch()
    with pytest.raises(ValueError, match="GNMTConfig.encoder_layers must be >= 2"):
        GNMTConfig(encoder_layers=1)
    with pytest.raises(ValueError, match="GNMTConfig.residual_start must be >= 3"):
        GNMTConfig(residual_start=2)
    with pytest.raises(ValueError, match="GNMTConfig.dropout must be a probability"):
        GNMTConfig(dropout=1.0)
    with pytest.raises(TypeError, match="config must be a GNMTConfig"):
        GNMT({"hidden_size": 4})
    with pytest.raises(ValueError, match="source must hold at least one non-padding token in every row"):
        model(torch.tensor([[5, 6], [0, 0]]), target[:2])
    with pytest.raises(ValueError, match=r"source ids must be in \[0, 30\)"):
        model(torch.tensor([[5, 31]]), target[:1])
    with pytest.raises(TypeError, match="source must be a torch.int64 or torch.int32 tensor"):
        model(source.float(), target)
    with pytest.raises(ValueError, match="decoder_input must be"):
        model(source, target[:2])
    with pytest.raises(ValueError, match="target must hold at least one non-padding token"):
        teacher_forced_loss(model, source, torch.zeros_like(target), BOS)


# -- wordpieces ---------------------------------------------------------------------------------

_SENTENCES = [
    "A man in a blue shirt is riding a bike.",
    "Ein Mann in einem blauen Hemd fährt Fahrrad.",
    "Two dogs are playing in the snow.",
    "Zwei Hunde spielen im Schnee.",
] * 5


def test_wordpieces_mark_word_starts_and_decode_back_to_the_text(tmp_path):
    tokenizer = WordPieceTokenizer.train(_SENTENCES, vocab_size=120, min_frequency=1)
    pieces = tokenizer.tokenize("Two dogs are riding.")
    assert pieces[0].startswith("▁") and all(p.startswith(("▁", "##")) for p in pieces)
    for sentence in set(_SENTENCES) | {"A  man   rides   a dog."}:
        assert tokenizer.decode(tokenizer.encode(sentence)) == " ".join(sentence.split())
    ids = tokenizer.encode("Two dogs.", add_bos=True, add_eos=True)
    assert ids[0] == tokenizer.bos_id and ids[-1] == tokenizer.eos_id
    assert tokenizer.decode(ids + [7, 8]) == "Two dogs."  # decoding stops at [EOS]
    assert tokenizer.encode("Ü") == [tokenizer.unk_id]  # a character never seen in training
    tokenizer.save(tmp_path / "tokenizer.json")
    loaded = WordPieceTokenizer.load(tmp_path / "tokenizer.json")
    assert loaded.encode(_SENTENCES[1]) == tokenizer.encode(_SENTENCES[1])
    assert WordPieceTokenizer.from_json(tokenizer.to_json()).vocab_size == tokenizer.vocab_size
    assert tokenizer.encode_batch(_SENTENCES[:2]) == [tokenizer.encode(s) for s in _SENTENCES[:2]]


def test_wordpiece_ids_are_specials_then_sorted_pieces():
    # tokenizers' trainer numbers pieces in hash-map order; we renumber, so one set of pieces always
    # gets the same ids (the set itself can differ between runs where merge counts tie).
    tokenizer = WordPieceTokenizer.train(_SENTENCES, vocab_size=150, min_frequency=1)
    pieces = [tokenizer._tokenizer.id_to_token(i) for i in range(tokenizer.vocab_size)]
    assert pieces[:4] == ["[PAD]", "[UNK]", "[BOS]", "[EOS]"] and pieces[4:] == sorted(pieces[4:])


def test_wordpiece_bad_input(tmp_path):
    with pytest.raises(ValueError, match="vocab_size must be >= 5"):
        WordPieceTokenizer.train(_SENTENCES, vocab_size=3)
    with pytest.raises(ValueError, match="sentences must be a non-empty collection of strings"):
        WordPieceTokenizer.train([], vocab_size=100)
    tokenizer = WordPieceTokenizer.train(_SENTENCES, vocab_size=100, min_frequency=1)
    with pytest.raises(TypeError, match="text must be a str"):
        tokenizer.encode(["a"])
    with pytest.raises(ValueError, match="ids must be below the vocabulary size"):
        tokenizer.decode([10_000])
    with pytest.raises(FileNotFoundError, match="path must name a saved tokenizer.json"):
        WordPieceTokenizer.load(tmp_path / "missing.json")
