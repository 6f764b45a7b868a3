"""Teaching Machines to Read and Comprehend (Hermann et al., NeurIPS 2015): cloze reading on WikiText-2.

The paper's protocol, at our scale:

1. **Build an anonymised cloze set** (Section 3, :mod:`aicanon.language.cloze`). The paper pairs
   CNN/Daily Mail articles with their bullet-point summaries; those corpora are not staged here, so
   we build the same kind of example from the staged WikiText-2 articles: a *summary* is one
   sentence of an article, its *document* is the sentences around it in the same article (at most
   ``max_document_tokens`` tokens) **without the summary itself** (a CNN bullet point is not in its
   article either), every entity mention of the summary whose entity is mentioned elsewhere in the
   document yields one query (the mention replaced by ``@placeholder``), and every entity is
   anonymised with a per-example random permutation of ``@entity0 .. @entity{N-1}``. Training
   examples come from ``valid.txt``, test examples from ``test.txt`` (different articles).
2. **Frequency baselines** (Section 4.1): maximum frequency (the document's most frequent entity)
   and exclusive frequency (the most frequent entity that the query does not mention).
3. **Train the neural readers** (Section 4.2, :mod:`aicanon.language.attentive_reader`): the
   Attentive Reader, the Deep LSTM Reader and (full config) the Impatient and Uniform Readers, with
   cross-entropy over the entities of the document, and measure test accuracy.

Table 5 (CNN test): maximum frequency 33.2, exclusive frequency 39.3, Deep LSTM Reader 57.0,
Uniform Reader 39.4, Attentive Reader 63.0, Impatient Reader 63.8. (63.0 and 63.8 were confirmed
against paperswithcode's record of the paper; the paper's table itself was not reachable from here,
so the other numbers are marked unverified in the claims.)

**What the quick run shows, and its gap.** Until this construction, each query's own sentence was
part of its document, which made exclusive frequency far stronger (62-66 %) than on CNN (39.3):
the answer was usually the one entity of that sentence the query did not mention. With the
summary excluded, the baselines come closer to Table 5's: on 60-token documents (about 49 tokens,
4.3 candidates, chance 33 %), maximum frequency scores 42.7 % and exclusive frequency 44.3 % (seed
0; seeds 0-2 in the CLAIMS comment). Maximum frequency sits 10-13 points above chance; exclusive
frequency is within 4 points of it, above it on seed 0 only (paper: 6.1 above): without
coreference our queries rarely mention the document's most frequent entity.

The readers do not reach these baselines at a quick budget. Development runs on seed 0 (all 3409
training queries of valid.txt, 1000 test queries, Adam 3e-3, batch 32): at 64 units, 3 epochs
(about 320 steps, 275 s of CPU for three readers) the Attentive Reader scored 38.4 %, the Uniform
Reader 35.6 % and the Deep LSTM Reader 32.1 %: the Table 5 orderings among the readers (Attentive >
Uniform by 2.8, Attentive > Deep LSTM by 6.3 points) appear, but all three stay below maximum
frequency (-4.3) and exclusive frequency (-5.9). Seeds 1 and 2 (Attentive and Deep LSTM only, same
settings): Attentive 34.6 and 36.2 %, Deep LSTM 28.6 and 30.2 %, chance 30.2 and 31.5 %, maximum
frequency 40.3 and 44.6 %: Attentive > Deep LSTM by 6.0 points on both, and the Deep LSTM Reader is
still at chance. At 32 units (learning rate 3e-3 or 1e-2) the Attentive Reader stayed within 3
points of chance after 3 epochs, and so did it at 40-token documents after 4 epochs of batch 16.
The quick configuration therefore trains the Attentive Reader for one epoch at 32 units (about 110
steps, about 20 s of CPU) and claims only a property of the cloze set (maximum frequency beats
chance); every reader ordering of Table 5 (Attentive > exclusive > maximum frequency, Attentive >
Deep LSTM, Attentive > Uniform) is reported at quick scale and claimed at full scale only: a gap.
Closing it at quick scale would take a reader that learns from a few thousand queries in a few
hundred steps; the paper trained on 90k-380k documents, and in our earlier runs the additive
attention of Eq. 5 left its initial plateau slowly (at 120 tokens and 48 markers, 750 steps left
both readers at chance).

Full configuration (``Config.full()``): every example of both files with 120-token documents and 48
markers (5302 training and 5257 test queries, documents of about 105 tokens with about 8
candidates; chance 17.6 %, maximum frequency 34.5 %, exclusive frequency 33.3 % on test), model
sizes near the paper's (unverified: 256 hidden units per direction, embeddings 256; dropout 0.2;
RMSProp), 30 epochs of each of the four readers. Cost estimate (not run): about 166 steps of batch
32 per epoch, so 5k steps per reader; a step of the 256-unit Attentive Reader on 120-token
documents takes roughly 10 ms on an H100 and 0.3 s on two CPU cores, the Impatient Reader (one
document pass per query token) about three times that: roughly 6 minutes on one GPU, 2-3 hours on
CPU. Whether 5k queries suffice for the readers to pass the frequency baselines is untested. The
full run checkpoints each reader after every epoch (``checkpoint_every``: weights, optimiser, the
shuffler of the data order, the loss curve and the RNGs; under ``<results>/_checkpoints/
attentive-reader``): a killed run restores the readers it had trained and resumes the interrupted one
at its last epoch, ending as the uninterrupted run would; the checkpoints are removed once the seed is
scored.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from matplotlib.figure import Figure
from torch import nn

from aicanon.core import Claim, ExperimentConfig, Result, seed, select_device, track
from aicanon.core.checkpoint import LoopCheckpoints
from aicanon.core.checks import check_choice, check_float, check_int, check_probability
from aicanon.core.data import fetch
from aicanon.core.results import checkpoint_folder
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
    """A document is the sentences around its summary (the summary excluded), at most this many tokens."""
    num_entity_ids: int = 16
    """Entity markers @entity0 .. @entity{N-1}; an example with more distinct entities is dropped."""
    train_examples: int = 0
    """Training queries drawn (at random) from the training file; 0 takes all of them (about 3400 for
    60-token documents)."""
    test_examples: int = 1000
    """Test queries drawn from the test file; 0 takes all of them."""
    min_count: int = 5
    """Words seen fewer times in the training documents and queries map to <unk>."""
    readers: tuple[str, ...] = ("attentive",)
    """Readers to train, among "attentive", "deep_lstm", "impatient", "uniform" (Table 5's rows)."""
    embedding_size: int = 32
    """Word embedding size (shared by document and query)."""
    hidden_size: int = 32
    """LSTM units (per direction for the attentive readers, per layer for the Deep LSTM Reader)."""
    attention_size: int = 32
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
    epochs: int = 1
    """Passes over the training set per reader."""
    grad_clip: float = 5.0
    """Gradient norm clipping (0: none)."""
    train: bool = True
    """False evaluates the readers untrained (the ablation that must fail)."""
    attention: str = "additive"
    """The Attentive Reader's attention: "additive" (Eq. 5-6) or "uniform" (s(t) = 1/|d|: the ablation)."""
    checkpoint_every: int = 0
    """Epochs between checkpoints of each reader's training under the results folder (0: none); a
    killed run resumes from the newest (module docstring)."""

    @classmethod
    def quick(cls) -> Config:
        # One seed, one epoch of the Attentive Reader at 32 units (about 20 s of CPU); seeds 1 and 2
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
            checkpoint_every=1,
        )


# Quick thresholds. With the summary excluded from its document, no reader of ours beats the
# frequency baselines at a quick budget, so every reader ordering of Table 5 is reported at quick
# scale but claimed at full scale only (where our thresholds restate Table 5's ordering and no run
# of ours has checked them yet): a gap, stated in the module docstring with the development runs.
# The one quick claim is about the cloze set: maximum frequency beats chance (1 / the number of
# candidates) by 9.9, 10.1 and 13.1 points on seeds 0, 1, 2 (threshold 5.0), as Table 5's frequency
# baselines sit far above CNN's chance level (about 4 % with about 26 entities per document; the
# entity count is unverified). Exclusive minus maximum frequency is +1.6, -1.1 and -3.5 points on
# seeds 0, 1, 2 (paper: +6.1): reported, not claimed. The quick reader (one epoch) stays at chance
# (35.3, 27.1, 32.8 % against chance 32.8, 30.2, 31.5 %), 7-13 points below maximum frequency.
CLAIMS = [
    Claim(
        metric="maximum_frequency_minus_chance",
        description="maximum-frequency accuracy minus chance (1 / candidates) on our cloze set (points)",
        paper=None,
        source="Table 5, CNN test: maximum frequency 33.2 against a chance level of a few percent "
        "(unverified: about 26 entities per CNN document)",
        quick=5.0,
        full=5.0,
        unit="points",
    ),
    Claim(
        metric="attentive_minus_maximum_frequency",
        description="Attentive Reader accuracy minus the maximum-frequency baseline's (points)",
        paper=29.8,
        source="Table 5, CNN test: Attentive Reader 63.0 - maximum frequency 33.2 (33.2 unverified)",
        # The paper's ordering, kept at quick scale as a target: it FAILS there today (the reader stays
        # near chance within the CPU budget; see the module docstring). A gap, not a lowered claim.
        quick=0.0,
        full=2.0,
        unit="points",
    ),
    Claim(
        metric="attentive_minus_deep_lstm",
        description="Attentive Reader accuracy minus the Deep LSTM Reader's (points)",
        paper=6.0,
        source="Table 5, CNN test: Attentive Reader 63.0 - Deep LSTM Reader 57.0 (57.0 unverified)",
        quick=None,
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
        description="exclusive frequency minus maximum frequency on our cloze set (points)",
        paper=6.1,
        source="Table 5, CNN test: 39.3 - 33.2 (unverified)",
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
    check_int("checkpoint_every", cfg.checkpoint_every, 0)
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
    """``(document, summary, entities)`` triples: every sentence of an article is a summary, and its
    document is the sentences around it in the same article, *without the summary itself*: the
    window grows one sentence at a time, alternately after and before the summary, while it fits
    in ``max_tokens`` tokens. The summary is therefore never in its document (as a CNN bullet point
    is not in its article), and a query only survives when its answer is mentioned elsewhere in the
    window (:func:`~aicanon.language.cloze.anonymise` drops the others). The entities are detected
    once per article."""
    triples = []
    for article in articles:
        sentences = [s for paragraph in article for s in split_sentences(paragraph)]
        entities = detect_entities(sentences)
        for i, summary in enumerate(sentences):
            low, high, total = i, i + 1, 0  # the window is sentences[low:high], the summary excluded
            grew = True
            while grew:
                grew = False
                for j in (high, low - 1):  # after, then before
                    if 0 <= j < len(sentences) and total + len(sentences[j]) <= max_tokens:
                        total += len(sentences[j])
                        low, high, grew = min(low, j), max(high, j + 1), True
            document = [t for j in range(low, high) if j != i for t in sentences[j]]
            if document:
                triples.append((document, summary, entities))
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


def _checkpoint(cfg: Config, name: str) -> Path | None:
    """Where one reader's training checkpoints go (None when the config does not checkpoint)."""
    if not cfg.checkpoint_every:
        return None
    return checkpoint_folder("attentive-reader", {**cfg.to_dict(), "reader": name})


def train_reader(
    name: str, train: list[ClozeExample], vocabulary: Vocabulary, cfg: Config, device, rng: random.Random
) -> tuple[nn.Module, list[float]]:
    """Train one reader: cross-entropy over the document's entities (p(a|d,q) restricted to the
    candidates), ``cfg.epochs`` passes over ``train`` (resumed from a checkpoint at an epoch's end
    when a killed run left one)."""
    model = make_reader(name, vocabulary, cfg).to(device)
    losses: list[float] = []
    if not cfg.train:
        return model, losses
    optimizer_class = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.RMSprop
    optimizer = optimizer_class(model.parameters(), lr=cfg.learning_rate)
    checkpoints = LoopCheckpoints(
        _checkpoint(cfg, name),
        cfg.checkpoint_every,
        config={**cfg.to_dict(), "reader": name},
        model=model,
        optimizer=optimizer,
        order=rng,
        losses=losses,
    )
    start = checkpoints.resume()
    per_epoch = -(-len(train) // cfg.batch_size)
    steps = (cfg.epochs - start) * per_epoch
    progress = iter(track(range(steps), f"{name} reader", total=steps))
    for epoch in range(start, cfg.epochs):
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
        checkpoints.done(epoch + 1, cfg.epochs)
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
    metrics["chance_accuracy"] = 100.0 * sum(1 / len(e.candidates) for e in test) / len(test)
    metrics["maximum_frequency_minus_chance"] = (
        metrics["maximum_frequency_accuracy"] - metrics["chance_accuracy"]
    )

    # 3. The readers.
    curves: dict[str, list[float]] = {}
    for name in cfg.readers:
        model, curves[name] = train_reader(name, train, vocabulary, cfg, device, rng)
        metrics[f"{name}_accuracy"] = accuracy(model, test, vocabulary, cfg, device)
    for name in cfg.readers:  # every reader trained and scored: nothing left to resume
        folder = _checkpoint(cfg, name)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
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
        "training_steps": {name: len(curve) for name, curve in curves.items()},
        "final_training_loss": {name: curve[-1] if curve else None for name, curve in curves.items()},
        "example": {
            "document": " ".join(example.document),
            "query": " ".join(example.query),
            "answer": example.answer,
            "names": dict(example.names),
        },
    }
    figures = {"training_loss": _loss_figure(curves)} if any(curves.values()) else {}
    notes = [
        "No CNN/Daily Mail here: each summary is a sentence of a WikiText-2 article and its document is "
        "the sentences around it, the summary itself excluded (as a CNN bullet point is not in its "
        "article); a query is kept only when its answer is mentioned elsewhere in the document.",
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
            "Gap: at this budget the reader stays near chance, below both frequency baselines; Table 5's "
            "reader orderings are claimed at full scale only."
        )
    if cfg.attention == "uniform":
        notes.append("attention='uniform': the Attentive Reader attended uniformly (ablation).")
    if not cfg.train:
        notes.append("train=False: the readers were evaluated untrained (ablation).")
    return Result(metrics=metrics, figures=figures, details=details, notes=notes)
