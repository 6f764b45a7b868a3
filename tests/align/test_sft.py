"""Supervised fine-tuning (aicanon.align.sft): tokenising, padding, packing, Eq. (1) and the trainer."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from aicanon.align.sft import (
    IGNORE_INDEX,
    SFTConfig,
    SFTExample,
    collate,
    model_logits,
    pack,
    response_token_nll,
    sft_loss,
    sft_lr,
    tokenize_chat,
    tokenize_example,
    train_sft,
)
from aicanon.datasets.text import CharTokenizer
from aicanon.language.llama import Llama, LlamaConfig

pytestmark = pytest.mark.paper("instructgpt")

X = IGNORE_INDEX


def ids_of(text: str) -> list[int]:
    """A stand-in tokenizer: one id per character (its code point)."""
    return [ord(c) for c in text]


def example(prompt: list[int], response: list[int]) -> SFTExample:
    ids = torch.tensor(prompt + response)
    labels = ids.clone()
    labels[: max(1, len(prompt))] = X
    return SFTExample(ids, labels)


def tiny_llama(vocab: int = 13, seed: int = 0) -> Llama:
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=vocab, hidden_size=16, intermediate_size=24, num_layers=2, num_heads=4,
        num_kv_heads=2, max_seq_len=64,
    )  # fmt: skip
    return Llama(cfg).eval()


class Bigram(nn.Module):
    """A model whose logits at a position depend on that position's token only (hand-computable)."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = nn.Parameter(table.clone())

    def forward(self, input_ids, attention_mask=None, segment_ids=None):
        return self.table[input_ids]


# ----- golden values ---------------------------------------------------------------------------------


def test_tokenize_example_masks_the_prompt_and_appends_the_end_token():
    tokenizer = CharTokenizer("abc \n")
    e = tokenize_example("ab ", "cc", tokenizer.encode, end="\n")
    assert tokenizer.decode(e.input_ids) == "ab cc\n"
    a, b, c, space, newline = (tokenizer.encode(ch).item() for ch in "abc \n")
    assert e.input_ids.tolist() == [a, b, space, c, c, newline]
    assert e.labels.tolist() == [X, X, X, c, c, newline]
    assert e.num_response_tokens == 3
    # An end token given as an id is appended after the encoded response.
    e = tokenize_example("ab", "c", ids_of, end=7)
    assert e.input_ids.tolist() == [97, 98, 99, 7] and e.labels.tolist() == [X, X, 99, 7]
    # Without a prompt the first token has nothing to be predicted from: it is not a target.
    e = tokenize_example("", "abc", ids_of, end=0)
    assert e.labels.tolist() == [X, 98, 99, 0]


def test_truncation_keeps_the_prompt_and_cuts_the_response():
    e = tokenize_example("ab", "cdef", ids_of, end=0, max_length=4, truncate=True)
    assert e.input_ids.tolist() == [97, 98, 99, 100] and e.labels.tolist() == [X, X, 99, 100]
    assert len(tokenize_example("ab", "cd", ids_of, end=0, max_length=5)) == 5


def test_sft_loss_by_hand_is_the_mean_over_response_tokens_of_the_batch():
    # From token 0 the model gives p(1) = 3/4; from token 1 it is uniform over {0, 1}.
    model = Bigram(torch.tensor([[0.0, math.log(3.0)], [0.0, 0.0]]))
    first = example([0], [1, 0])  # targets: 1 after 0 (-log 3/4), 0 after 1 (log 2)
    second = example([1, 1], [1])  # target: 1 after 1 (log 2)
    batch = collate([first, second], pad_id=0)
    assert batch["input_ids"].tolist() == [[0, 1, 0], [1, 1, 1]]
    assert batch["labels"].tolist() == [[X, 1, 0], [X, X, 1]]
    loss = sft_loss(model, batch)
    expected = (math.log(4 / 3) + 2 * math.log(2)) / 3  # Eq. (1): three response tokens
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    # Not the mean of per-example means (which would weigh the one-token response as much as the two).
    assert loss.item() != pytest.approx(((math.log(4 / 3) + math.log(2)) / 2 + math.log(2)) / 2, abs=1e-3)
    # num_tokens replaces the count (gradient accumulation over micro-batches).
    assert sft_loss(model, batch, num_tokens=6).item() == pytest.approx(expected / 2, abs=1e-6)


def test_collate_pads_on_the_right():
    batch = collate([example([5], [6, 7]), example([8], [9])], pad_id=2)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 9, 2]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["labels"].tolist() == [[X, 6, 7], [X, 9, X]]


def test_pack_golden_rows():
    examples = [example([1], [2, 3]), example([4], [5]), example([6, 7], [8, 9]), example([10], [11])]
    batch = pack(examples, seq_len=5, pad_id=0)
    # First fit: [3 + 2] tokens in row 0, then [4] in row 1 and the last 2 tokens cannot join it.
    assert batch["input_ids"].tolist() == [[1, 2, 3, 4, 5], [6, 7, 8, 9, 0], [10, 11, 0, 0, 0]]
    assert batch["segment_ids"].tolist() == [[1, 1, 1, 2, 2], [1, 1, 1, 1, 0], [1, 1, 0, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0], [1, 1, 0, 0, 0]]
    assert batch["labels"].tolist() == [[X, 2, 3, X, 5], [X, X, 8, 9, X], [X, 11, X, X, X]]
    # First fit fills earlier rows when a later example fits there.
    batch = pack([example([1], [2, 3]), example([4, 4], [5, 5]), example([6], [7])], seq_len=5)
    assert batch["input_ids"].tolist() == [[1, 2, 3, 6, 7], [4, 4, 5, 5, 0]]
    # A hand-made example whose first token is labelled still gets no target across the boundary.
    whole = SFTExample(torch.tensor([6, 7]), torch.tensor([6, 7]))
    assert pack([example([1], [2]), whole], seq_len=4)["labels"].tolist() == [[X, 2, X, 7]]


def test_pack_truncates_only_when_asked():
    long = example([1, 2], [3, 4, 5, 6])
    with pytest.raises(ValueError, match=r"examples\[0\] must fit in seq_len=4 tokens, got 6"):
        pack([long], seq_len=4)
    batch = pack([long], seq_len=4, truncate=True)
    assert batch["input_ids"].tolist() == [[1, 2, 3, 4]] and batch["labels"].tolist() == [[X, X, 3, 4]]
    with pytest.raises(ValueError, match="no response token within seq_len=2"):
        pack([long], seq_len=2, truncate=True)


def test_learning_rate_schedules():
    cfg = SFTConfig(lr=1.0, warmup_steps=2, min_lr_ratio=0.1)
    assert [sft_lr(s, 12, cfg) for s in (0, 1, 2)] == pytest.approx([0.5, 1.0, 1.0])
    assert sft_lr(11, 12, cfg) == pytest.approx(0.1)  # the decay ends at the last step
    assert sft_lr(2 + 9 / 2, 12, cfg) == pytest.approx(0.55)  # cosine half-way: the mean of peak and floor
    linear = SFTConfig(lr=1.0, schedule="linear", min_lr_ratio=0.0)
    assert [sft_lr(s, 5, linear) for s in range(5)] == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0])
    assert sft_lr(3, 5, SFTConfig(lr=0.3, schedule="constant")) == 0.3


def test_tokenize_chat_llama3_masks_everything_before_the_answer():
    special = {
        "<|begin_of_text|>": 1000,
        "<|start_header_id|>": 1001,
        "<|end_header_id|>": 1002,
        "<|eot_id|>": 1003,
    }
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
    ]
    e = tokenize_chat(messages, ids_of, "llama3", special_tokens=special)

    def turn(role, content):
        return [1001, *ids_of(role), 1002, *ids_of("\n\n"), *ids_of(content), 1003]

    header = [1001, *ids_of("assistant"), 1002, *ids_of("\n\n")]  # the generation prompt
    prompt = [1000, *turn("system", "be brief"), *turn("user", "hi"), *header]
    response = [*ids_of("hello"), 1003]
    assert e.input_ids.tolist() == prompt + response
    assert e.labels.tolist() == [X] * len(prompt) + response


def test_tokenize_chat_llama2_multi_turn_trains_only_the_last_answer():
    messages = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
        {"role": "assistant", "content": "d"},
    ]
    e = tokenize_chat(messages, ids_of, "llama2", bos_id=1, eos_id=2)
    first = [1, *ids_of("[INST] a [/INST] b "), 2]
    assert e.input_ids.tolist() == [*first, 1, *ids_of("[INST] c [/INST] d "), 2]
    assert e.labels.tolist() == [X] * (len(first) + 1 + len("[INST] c [/INST]")) + ids_of(" d ") + [2]


# ----- invariants ------------------------------------------------------------------------------------


@st.composite
def examples_strategy(draw, vocab: int = 13):
    n = draw(st.integers(1, 5))
    out = []
    for _ in range(n):
        prompt = draw(st.lists(st.integers(0, vocab - 1), min_size=1, max_size=6))
        response = draw(st.lists(st.integers(0, vocab - 1), min_size=1, max_size=6))
        out.append(example(prompt, response))
    return out


@settings(max_examples=60, deadline=None)
@given(examples=examples_strategy(), seq_len=st.integers(12, 24))
def test_pack_places_every_example_once_and_whole(examples, seq_len):
    batch = pack(examples, seq_len)
    found = []
    for row in range(batch["input_ids"].shape[0]):
        segments = batch["segment_ids"][row]
        assert segments.tolist() == sorted(segments.tolist(), key=lambda s: (s == 0, s))  # padding at the end
        for segment in segments.unique().tolist():
            where = segments == segment
            if segment == 0:
                assert (batch["labels"][row][where] == X).all() and (
                    batch["attention_mask"][row][where] == 0
                ).all()
                continue
            found.append((batch["input_ids"][row][where].tolist(), batch["labels"][row][where].tolist()))
    expected = [(e.input_ids.tolist(), e.labels.tolist()) for e in examples]
    assert sorted(found) == sorted(expected)
    # First fit needs no more rows than one per example and no fewer than the tokens demand.
    total = sum(len(e) for e in examples)
    assert -(-total // seq_len) <= batch["input_ids"].shape[0] <= len(examples)


@settings(max_examples=15, deadline=None)
@given(examples=examples_strategy(), seq_len=st.integers(12, 24))
def test_packing_gives_each_example_the_logits_and_loss_it_has_alone(examples, seq_len):
    model = tiny_llama()
    packed = pack(examples, seq_len)
    with torch.no_grad():
        logits = model_logits(model, packed)
        for example_ in examples:  # find each example in its row by its segment
            found = False
            for row in range(packed["input_ids"].shape[0]):
                for segment in packed["segment_ids"][row].unique().tolist():
                    where = packed["segment_ids"][row] == segment
                    if segment and torch.equal(packed["input_ids"][row][where], example_.input_ids):
                        alone = model(example_.input_ids[None])[0]
                        torch.testing.assert_close(logits[row][where], alone, atol=1e-5, rtol=0)
                        found = True
            assert found
        # Eq. (1) over the packed rows equals Eq. (1) over the padded batch: the same tokens, the same count.
        torch.testing.assert_close(
            sft_loss(model, packed), sft_loss(model, collate(examples)), atol=1e-5, rtol=0
        )


@settings(max_examples=15, deadline=None)
@given(examples=examples_strategy())
def test_batch_loss_is_the_token_weighted_mean_of_the_examples_losses(examples):
    model = tiny_llama()
    with torch.no_grad():
        alone = [sft_loss(model, collate([e])) for e in examples]
        weights = [e.num_response_tokens for e in examples]
        expected = sum(w * loss for w, loss in zip(weights, alone, strict=True)) / sum(weights)
        torch.testing.assert_close(sft_loss(model, collate(examples)), expected, atol=1e-5, rtol=0)


def test_prompt_positions_get_no_gradient_from_the_loss():
    e = example([3, 4, 5], [6, 7])
    batch = collate([e, example([1], [2, 3, 4, 5])])
    logits = torch.randn(2, 5, 9, requires_grad=True)
    nll, mask = response_token_nll(logits, batch["labels"])
    (nll.sum() / mask.sum()).backward()
    # Row 0: positions 0, 1 predict prompt tokens 4, 5; position 4 predicts nothing (end of row).
    assert logits.grad[0, [0, 1, 4]].abs().max() == 0 and logits.grad[0, [2, 3]].abs().min() > 0
    assert logits.grad[1, :4].abs().min() > 0 and logits.grad[1, 4].abs().max() == 0


def test_editing_a_packed_neighbour_leaves_an_examples_loss_terms_unchanged():
    """Packing keeps examples apart: editing the example packed before another leaves the later one's
    loss terms as they were (without segment ids the later one would attend to the edit)."""
    model = tiny_llama()
    a, b = example([1, 2, 3], [4, 5]), example([6, 7], [8, 9, 10])
    a_edited = example([11, 12, 0], [4, 5])
    labels = pack([a, b], 12)["labels"]
    with torch.no_grad():
        nll = response_token_nll(model_logits(model, pack([a, b], 12)), labels)[0]
        nll_edited = response_token_nll(model_logits(model, pack([a_edited, b], 12)), labels)[0]
    torch.testing.assert_close(nll[:, 5:], nll_edited[:, 5:], atol=1e-6, rtol=0)  # b's terms
    assert not torch.allclose(nll[:, :4], nll_edited[:, :4], atol=1e-4)  # a's terms saw the edit


def test_model_returning_a_tuple_or_an_object_with_logits():
    table = torch.randn(5, 5)
    batch = collate([example([1], [2, 3])])

    class Wrapped(nn.Module):
        def __init__(self, kind):
            super().__init__()
            self.inner, self.kind = Bigram(table), kind

        def forward(self, input_ids, attention_mask=None):
            logits = self.inner(input_ids)
            return (logits, None) if self.kind == "tuple" else type("Out", (), {"logits": logits})()

    expected = sft_loss(Bigram(table), batch)
    for kind in ("tuple", "object"):
        torch.testing.assert_close(sft_loss(Wrapped(kind), batch), expected)


# ----- training --------------------------------------------------------------------------------------


def _toy_task():
    """Respond to "a" with "b" and to "c" with "d" (then the end token "\\n")."""
    tokenizer = CharTokenizer("abcd\n")
    pairs = [("a", "b"), ("c", "d")] * 4
    return tokenizer, [tokenize_example(p, r, tokenizer.encode, end="\n") for p, r in pairs]


@pytest.mark.parametrize("packing", [False, True])
def test_train_sft_learns_the_toy_task_where_the_untrained_model_does_not(packing):
    tokenizer, examples = _toy_task()
    model = tiny_llama(vocab=tokenizer.vocab_size, seed=1)
    batch = collate(examples)
    with torch.no_grad():
        before = sft_loss(model, batch).item()
    cfg = SFTConfig(steps=60, batch_size=4, lr=1e-2, warmup_steps=5, packing=packing, seq_len=9)
    history = train_sft(model, examples, cfg, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        after = sft_loss(model, batch).item()
    assert before > 1.0  # ~log(5): the untrained model does not know the answers
    assert after < 0.05, history["loss"][-5:]
    assert len(history["loss"]) == len(history["lr"]) == len(history["tokens"]) == 60
    assert not model.training  # left in the mode it came in
    # Greedy decoding now answers the prompts.
    out = model.generate(tokenizer.encode("c")[None], max_new_tokens=2)
    assert tokenizer.decode(out[0, 1:]) == "d\n"


def test_train_sft_epochs_count_steps_and_the_same_seed_repeats():
    _, examples = _toy_task()
    cfg = SFTConfig(epochs=3, batch_size=3, lr=1e-3)  # 8 examples -> 3 batches per epoch
    runs = []
    for _ in range(2):
        model = tiny_llama(vocab=5, seed=2)
        runs.append(train_sft(model, examples, cfg, generator=torch.Generator().manual_seed(4)))
    assert runs[0]["steps"] == 9 and len(runs[0]["loss"]) == 9 and runs[0]["epochs"] == 3
    assert runs[0]["tokens"][:3] == [6, 6, 4]  # 2 response tokens per example; the last batch holds 2
    assert runs[0]["loss"] == runs[1]["loss"]


def test_train_sft_updates_only_trainable_parameters():
    _, examples = _toy_task()
    model = tiny_llama(vocab=5)
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("lm_head"))
    frozen = {k: v.clone() for k, v in model.state_dict().items()}
    train_sft(model, examples, SFTConfig(steps=2, lr=1e-2))
    for key, value in model.state_dict().items():
        assert torch.equal(value, frozen[key]) != key.startswith("lm_head"), key


# ----- reference parity: trl's SFTTrainer on transformers' LlamaForCausalLM --------------------------

transformers = pytest.importorskip("transformers")

# transformers' TrainingArguments (built by trl's SFTConfig) warns about a renamed option it sets itself.
quiet_trl = pytest.mark.filterwarnings("ignore:`gradient_checkpointing` is deprecated:FutureWarning")

DATA = [
    {"prompt": "hello ", "completion": "world"},
    {"prompt": "a ", "completion": "bc de"},
    {"prompt": "xyz", "completion": " q"},
    {"prompt": "the film is ", "completion": "good"},
]


def _hf_tokenizer():
    """A character tokenizer as a transformers tokenizer: <pad> = 0, <eos> = 1, then a-z and space."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers

    vocab = {"<pad>": 0, "<eos>": 1, **{c: i + 2 for i, c in enumerate("abcdefghijklmnopqrstuvwxyz ")}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<pad>")


def _pair():
    """A random tiny transformers Llama and ours with the same weights."""
    from aicanon.core.state_dict import load_state_dict_strict
    from aicanon.language.llama_weights import from_transformers

    cfg = LlamaConfig(
        vocab_size=29, hidden_size=16, intermediate_size=24, num_layers=2, num_heads=4, num_kv_heads=2,
        max_seq_len=64,
    )  # fmt: skip
    hf_cfg = transformers.LlamaConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads, num_key_value_heads=cfg.num_kv_heads,
        max_position_embeddings=cfg.max_seq_len, rms_norm_eps=cfg.norm_eps, tie_word_embeddings=False,
        attn_implementation="eager", pad_token_id=0, bos_token_id=1, eos_token_id=1,
    )  # fmt: skip
    torch.manual_seed(0)
    reference = transformers.LlamaForCausalLM(hf_cfg)
    ours = Llama(cfg)
    load_state_dict_strict(ours, from_transformers(reference.state_dict(), cfg))
    return ours.train(), reference.train()


def _trl_loss(reference, tokenizer, packing: bool):
    """trl's SFTTrainer.compute_loss on the collated batch of all of DATA (completion-only loss)."""
    trl = pytest.importorskip("trl")
    datasets = pytest.importorskip("datasets")
    args = trl.SFTConfig(
        output_dir="unused", report_to=[], use_cpu=True, per_device_train_batch_size=len(DATA),
        completion_only_loss=True, packing=packing, max_length=32 if packing else None,
        save_strategy="no", logging_strategy="no",
    )  # fmt: skip
    trainer = trl.SFTTrainer(
        model=reference, args=args, train_dataset=datasets.Dataset.from_list(DATA), processing_class=tokenizer
    )
    rows = [trainer.train_dataset[i] for i in range(len(trainer.train_dataset))]
    batch = trainer.data_collator(rows)
    return trainer.compute_loss(reference, dict(batch)), batch


def _examples(tokenizer):
    def encode(text):
        return tokenizer(text)["input_ids"]

    return [tokenize_example(d["prompt"], d["completion"], encode, end=tokenizer.eos_token) for d in DATA]


@pytest.mark.parity
@quiet_trl
@pytest.mark.parametrize("packing", [False, True])
def test_sft_loss_and_gradients_equal_trl(packing):
    ours, reference = _pair()
    tokenizer = _hf_tokenizer()
    expected, trl_batch = _trl_loss(reference, tokenizer, packing)
    expected.backward()
    examples = _examples(tokenizer)
    batch = pack(examples, seq_len=32) if packing else collate(examples)
    if not packing:  # the same batch, token for token
        for key in ("input_ids", "attention_mask", "labels"):
            assert torch.equal(batch[key], trl_batch[key]), key
    else:  # trl flattens its packed rows into one; the same tokens and targets
        assert sorted(batch["input_ids"][batch["attention_mask"].bool()].tolist()) == sorted(
            trl_batch["input_ids"][0].tolist()
        )
    # Our loss on transformers' model, then on ours loaded with the same weights.
    hf_loss = sft_loss(reference, collate(examples))
    torch.testing.assert_close(hf_loss, expected.detach(), atol=1e-5, rtol=0)
    loss = sft_loss(ours, batch)
    torch.testing.assert_close(loss, expected.detach(), atol=1e-5, rtol=0)
    loss.backward()
    theirs = {k.removeprefix("model."): p.grad for k, p in reference.named_parameters()}
    for key, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, theirs[key], atol=1e-5, rtol=1e-4, msg=f"gradient of {key}")


@pytest.mark.parity
@quiet_trl
def test_tokenized_examples_equal_trls_prompt_completion_tokenisation():
    tokenizer = _hf_tokenizer()
    trl = pytest.importorskip("trl")
    datasets = pytest.importorskip("datasets")
    args = trl.SFTConfig(
        output_dir="unused", report_to=[], use_cpu=True, completion_only_loss=True, max_length=None
    )
    trainer = trl.SFTTrainer(
        model=_pair()[1],
        args=args,
        train_dataset=datasets.Dataset.from_list(DATA),
        processing_class=tokenizer,
    )
    for row, ours in zip(trainer.train_dataset, _examples(tokenizer), strict=True):
        assert row["input_ids"] == ours.input_ids.tolist()
        assert row["labels"] == ours.labels.tolist()


# ----- bad input -------------------------------------------------------------------------------------


def test_bad_input_tokenize_example():
    with pytest.raises(ValueError, match="response must be a non-empty str, got ''"):
        tokenize_example("ab", "", ids_of, end=0)
    with pytest.raises(
        ValueError, match="prompt must be shorter than the context max_length=3.*got a prompt of 3"
    ):
        tokenize_example("abc", "d", ids_of, end=0, max_length=3)
    with pytest.raises(ValueError, match=r"prompt \+ response must fit in max_length=4 tokens, got 5"):
        tokenize_example("ab", "cd", ids_of, end=0, max_length=4)
    with pytest.raises(TypeError, match="prompt must be a str, got int"):
        tokenize_example(3, "d", ids_of, end=0)
    with pytest.raises(TypeError, match="encode must be a callable"):
        tokenize_example("a", "d", "not a tokenizer", end=0)
    with pytest.raises(TypeError, match="end must be the end token's text .* got NoneType"):
        tokenize_example("a", "d", ids_of, end=None)
    with pytest.raises(ValueError, match=r"max_length must be >= 2 \(a prompt token and a response token\) or None, got 1"):
        tokenize_example("a", "d", ids_of, end=0, max_length=1)
    with pytest.raises(TypeError, match=r"encode\(prompt\) must be a list of ints"):
        tokenize_example("a", "d", lambda s: s, end=0)
    with pytest.raises(ValueError, match="empty prompt needs a response of at least two tokens"):
        tokenize_example("", "d", ids_of, end="")


def test_bad_input_tokenize_chat():
    user = {"role": "user", "content": "hi"}
    with pytest.raises(ValueError, match=r"messages\[-1\] must be the assistant's response"):
        tokenize_chat([user, user], ids_of, "llama2", bos_id=1, eos_id=2)
    with pytest.raises(ValueError, match="messages must be a dialog of at least two messages"):
        tokenize_chat([user], ids_of, "llama2", bos_id=1, eos_id=2)
    answer = {"role": "assistant", "content": "  "}
    with pytest.raises(ValueError, match=r"messages\[-1\]\['content'\] \(the response\) must be a non-empty"):
        tokenize_chat([user, answer], ids_of, "llama2", bos_id=1, eos_id=2)
    answer = {"role": "assistant", "content": "yo"}
    with pytest.raises(ValueError, match="template must be one of"):
        tokenize_chat([user, answer], ids_of, "chatml")
    with pytest.raises(ValueError, match="special_tokens .* must be given for template='llama3'"):
        tokenize_chat([user, answer], ids_of, "llama3")
    with pytest.raises(ValueError, match="bos_id and eos_id must be given"):
        tokenize_chat([user, answer], ids_of, "llama2")

    def merging(text):  # merges "] y" into one token: the prompt is no prefix of the dialog
        return [ord(c) for c in text.replace("] y", "\x01")]

    with pytest.raises(ValueError, match="must be a prefix of the whole dialog's tokens"):
        tokenize_chat([user, answer], merging, "llama2", bos_id=1, eos_id=2)


def test_bad_input_examples_and_batches():
    with pytest.raises(ValueError, match="input_ids and labels must have the same length, got 3 and 2"):
        SFTExample(torch.tensor([1, 2, 3]), torch.tensor([X, 2]))
    with pytest.raises(TypeError, match="SFTExample.labels must be a 1-D int64 tensor"):
        SFTExample(torch.tensor([1, 2]), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="must mark at least one response token"):
        SFTExample(torch.tensor([1, 2]), torch.tensor([X, X]))
    with pytest.raises(ValueError, match="seq_len must be >= 1, got 0"):
        pack([example([1], [2])], seq_len=0)
    with pytest.raises(ValueError, match="examples must hold at least one SFTExample"):
        collate([])
    with pytest.raises(TypeError, match=r"examples\[1\] must be an SFTExample, got dict"):
        collate([example([1], [2]), {"input_ids": [1]}])
    with pytest.raises(ValueError, match=r"pad_id must be >= 0 \(a token id\), got -1"):
        collate([example([1], [2])], pad_id=-1)
    model = Bigram(torch.zeros(4, 4))
    batch = collate([example([1], [2])])
    with pytest.raises(
        ValueError, match=r"batch\['labels'\] must have the shape of input_ids \(1, 2\), got \(1, 3\)"
    ):
        sft_loss(model, {**batch, "labels": torch.full((1, 3), X)})
    with pytest.raises(ValueError, match="batch must hold 'input_ids' and 'labels', missing"):
        sft_loss(model, {"input_ids": batch["input_ids"]})
    with pytest.raises(ValueError, match="response tokens must be >= 1"):
        sft_loss(model, {**batch, "labels": torch.full((1, 2), X)})
    with pytest.raises(ValueError, match="num_tokens must be >= 1"):
        sft_loss(model, batch, num_tokens=0)
    with pytest.raises(ValueError, match=r"logits must be a float tensor \[batch, length, vocab\]"):
        response_token_nll(torch.zeros(2, 3), batch["labels"])


def test_bad_input_training():
    with pytest.raises(TypeError, match=r"SFTConfig.seq_len must be an int \(packing needs it\), got NoneType"):
        SFTConfig(packing=True)
    with pytest.raises(ValueError, match="SFTConfig.schedule must be one of"):
        SFTConfig(schedule="step")
    with pytest.raises(ValueError, match="SFTConfig.epochs must be >= 1, got 0"):
        SFTConfig(epochs=0)
    with pytest.raises(ValueError, match="SFTConfig.lr must be > 0"):
        SFTConfig(lr=0.0)
    _, examples = _toy_task()
    model = tiny_llama(vocab=5)
    with pytest.raises(TypeError, match="cfg must be an SFTConfig, got dict"):
        train_sft(model, examples, {"lr": 1.0})
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        train_sft(lambda x: x, examples, SFTConfig())
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        train_sft(model, examples, SFTConfig(), generator=0)
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="model must have trainable parameters"):
        train_sft(model, examples, SFTConfig())
