"""Prompt-based learning (Liu et al. 2021): templates, verbalisers, multi-token answer scoring against a
direct computation from MLM logits, parity with transformers' AlbertForMaskedLM, soft prompts against a
model whose vocabulary holds them as extra rows, causal-LM scoring, tuning strategies, bad input."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from aicanon.language.albert import (
    AlbertConfig,
    AlbertForPreTraining,
    config_to_transformers,
    to_transformers,
)
from aicanon.language.llama import Llama, LlamaConfig
from aicanon.language.prompting import (
    CausalLMPromptClassifier,
    MaskedLMPromptClassifier,
    PromptTemplate,
    SequenceClassifier,
    SoftPrompt,
    Verbalizer,
    answer_log_probs,
    causal_lm_continuation_log_probs,
    encode_with_soft_prompt,
    fit_classifier,
    predict,
    trainable_parameters,
)

pytestmark = pytest.mark.paper("prompt-learning")

WORDS = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "it",
    "was",
    ".",
    "a",
    "film",
    "good",
    "bad",
    "so",
    "so-so",
    "very",
    "dull",
    "fun",
    "movie",
    "the",
]
INDEX = {w: i for i, w in enumerate(WORDS)}
IDS = {"cls_id": 2, "sep_id": 3, "mask_id": 4, "pad_id": 0}


def tokenize(text: str) -> list[int]:
    return [INDEX.get(w, 1) for w in text.split()]


def tiny_mlm(seed: int = 0, **overrides) -> AlbertForPreTraining:
    torch.manual_seed(seed)
    fields = dict(
        vocab_size=len(WORDS),
        embedding_size=8,
        hidden_size=16,
        num_layers=2,
        num_heads=2,
        intermediate_size=32,
        max_position_embeddings=40,
        initializer_range=0.3,
        sharing="none",
    )
    fields.update(overrides)
    return AlbertForPreTraining(AlbertConfig(**fields)).eval()


def classifier(model=None, answers=(("bad",), ("good", "very good")), reduction="sum", **kwargs):
    model = tiny_mlm() if model is None else model
    return MaskedLMPromptClassifier(
        model, tokenize, PromptTemplate("[X] it was [Z] ."), Verbalizer(answers, reduction), **IDS, **kwargs
    ).eval()


# ------------------------------------------------------------------------------------ templates
def test_template_kind_fill_and_pieces():
    cloze = PromptTemplate("[X] it was [Z] .")
    prefix = PromptTemplate("review : [X] sentiment : [Z]")
    assert (cloze.kind, prefix.kind) == ("cloze", "prefix")
    assert cloze.fill("a film") == "a film it was [Z] ."
    assert cloze.fill("a film", "good") == "a film it was good ."
    assert cloze.pieces() == ["[X]", " it was ", "[Z]", " ."]
    assert PromptTemplate("[Z] : [X]").pieces() == ["[Z]", " : ", "[X]"]


@pytest.mark.parametrize("text", ["[X] it was .", "it was [Z]", "[X] [X] [Z]", "[X] [Z] [Z]"])
def test_template_needs_each_slot_once(text):
    with pytest.raises(ValueError, match="exactly once"):
        PromptTemplate(text)
    with pytest.raises(TypeError, match="text must be a str"):
        PromptTemplate(3)


# ---------------------------------------------------------------------------------- verbalisers
def test_label_score_is_the_log_probability_of_the_answer_set():
    verbalizer = Verbalizer({0: ["bad", "dull"], 1: "good"})
    probs = torch.tensor([[0.1, 0.2, 0.3], [0.05, 0.05, 0.6]])
    scores = verbalizer.label_scores(probs.log())
    assert torch.allclose(scores.exp(), torch.tensor([[0.3, 0.3], [0.1, 0.6]]))


def test_answer_log_probs_golden_sum_and_mean():
    log_probs = torch.log(torch.tensor([[[0.5, 0.25, 0.25], [0.1, 0.6, 0.3]]]))  # [1, m=2, V=3]
    answers = [[0, 1], [2, 2]]
    total = answer_log_probs(log_probs, answers, "sum")
    mean = answer_log_probs(log_probs, answers, "mean")
    assert torch.allclose(total, torch.tensor([[math.log(0.5 * 0.6), math.log(0.25 * 0.3)]]))
    assert torch.allclose(mean, total / 2)


@pytest.mark.parametrize(
    "answers, match",
    [
        (["good"], "at least 2 labels"),
        ([["good"], []], "non-empty strings"),
        (["good", "good"], "distinct"),
        ({0: "a", 2: "b"}, "keys must be the labels"),
    ],
)
def test_bad_verbalizer_is_rejected(answers, match):
    with pytest.raises(ValueError, match=match):
        Verbalizer(answers)
    with pytest.raises(ValueError, match="reduction must be one of"):
        Verbalizer(["a", "b"], reduction="max")


def test_answer_log_probs_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\[batch, slots, vocab\]"):
        answer_log_probs(torch.zeros(2, 3), [[0]])
    with pytest.raises(ValueError, match="2-token answers"):
        answer_log_probs(torch.zeros(1, 2, 3), [[0]])
    with pytest.raises(ValueError, match=r"token ids in \[0, 3\)"):
        answer_log_probs(torch.zeros(1, 1, 3), [[5]])


# ------------------------------------------------------------- scoring against the MLM's logits
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_verbalizer_scoring_equals_a_direct_computation_from_mlm_logits(reduction):
    model = tiny_mlm()
    clf = classifier(model, reduction=reduction)
    texts = ["a film", "the movie was very dull fun"]
    with torch.no_grad():
        got = clf(texts)
        expected = []
        for text in texts:
            per_answer = []
            for answer in ["bad", "good", "very good"]:
                m = len(answer.split())
                ids = [2, *tokenize(text), *tokenize("it was"), *([4] * m), *tokenize("."), 3]
                logits, _ = model(torch.tensor([ids]))
                start = len(tokenize(text)) + 3
                log_probs = F.log_softmax(logits[0, start : start + m], dim=-1)
                picked = [float(log_probs[j, i]) for j, i in enumerate(tokenize(answer))]
                per_answer.append(sum(picked) if reduction == "sum" else sum(picked) / m)
            expected.append([per_answer[0], math.log(math.exp(per_answer[1]) + math.exp(per_answer[2]))])
    assert torch.allclose(got, torch.tensor(expected), atol=1e-5)
    assert clf.answer_ids == [[11], [10], [14, 10]]


def test_input_is_truncated_to_max_length_and_padding_does_not_change_scores():
    clf = classifier(max_length=10)
    ids, mask, slots = clf.encode(["a film " * 10, "a film"], num_masks=2)
    assert ids.shape == (2, 10) and mask[0].all() and int(mask[1].sum()) == 9
    assert ids[0, slots[0]].tolist() == [4, 4] and ids[1, slots[1]].tolist() == [4, 4]
    with torch.no_grad():
        alone = clf(["a film"])
        batched = clf(["a film " * 10, "a film"])
    assert torch.allclose(alone[0], batched[1], atol=1e-5)


@pytest.mark.parity
def test_parity_with_transformers_albert_for_masked_lm():
    transformers = pytest.importorskip("transformers")
    model = tiny_mlm(sharing="all")
    reference = transformers.AlbertForMaskedLM(
        transformers.AlbertConfig(**config_to_transformers(model.cfg))
    ).eval()
    state = {
        k: v
        for k, v in to_transformers(model.state_dict(), model.cfg).items()
        if not k.startswith(("sop_classifier", "albert.pooler"))
    }
    missing, unexpected = reference.load_state_dict(state, strict=False)
    assert not unexpected and all(k.startswith("predictions.decoder") for k in missing)
    reference.tie_weights()
    clf = classifier(model)
    texts = ["a film", "the movie was so-so"]
    for m in (1, 2):
        ids, mask, slots = clf.encode(texts, m)
        with torch.no_grad():
            ours = clf.slot_log_probs(texts, m)
            theirs = reference(input_ids=ids, attention_mask=mask.long()).logits
        theirs = F.log_softmax(theirs[torch.arange(2)[:, None], slots], dim=-1)
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


# ---------------------------------------------------------------------------------- soft prompts
def test_soft_prompt_equals_a_model_whose_vocabulary_holds_the_prompt_vectors():
    model = tiny_mlm()
    n = 3
    prompt = torch.randn(n, model.cfg.embedding_size)
    ids = torch.tensor([[2, 8, 9, 5, 6, 4, 7, 3], [2, 17, 6, 4, 7, 3, 0, 0]])
    mask = ids != 0
    ours, full_mask = encode_with_soft_prompt(model.albert, ids, mask, prompt)
    # By hand: a model with n extra vocabulary rows holding the prompt, the ids inserted after [CLS].
    bigger = AlbertForPreTraining(AlbertConfig(**{**model.cfg.__dict__, "vocab_size": len(WORDS) + n})).eval()
    state = model.state_dict()
    state["albert.embeddings.word.weight"] = torch.cat([state["albert.embeddings.word.weight"], prompt])
    state["mlm_bias"] = torch.cat([state["mlm_bias"], torch.zeros(n)])
    bigger.load_state_dict(state)
    extra = torch.arange(len(WORDS), len(WORDS) + n).expand(2, n)
    by_hand_ids = torch.cat([ids[:, :1], extra, ids[:, 1:]], dim=1)
    by_hand_mask = by_hand_ids != 0
    with torch.no_grad():
        expected, _ = bigger.albert(by_hand_ids, attention_mask=by_hand_mask)
    assert torch.equal(full_mask, by_hand_mask)
    real = by_hand_mask[..., None]
    torch.testing.assert_close(ours * real, expected * real, atol=1e-5, rtol=0)
    # Without a prompt it is the encoder itself.
    plain, _ = encode_with_soft_prompt(model.albert, ids, mask, None)
    torch.testing.assert_close(plain, model.albert(ids, attention_mask=mask)[0], atol=0, rtol=0)


def test_soft_prompt_starts_from_word_embeddings_and_shifts_the_answer_slots():
    model = tiny_mlm()
    clf = classifier(model, soft_prompt_length=4, soft_prompt_init="it was")
    rows = model.albert.embeddings.word.weight[[5, 6, 5, 6]]
    assert torch.equal(clf.soft_prompt().detach(), rows.detach())
    # A soft prompt equal to the words' own embeddings scores as the discrete words inserted after [CLS].
    plain = classifier(model, answers=(("bad",), ("good",)))
    clf.verbalizer = plain.verbalizer
    clf.answer_ids = plain.answer_ids
    with torch.no_grad():
        soft = clf(["a film"])
        ids = [2, 5, 6, 5, 6, 8, 9, 5, 6, 4, 7, 3]
        logits, _ = model(torch.tensor([ids]))
        expected = F.log_softmax(logits[0, 9], -1)[[11, 10]]
    torch.testing.assert_close(soft[0], expected, atol=1e-5, rtol=0)


def test_fixed_lm_prompt_tuning_moves_only_the_prompt():
    model = tiny_mlm()
    clf = classifier(model, answers=("bad", "good"), soft_prompt_length=2)
    before = copy.deepcopy(model.state_dict())
    prompt_before = clf.soft_prompt().detach().clone()
    params = trainable_parameters(clf, "fixed_lm_prompt")
    assert params == [clf.soft_prompt.embeddings]
    losses = fit_classifier(clf, ["a film", "very dull"], torch.tensor([1, 0]), params, steps=20, lr=0.05)
    assert len(losses) == 20 and losses[-1] < losses[0]
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert not torch.equal(prompt_before, clf.soft_prompt().detach())
    assert all(p.requires_grad for p in model.parameters())  # restored afterwards


def test_fixed_prompt_lm_tuning_fits_a_few_examples():
    clf = classifier(answers=("bad", "good"))
    texts, labels = ["a film fun", "very dull", "the movie fun", "so dull"], torch.tensor([1, 0, 1, 0])
    fit_classifier(
        clf,
        texts,
        labels,
        trainable_parameters(clf, "fixed_prompt_lm"),
        steps=60,
        lr=3e-3,
        batch_size=4,
        generator=torch.Generator().manual_seed(0),
    )
    assert predict(clf, texts).tolist() == labels.tolist()


def test_strategies_choose_their_parameters():
    clf = classifier(answers=("bad", "good"), soft_prompt_length=2)
    lm = trainable_parameters(clf, "fixed_prompt_lm")
    assert trainable_parameters(clf, "tuning_free") == []
    assert trainable_parameters(clf, "prompt_lm") == lm + [clf.soft_prompt.embeddings]
    assert not any(p is clf.model.sop_classifier.weight for p in lm)
    assert any(p is clf.model.albert.embeddings.word.weight for p in lm)
    head = SequenceClassifier(tiny_mlm().albert, tokenize, 2, cls_id=2, sep_id=3)
    assert len(trainable_parameters(head, "promptless")) == len(list(head.parameters()))
    with pytest.raises(TypeError, match="needs a SequenceClassifier"):
        trainable_parameters(clf, "promptless")
    with pytest.raises(TypeError, match="needs a MaskedLMPromptClassifier"):
        trainable_parameters(head, "fixed_prompt_lm")
    with pytest.raises(ValueError, match="needs a soft prompt"):
        trainable_parameters(classifier(), "fixed_lm_prompt")
    with pytest.raises(ValueError, match="strategy must be one of"):
        trainable_parameters(clf, "adapter")


# ------------------------------------------------------------------------------------- causal LM
def tiny_llama() -> Llama:
    torch.manual_seed(0)
    return Llama(
        LlamaConfig(
            vocab_size=len(WORDS),
            hidden_size=16,
            intermediate_size=32,
            num_layers=2,
            num_heads=2,
            max_seq_len=32,
            init_std=0.3,
        )
    ).eval()


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_causal_lm_scores_equal_a_direct_teacher_forced_computation(reduction):
    model = tiny_llama()
    contexts, continuations = [[2, 8, 9], [2, 17, 6, 5, 6]], [[10, 7], [14]]
    with torch.no_grad():
        got = causal_lm_continuation_log_probs(model, contexts, continuations, reduction)
        for i, (a, b) in enumerate(zip(contexts, continuations, strict=True)):
            log_probs = F.log_softmax(model(torch.tensor([a + b]))[0], -1)
            values = [float(log_probs[len(a) - 1 + j, t]) for j, t in enumerate(b)]
            want = sum(values) if reduction == "sum" else sum(values) / len(values)
            assert got[i].item() == pytest.approx(want, abs=1e-5)


def test_causal_prompt_classifier_scores_the_filled_prompt_from_the_slot_on():
    model = tiny_llama()
    clf = CausalLMPromptClassifier(
        model, tokenize, PromptTemplate("[X] it was [Z] ."), Verbalizer(["bad", "good"]), bos=[2]
    )
    with torch.no_grad():
        got = clf(["a film"])
        want = [
            causal_lm_continuation_log_probs(model, [[2, 8, 9, 5, 6]], [[INDEX[w], 7]]).item()
            for w in ("bad", "good")
        ]
    torch.testing.assert_close(got[0], torch.tensor(want), atol=1e-5, rtol=0)
    assert PromptTemplate("[X] it was [Z]").kind == "prefix"


# ------------------------------------------------------------------------------------- bad input
def test_bad_input_is_rejected():
    model = tiny_mlm()
    with pytest.raises(TypeError, match="model must be an AlbertForPreTraining"):
        MaskedLMPromptClassifier(
            model.albert, tokenize, PromptTemplate("[X] [Z]"), Verbalizer(["a", "b"]), **IDS
        )
    with pytest.raises(TypeError, match="template must be a PromptTemplate"):
        MaskedLMPromptClassifier(model, tokenize, "[X] [Z]", Verbalizer(["a", "b"]), **IDS)
    with pytest.raises(ValueError, match="mask_id must be"):
        MaskedLMPromptClassifier(
            model, tokenize, PromptTemplate("[X] [Z]"), Verbalizer(["a", "b"]), **{**IDS, "mask_id": 99}
        )
    with pytest.raises(ValueError, match="tokenises to no tokens"):
        MaskedLMPromptClassifier(
            model,
            lambda t: [] if t == "zzz" else tokenize(t),
            PromptTemplate("[X] [Z]"),
            Verbalizer(["a", "zzz"]),
            **IDS,
        )
    clf = classifier(model)
    with pytest.raises(ValueError, match="texts must be a non-empty list of str"):
        clf("a film")
    with pytest.raises(ValueError, match="texts must be a non-empty list of str"):
        clf([])
    with pytest.raises(ValueError, match="leaves no room for the input"):
        classifier(model, max_length=6).encode(["a"], 2)
    with pytest.raises(ValueError, match=r"prompt must be a \[length, 8\] tensor"):
        encode_with_soft_prompt(model.albert, torch.tensor([[2, 3]]), None, torch.zeros(2, 5))
    with pytest.raises(ValueError, match="init must be a"):
        SoftPrompt(2, 8, init=torch.zeros(3, 8))
    with pytest.raises(ValueError, match="labels must be a"):
        fit_classifier(clf, ["a", "b"], torch.tensor([0]), list(model.parameters()), steps=1, lr=1e-3)
    with pytest.raises(ValueError, match="equal length"):
        causal_lm_continuation_log_probs(tiny_llama(), [[1]], [[1], [2]])
