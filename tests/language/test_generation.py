"""aicanon.language.generation: KV-cached, left-padded batch decoding."""

from __future__ import annotations

import pytest
import torch

from aicanon.language.generation import generate, left_pad
from aicanon.language.llama import Llama, LlamaConfig

pytestmark = pytest.mark.paper("llama2")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return Llama(
        LlamaConfig(
            vocab_size=50,
            hidden_size=32,
            intermediate_size=64,
            num_layers=2,
            num_heads=4,
            num_kv_heads=2,
            max_seq_len=64,
        )
    ).eval()


def test_cached_greedy_equals_recomputing_the_whole_prefix(model):
    prompt = torch.tensor([[3, 14, 15, 9, 2]])
    fast = generate(model, prompt, max_new_tokens=8)
    ids = prompt
    for _ in range(8):  # no cache: the full forward each step
        ids = torch.cat((ids, model(ids)[:, -1].argmax(-1, keepdim=True)), dim=1)
    assert torch.equal(fast, ids)


def test_left_padded_batch_decodes_each_row_as_alone(model):
    prompts = [[1, 2, 3, 4, 5, 6], [7, 8], [9, 10, 11]]
    ids, mask = left_pad(prompts)
    batch = generate(model, ids, mask, max_new_tokens=6)
    for row, prompt in enumerate(prompts):
        alone = generate(model, torch.tensor([prompt]), max_new_tokens=6)
        assert batch[row, -6:].tolist() == alone[0, -6:].tolist()


def test_sampling_repeats_with_a_seeded_generator_and_stops_at_eos(model):
    prompt = torch.tensor([[1, 2, 3]])
    a = generate(
        model,
        prompt,
        max_new_tokens=10,
        temperature=1.0,
        top_p=0.9,
        generator=torch.Generator().manual_seed(5),
    )
    b = generate(
        model,
        prompt,
        max_new_tokens=10,
        temperature=1.0,
        top_p=0.9,
        generator=torch.Generator().manual_seed(5),
    )
    assert torch.equal(a, b)
    first = int(generate(model, prompt, max_new_tokens=1)[0, -1])
    stopped = generate(model, prompt, max_new_tokens=10, eos_token_id=first)
    assert stopped.shape[1] == 4  # every row finished at once: decoding stops


def test_bad_input(model):
    with pytest.raises(ValueError, match="input_ids must be a non-empty 2-D"):
        generate(model, torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="max_new_tokens must be >= 0, got -1"):
        generate(model, torch.tensor([[1]]), max_new_tokens=-1)
    with pytest.raises(ValueError, match="attention_mask must have the shape"):
        generate(model, torch.tensor([[1, 2]]), torch.ones(1, 3))
    with pytest.raises(ValueError, match="max_seq_len=64"):
        generate(model, torch.ones(1, 60, dtype=torch.long), max_new_tokens=10)
    with pytest.raises(ValueError, match="sequences must be"):
        left_pad([[1], []])


def test_stop_when_ends_rows_early_and_pads_them(model):
    prompts = torch.tensor([[1, 2, 3], [4, 5, 6]])
    full = generate(model, prompts, max_new_tokens=12)
    first = full[0, 3].item()

    def stop_when(new):  # row 0 ends after its first token; row 1 never
        return torch.tensor([True, False]) if new.shape[1] >= 1 else torch.tensor([False, False])

    out = generate(model, prompts, max_new_tokens=12, pad_token_id=0, stop_when=stop_when)
    assert out[0, 3].item() == first and (out[0, 4:] == 0).all()
    torch.testing.assert_close(out[1], full[1])  # unaffected rows decode as before
    ended = generate(model, prompts, max_new_tokens=12, stop_when=lambda new: torch.ones(2, dtype=torch.bool))
    assert ended.shape[1] == 4  # every row done after one token: decoding stops
    with pytest.raises(ValueError, match="stop_when must return a bool tensor"):
        generate(model, prompts, max_new_tokens=3, stop_when=lambda new: [True, True])
