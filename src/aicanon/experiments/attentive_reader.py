"""Teaching Machines to Read and Comprehend (Hermann et al., NeurIPS 2015): cloze reading on WikiText-2.

The paper's protocol, at our scale:

1. **Build an anonymised cloze set** (Section 3, :mod:`aicanon.language.cloze`). The paper pairs
   CNN/Daily Mail articles with their bullet-point summaries; those corpora are not staged here, so
   we build the same kind of example from the staged WikiText-2 articles: a *document* is a run of
   consecutive sentences of one paragraph (at most ``max_document_tokens`` tokens), a *summary* is
   one of its sentences, every entity mention of that sentence yields one query (the mention
   replaced by ``@placeholder``), and every entity is anonymised with a per-example random
   permutation of ``@entity0 .. @entity{N-1}``. Training examples come from ``valid.txt``, test
   examples from ``test.txt`` (different articles).
2. **Frequency baselines** (Section 4.1): maximum frequency (the document's most frequent entity)
   and exclusive frequency (the most frequent entity that the query does not mention).
3. **Train the neural readers** (Section 4.2, :mod:`aicanon.language.attentive_reader`): the
   Attentive Reader, the Deep LSTM Reader and (full config) the Impatient and Uniform Readers, with
   cross-entropy over the entities of the document, and measure test accuracy.

Table 5 (CNN test): maximum frequency 33.2, exclusive frequency 39.3, Deep LSTM Reader 57.0,
Uniform Reader 39.4, Attentive Reader 63.0, Impatient Reader 63.8. (63.0 and 63.8 were confirmed
against paperswithcode's record of the paper; the paper's table itself was not reachable from here,
so the other numbers are marked unverified in the claims.)

**What the quick run shows, and its gap.** Quick: 60-token documents, 16 entity markers, 6000
training queries, 3 epochs of Adam (about 560 steps) for the Attentive and the Deep LSTM Reader.
The Attentive Reader learns (43 % against a chance level of about 31 %), beats maximum frequency
(36-38 %) and the Deep LSTM Reader (37-41 %): two of Table 5's orderings hold. It does *not* beat
exclusive frequency, which is far stronger on our set (62-66 %) than on CNN (39.3), because each
query's own sentence is part of its document, so the answer is usually the one entity of that
sentence the query does not mention. That claim (Attentive > exclusive frequency) is made at full
scale only and is a gap at quick scale. A second gap: at quick scale the attention itself does not
yet help. The same run with the attention fixed to uniform (``attention="uniform"``, Table 5's
Uniform Reader) scored 44.5 % on seed 0 against 43.1 % with Eq. 5-6, so the quick margins over
maximum frequency and the Deep LSTM Reader come from the bidirectional encoding and the output
layer, not from where the reader attends; the paper's Attentive-over-Uniform margin (63.0 vs 39.4)
is claimed at full scale only. Longer documents make the readers much slower to learn: at
120 tokens and 48 markers, 750 steps left both readers at chance (about 20 %), as did up to 4000
steps of a synthetic "find the entity after word w" task in development runs: the additive
attention of Eq. 5 leaves its initial plateau slowly, and the paper trained on 90k-380k documents.

Full configuration (``Config.full()``): every example of both files with 120-token documents and 48
markers (about 15k training and 15k test queries), model sizes near the paper's (unverified: 256
hidden units per direction, embeddings 256; dropout 0.2; RMSProp), 30 epochs of each of the four
readers. Cost estimate (not run): about 470 steps of batch 32 per epoch, so 14k steps per reader; a
step of the 256-unit Attentive Reader on 120-token documents takes roughly 10 ms on an H100 and
0.3 s on two CPU cores, the Impatient Reader (one document pass per query token) about three times
that: roughly 20 minutes on one GPU, 10 hours or more on CPU.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from matplotlib.figure import Figure
from torch import nn

from aicanon.core import Claim, ExperimentConfig, Result, seed, select_device, track
from aicanon.core.checks import check_choice, check_float, check_int, check_probability
from aicanon.core.data import fetch
from aicanon.datasets.vocabulary import Vocabulary
from aicanon.language.attentive_reader import AttentiveReader, DeepLSTMReader, ImpatientReader
from aicanon.language.cloze import (
    DELIMITER,
    ClozeExample,
    cloze_examples,
    cloze_specials,
    detect_entities,
    encode_cloze,
    exclusive_frequency,
    maximum_frequency,
    split_sentences,
)

READERS = ("attentive", "deep_lstm", "impatient", "uniform")


@dataclass
class Config(ExperimentConfig):
    train_file: str = "valid.txt"
    """WikiText-2 file the training cloze set is built from (train.txt is not staged)."""
    test_file: str = "test.txt"
    """WikiText-2 file the test cloze set is built from (other articles than the training file's)."""
    max_document_tokens: int = 60
    """A document is a run of consecutive sentences of one paragraph of at most this many tokens."""
    num_entity_ids: int = 16
    """Entity markers @entity0 .. @entity{N-1}; an example with more distinct entities is dropped."""
    train_examples: int = 6000
    """Training queries drawn (at random) from the training file; 0 takes all of them."""
    test_examples: int = 1000
    """Test queries drawn from the test file; 0 takes all of them."""
    min_count: int = 5
    """Words seen fewer times in the training documents and queries map to <unk>."""
    readers: tuple[str, ...] = ("attentive", "deep_lstm")
    """Readers to train, among "attentive", "deep_lstm", "impatient", "uniform" (Table 5's rows)."""
    embedding_size: int = 64
    """Word embedding size (shared by document and query)."""
    hidden_size: int = 64
    """LSTM units (per direction for the attentive readers, per layer for the Deep LSTM Reader)."""
    attention_size: int = 64
    """Size of m(t) in Eq. 5 and m(i, t) in Eq. 8."""
    deep_layers: int = 2
    """Depth K of the Deep LSTM Reader."""
    dropout: float = 0.1
    """Dropout on embeddings, between the Deep LSTM's layers and before the output layer."""
    optimizer: str = "adam"
    """"adam" or "rmsprop" (the paper's optimiser)."""
    learning_rate: float = 3e-3
    """Step size."""
    batch_size: int = 32
    """Examples per step."""
    epochs: int = 3
    """Passes over the training set per reader."""
    grad_clip: float = 5.0
    """Gradient norm clipping (0: none)."""
    train: bool = True
    """False evaluates the readers untrained (the ablation that must fail)."""
    attention: str = "additive"
    """The Attentive Reader's attention: "additive" (Eq. 5-6) or "uniform" (s(t) = 1/|d|: the ablation)."""

    @classmethod
    def quick(cls) -> Config:
        # One seed: a seed trains two readers for 3 epochs, about 50 s on one CPU core; seeds 1 and 2
        # were checked by hand (numbers above CLAIMS).
        return cls(scale="quick", seeds=1)

    @classmethod
    def full(cls) -> Config:
        return cls(
            scale="full",
            seeds=3,
            train_examples=0,
            test_examples=0,
            max_document_tokens=120,
            num_entity_ids=48,
            readers=READERS,
            embedding_size=256,
            hidden_size=256,
            attention_size=256,
            dropout=0.2,
            optimizer="rmsprop",
            learning_rate=5e-4,
            epochs=30,
            min_count=2,
        )


# Thresholds from our quick runs (seed 0, 1, 2; CPU): the Attentive Reader beats maximum frequency
# by 6.6, 6.1 and 4.1 points and the Deep LSTM Reader by 2.6, 4.7 and 4.8; the quick thresholds (2.0
# and 1.0) sit below the smallest of them. Untrained, the reader is at chance (about 31 % on these
# 60-token documents), below maximum frequency (36-38 %): it fails. Against exclusive frequency the
# quick reader falls short by about 20 points (exclusive frequency is 62-66 % here, far above the
# paper's 39.3, because the query's own sentence is in the document): a gap, claimed at full scale
# only, where our thresholds restate Table 5's ordering and no run of ours has checked them yet.
# The uniform-attention ablation does not fail the quick claims (seed 0: 44.5 %, margins 8.0 and 4.0
# points): the quick run shows a trained bidirectional reader beating these baselines, not yet
# attention's contribution, which is claimed at full scale (attentive_minus_uniform).
CLAIMS = [
    Claim(
        metric="attentive_minus_maximum_frequency",
        description="Attentive Reader accuracy minus the maximum-frequency baseline's (points)",
        paper=29.8,
        source="Table 5, CNN test: Attentive Reader 63.0 - maximum frequency 33.2 (33.2 unverified)",
        quick=2.0,
        full=2.0,
        unit="points",
    ),
    Claim(
        metric="attentive_minus_deep_lstm",
        description="Attentive Reader accuracy minus the Deep LSTM Reader's (points)",
        paper=6.0,
        source="Table 5, CNN test: Attentive Reader 63.0 - Deep LSTM Reader 57.0 (57.0 unverified)",
        quick=1.0,
        full=1.0,
        unit="points",
    ),
    Claim(
        metric="attentive_minus_exclusive_frequency",
        description="Attentive Reader accuracy minus the exclusive-frequency baseline's (points)",
        paper=23.7,
        source="Table 5, CNN test: Attentive Reader 63.0 - exclusive frequency 39.3 (39.3 unverified)",
        quick=None,
        full=0.0,
        unit="points",
    ),
    Claim(
        metric="attentive_minus_uniform",
        description="Attentive Reader accuracy minus the Uniform Reader's (attention's contribution, points)",
        paper=23.6,
        source="Table 5, CNN test: Attentive Reader 63.0 - Uniform Reader 39.4 (39.4 unverified)",
        quick=None,
        full=1.0,
        unit="points",
    ),
    Claim(
        metric="exclusive_minus_maximum_frequency",
        description="exclusive frequency beats maximum frequency on our cloze set (points)",
        paper=6.1,
        source="Table 5, CNN test: 39.3 - 33.2 (unverified)",
        quick=10.0,
        full=10.0,
        unit="points",
    ),
    Claim(
        metric="attentive_accuracy",
        description="Attentive Reader test accuracy on our WikiText-2 cloze set",
        paper=63.0,
        source="Table 5, CNN test",
        unit="%",
    ),
    Claim(
        metric="deep_lstm_accuracy",
        description="Deep LSTM Reader test accuracy",
        paper=57.0,
        source="Table 5, CNN test (unverified)",
        unit="%",
    ),
    Claim(
        metric="maximum_frequency_accuracy",
        description="maximum-frequency baseline accuracy",
        paper=33.2,
        source="Table 5, CNN test (unverified)",
        unit="%",
    ),
    Claim(
        metric="exclusive_frequency_accuracy",
        description="exclusive-frequency baseline accuracy",
        paper=39.3,
        source="Table 5, CNN test (unverified)",
        unit="%",
    ),
    Claim(
        metric="impatient_accuracy",
        description="Impatient Reader test accuracy (full config)",
        paper=63.8,
        source="Table 5, CNN test",
        unit="%",
    ),
    Claim(
        metric="uniform_accuracy",
        description="Uniform Reader (attention fixed to 1/|d|) test accuracy (full config)",
        paper=39.4,
        source="Table 5, CNN test (unverified)",
        unit="%",
    ),
]


def check_config(cfg: Config) -> None:
    check_int("max_document_tokens", cfg.max_document_tokens, 8)
    check_int("num_entity_ids", cfg.num_entity_ids, 2)
    check_int("train_examples", cfg.train_examples, 0)
    check_int("test_examples", cfg.test_examples, 0)
    check_int("min_count", cfg.min_count)
    for name in ("embedding_size", "hidden_size", "attention_size", "deep_layers", "batch_size", "epochs"):
        check_int(name, getattr(cfg, name))
    check_probability("dropout", cfg.dropout, allow_one=False)
    check_choice("optimizer", cfg.optimizer, ("adam", "rmsprop"))
    check_choice("attention", cfg.attention, ("additive", "uniform"))
    check_float("learning_rate", cfg.learning_rate, 0, min_inclusive=False, finite=True)
    check_float("grad_clip", cfg.grad_clip, 0, finite=True)
    if not isinstance(cfg.readers, (tuple, list)) or any(r not in READERS for r in cfg.readers):
        raise ValueError(f"readers must be a tuple of names among {READERS}, got {cfg.readers!r}")


# --- 1. the cloze set -------------------------------------------------------------------------


def wikitext_articles(text: str) -> list[list[list[str]]]:
    """WikiText's articles, each a list of paragraphs (token lists): an article starts at a
    ``= Title =`` line; ``= = Section = =`` lines are dropped; empty lines separate nothing."""
    articles: list[list[list[str]]] = []
    for line in text.splitlines():
        tokens = line.split()
        if not tokens:
            continue
        if tokens[0] == "=" and tokens[-1] == "=":
            if len(tokens) > 2 and tokens[1] != "=":
                articles.append([])  # " = Title = " starts an article; " = = Section = = " does not
            continue
        if articles:
            articles[-1].append(tokens)
    return articles


def documents_and_summaries(
    articles: list[list[list[str]]], max_tokens: int
) -> list[tuple[list[str], list[str], set[tuple[str, ...]]]]:
    """``(document, summary, entities)`` triples: every run of consecutive sentences of a paragraph
    (at most ``max_tokens`` tokens, at least two sentences) with each of its sentences as a summary;
    the entities are detected once per article."""
    triples = []
    for article in articles:
        sentences_of = [split_sentences(p) for p in article]
        entities = detect_entities([s for sentences in sentences_of for s in sentences])
        for sentences in sentences_of:
            run: list[list[str]] = []
            for sentence in [*sentences, None]:
                if (
                    sentence is not None
                    and len(sentence) <= max_tokens
                    and sum(map(len, run)) + len(sentence) <= max_tokens
                ):
                    run.append(sentence)
                    continue
                if len(run) >= 2:
                    document = [t for s in run for t in s]
                    triples.extend((document, s, entities) for s in run)
                run = [sentence] if sentence is not None and len(sentence) <= max_tokens else []
    return triples


def cloze_set(file: str, cfg: Config, count: int, rng: random.Random) -> list[ClozeExample]:
    """``count`` cloze examples (all when 0) from the WikiText-2 file, in random order."""
    text = fetch("wikitext-2", file).read_text(encoding="utf-8")
    triples = documents_and_summaries(wikitext_articles(text), cfg.max_document_tokens)
    rng.shuffle(triples)
    examples: list[ClozeExample] = []
    for document, summary, entities in triples:
        examples.extend(cloze_examples(document, summary, entities, rng, num_entity_ids=cfg.num_entity_ids))
        if count and len(examples) >= count:
            return examples[:count]
    return examples


# --- 2. the frequency baselines ---------------------------------------------------------------


def baseline_accuracy(examples: list[ClozeExample], baseline) -> float:
    return 100.0 * sum(baseline(e) == e.answer for e in examples) / len(examples)


# --- 3. the readers ---------------------------------------------------------------------------


def make_reader(name: str, vocabulary: Vocabulary, cfg: Config) -> nn.Module:
    common = dict(
        embedding_size=cfg.embedding_size,
        hidden_size=cfg.hidden_size,
        dropout=cfg.dropout,
        padding_idx=vocabulary.pad_id,
    )
    if name == "deep_lstm":
        return DeepLSTMReader(
            len(vocabulary),
            cfg.num_entity_ids,
            delimiter_id=vocabulary.index(DELIMITER),
            num_layers=cfg.deep_layers,
            **common,
        )
    if name == "impatient":
        return ImpatientReader(
            len(vocabulary), cfg.num_entity_ids, attention_size=cfg.attention_size, **common
        )
    attention = "uniform" if name == "uniform" else cfg.attention
    return AttentiveReader(
        len(vocabulary), cfg.num_entity_ids, attention_size=cfg.attention_size, attention=attention, **common
    )


def batches(examples: list[ClozeExample], vocabulary: Vocabulary, cfg: Config, rng: random.Random | None):
    order = list(range(len(examples)))
    if rng is not None:
        rng.shuffle(order)
    for start in range(0, len(order), cfg.batch_size):
        yield encode_cloze(
            [examples[i] for i in order[start : start + cfg.batch_size]], vocabulary, cfg.num_entity_ids
        )


def accuracy(
    model: nn.Module, examples: list[ClozeExample], vocabulary: Vocabulary, cfg: Config, device
) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for batch in batches(examples, vocabulary, cfg, None):
            batch = batch.to(device)
            logits = model(
                batch.document, batch.document_lengths, batch.query, batch.query_lengths, batch.candidates
            )
            correct += int((logits.argmax(dim=1) == batch.answers).sum())
    return 100.0 * correct / len(examples)


def train_reader(
    name: str, train: list[ClozeExample], vocabulary: Vocabulary, cfg: Config, device, rng: random.Random
) -> tuple[nn.Module, list[float]]:
    """Train one reader: cross-entropy over the document's entities (p(a|d,q) restricted to the
    candidates), ``cfg.epochs`` passes over ``train``."""
    model = make_reader(name, vocabulary, cfg).to(device)
    losses: list[float] = []
    if not cfg.train:
        return model, losses
    optimizer_class = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.RMSprop
    optimizer = optimizer_class(model.parameters(), lr=cfg.learning_rate)
    steps = cfg.epochs * -(-len(train) // cfg.batch_size)
    progress = iter(track(range(steps), f"{name} reader", total=steps))
    for _ in range(cfg.epochs):
        model.train()
        for batch in batches(train, vocabulary, cfg, rng):
            batch = batch.to(device)
            logits = model(
                batch.document, batch.document_lengths, batch.query, batch.query_lengths, batch.candidates
            )
            loss = nn.functional.cross_entropy(logits, batch.answers)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            losses.append(loss.item())
            next(progress, None)
    return model, losses


def _loss_figure(curves: dict[str, list[float]]) -> Figure:
    figure = Figure(figsize=(6, 4), layout="constrained")
    axis = figure.subplots()
    for name, losses in curves.items():
        window = max(1, len(losses) // 20)
        smooth = [
            sum(losses[max(0, i - window + 1) : i + 1]) / len(losses[max(0, i - window + 1) : i + 1])
            for i in range(len(losses))
        ]
        axis.plot(smooth, label=name)
    axis.set(xlabel="step", ylabel="training cross-entropy (running mean)", title="readers' training loss")
    axis.legend(fontsize="small")
    return figure


def run(cfg: Config) -> Result:
    check_config(cfg)
    seed(cfg.seed)
    device = select_device(cfg.device)
    rng = random.Random(cfg.seed)

    # 1. The cloze sets: training queries from one file, test queries from another.
    train = cloze_set(cfg.train_file, cfg, cfg.train_examples, rng)
    test = cloze_set(cfg.test_file, cfg, cfg.test_examples, rng)
    vocabulary = Vocabulary.build(
        [[*e.document, *e.query] for e in train],
        min_count=cfg.min_count,
        specials=cloze_specials(cfg.num_entity_ids),
    )

    # 2. The frequency baselines (Section 4.1) on the test set.
    metrics = {
        "maximum_frequency_accuracy": baseline_accuracy(test, maximum_frequency),
        "exclusive_frequency_accuracy": baseline_accuracy(test, exclusive_frequency),
    }
    metrics["exclusive_minus_maximum_frequency"] = (
        metrics["exclusive_frequency_accuracy"] - metrics["maximum_frequency_accuracy"]
    )

    # 3. The readers.
    curves: dict[str, list[float]] = {}
    for name in cfg.readers:
        model, curves[name] = train_reader(name, train, vocabulary, cfg, device, rng)
        metrics[f"{name}_accuracy"] = accuracy(model, test, vocabulary, cfg, device)
    if "attentive" in cfg.readers:
        metrics["attentive_minus_exclusive_frequency"] = (
            metrics["attentive_accuracy"] - metrics["exclusive_frequency_accuracy"]
        )
        metrics["attentive_minus_maximum_frequency"] = (
            metrics["attentive_accuracy"] - metrics["maximum_frequency_accuracy"]
        )
        if "uniform" in cfg.readers:
            metrics["attentive_minus_uniform"] = metrics["attentive_accuracy"] - metrics["uniform_accuracy"]
        if "deep_lstm" in cfg.readers:
            metrics["attentive_minus_deep_lstm"] = (
                metrics["attentive_accuracy"] - metrics["deep_lstm_accuracy"]
            )

    example = test[0]
    details = {
        "train_queries": len(train),
        "test_queries": len(test),
        "vocabulary_size": len(vocabulary),
        "mean_document_tokens": sum(len(e.document) for e in test) / len(test),
        "mean_candidates": sum(len(e.candidates) for e in test) / len(test),
        "chance_accuracy": 100.0 * sum(1 / len(e.candidates) for e in test) / len(test),
        "example": {
            "document": " ".join(example.document),
            "query": " ".join(example.query),
            "answer": example.answer,
            "names": dict(example.names),
        },
    }
    figures = {"training_loss": _loss_figure(curves)} if any(curves.values()) else {}
    notes = [
        "No CNN/Daily Mail here: documents are runs of sentences of one WikiText-2 paragraph and each "
        "summary is one of the document's own sentences (so the query's sentence is in the document; "
        "CNN's bullets paraphrase the article).",
        "Entities come from a capitalisation heuristic (aicanon.language.cloze.detect_entities), not "
        "the paper's NER and coreference system.",
        "Training queries come from WikiText-2's valid.txt, test queries from test.txt "
        "(train.txt is not staged).",
    ]
    if cfg.scale == "quick":
        notes.append(
            f"quick: {len(train)} training and {len(test)} test queries of {cfg.max_document_tokens}-token "
            f"documents, readers of {cfg.hidden_size} units trained {cfg.epochs} epochs with "
            f"{cfg.optimizer}. "
            "Gap: the Attentive Reader beats maximum frequency and the Deep LSTM Reader but not exclusive "
            "frequency, which our construction makes strong (the query's sentence is in its document)."
        )
    if cfg.attention == "uniform":
        notes.append("attention='uniform': the Attentive Reader attended uniformly (ablation).")
    if not cfg.train:
        notes.append("train=False: the readers were evaluated untrained (ablation).")
    return Result(metrics=metrics, figures=figures, details=details, notes=notes)
