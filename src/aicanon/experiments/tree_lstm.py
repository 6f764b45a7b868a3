"""Tree-LSTM sentiment classification on the Stanford Sentiment Treebank (Tai, Socher & Manning,
ACL 2015, Section 5.1, Table 2).

The paper's protocol, per task (fine-grained: 5 classes; binary: negative / positive):

1. Read the SST parse trees (binarised constituency trees with a sentiment 0-4 at every node:
   :func:`aicanon.datasets.sst.load_sst_trees`). For the binary task the sentences whose root is
   neutral are dropped from every split and node labels become negative / neutral / positive (the
   authors' code trains 3 classes and predicts the more likely of negative and positive).
2. Train the Constituency Tree-LSTM (the N-ary Tree-LSTM with N = 2, memory 150) with a softmax
   at every node, the cost being the negative log-likelihood of every labelled node (Section 5.1);
   AdaGrad at learning rate 0.05, minibatches of 25 trees, L2 1e-4, dropout 0.5 before the
   softmax; the word vectors (300-d GloVe in the paper) are updated by plain gradient steps at
   learning rate 0.1. The paper writes the cost as a mean over nodes (1/m); the authors' code, for
   which these step sizes were chosen, sums each tree's node losses and averages over the trees
   (``loss_reduction="tree"``, the full configuration's).
3. Train the sequential baseline, a one-layer LSTM (memory 168: about as many parameters) over the
   words, on the sentence (root) labels, in the same way.
4. Keep each model's epoch with the best development accuracy; report the root (sentence)
   accuracy on the test set: 2,210 sentences fine-grained, 1,821 binary.

Table 2: Constituency Tree-LSTM with tuned GloVe vectors 51.0 % fine-grained, 88.0 % binary (these
two confirmed through tables that cite the paper); LSTM 46.4 % / 84.9 % and the random-vector
Constituency Tree-LSTM 43.9 % / 82.0 % (unverified: the paper's table text could not be retrieved
here). The point of the comparison: the tree model, which composes
phrases along the parse and learns from every phrase's label, beats the sequence model.

Departures (stated in every result's notes):

* No GloVe vectors are staged: the words start as random vectors (uniform +-0.05, as the authors'
  code initialises words GloVe lacks) and are learned. ``glove_path`` accepts a GloVe text file
  (``word v1 ... vD`` per line) for the paper's setting. Table 2 also reports the random-vector
  Constituency Tree-LSTM, which is the row our full run compares with.
* Quick scale: the Tree-LSTM and the LSTM are smaller (64-d words, memory 64 / 72), train on the
  2,295 training sentences of at most 12 words for 8 epochs, with the per-node mean loss (the
  LSTM's: per sentence) and larger steps (AdaGrad 0.1, word vectors 10: random vectors must move
  far in few steps), and the binary prediction comes from the fine-grained model (positive when
  P(3) + P(4) > P(0) + P(1)) instead of a second, 3-class model. Both models get exactly the same
  data, optimiser, steps and epochs.
* The N-ary cell is Eq. 9-14 as written (inputs at the leaves, zero input at inner nodes); the
  authors' code uses a separate leaf transform (see :mod:`aicanon.language.tree_lstm`).

Cost of ``Config.full()`` (10 epochs of the full training set, both tasks, both models, 5 seeds):
a training minibatch of 25 trees at the paper's sizes (300-d words, memory 150) takes about 65 ms
forward + backward on one free CPU core (``benchmarks/bench_tree_lstm.py``), so a Tree-LSTM epoch
(342 minibatches) is about 25 s and, with the LSTM and the evaluations, one seed about 10 epochs x 2
tasks x 40 s = 15 min of one core; the 5 seeds about 1.2 h. On a GPU a minibatch is a few hundred
small kernels (about 20 levels), some 5-10 ms, so a seed takes a few minutes. The full run
checkpoints each training after every epoch (``checkpoint_every``: weights, optimisers, the best dev
epoch's weights, the curves, the shuffling generator and the RNGs; under ``<results>/_checkpoints/
tree-lstm``): a killed run restores the trainings it had finished and resumes the interrupted one at
its last epoch, ending as the uninterrupted run would; the checkpoints are removed when the seed is
done.
"""

from __future__ import annotations

import copy
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from aicanon.core import Claim, ExperimentConfig, Result, seed, select_device, track
from aicanon.core.checkpoint import LoopCheckpoints
from aicanon.core.checks import check_choice, check_float, check_int, check_probability
from aicanon.core.results import checkpoint_folder
from aicanon.datasets.sst import SSTTree, load_sst_trees
from aicanon.datasets.vocabulary import Vocabulary, pad_sequences
from aicanon.language.tree_lstm import (
    EncodedTree,
    LSTMSentiment,
    TreeLSTMSentiment,
    batch_trees,
    encode_tree,
    sentiment_loss,
)


@dataclass
class Config(ExperimentConfig):
    train_trees: int = 0
    """Training trees used (the shortest ones first when ``max_train_words`` cuts); 0: all 8,544."""
    max_train_words: int = 0
    """Keep only training sentences of at most this many words (0: no limit)."""
    tasks: tuple[str, ...] = ("fine", "binary")
    """``fine`` (5 classes) and/or ``binary``; each trains its own models unless ``binary_from_fine``."""
    binary_from_fine: bool = False
    """Read the binary prediction off the fine-grained model (P(3)+P(4) vs P(0)+P(1)) instead of
    training a second model on the binary task (the paper trains one per task)."""
    cell: str = "nary"
    """``nary``: the Constituency (binary N-ary) Tree-LSTM of Table 2; ``childsum``: Child-Sum."""
    supervision: str = "nodes"
    """``nodes``: the loss covers every node's label (Section 5.1); ``root``: the sentence label only
    (ablation)."""
    loss_reduction: str = "tree"
    """``tree``: node losses summed per tree, averaged over the trees (the authors' code, whose
    learning rates and L2 are ours); ``mean``: averaged over all nodes (Section 5.1's 1/m)."""
    embedding_dim: int = 300
    """Word vector size (300: the paper's GloVe vectors)."""
    hidden_size: int = 150
    """Tree-LSTM memory dimension (150 for the Constituency Tree-LSTM, Table 1)."""
    lstm_hidden_size: int = 168
    """LSTM baseline memory dimension (168, Table 1: about the Tree-LSTM's parameter count)."""
    lstm_baseline: bool = True
    """Also train the sequential LSTM on the same data (metrics ``lstm_*``)."""
    epochs: int = 10
    """Training epochs (the authors' script's default); 0 evaluates the untrained models."""
    batch_size: int = 25
    """Trees (sentences) per minibatch (25)."""
    learning_rate: float = 0.05
    """AdaGrad learning rate of the model's weights (0.05)."""
    embedding_learning_rate: float = 0.1
    """Plain gradient-step learning rate of the word vectors (0.1)."""
    weight_decay: float = 1e-4
    """L2 strength on the weights except the word vectors (1e-4), added to the gradient."""
    classifier_dropout: float = 0.5
    """Dropout on h before the softmax (0.5)."""
    embedding_dropout: float = 0.0
    """Dropout on the word vectors (the paper uses none)."""
    lowercase: bool = False
    """Lowercase the words (the paper keeps case: GloVe 840B is cased)."""
    select_on_dev: bool = True
    """Keep the epoch with the best development accuracy (the authors' script), else the last."""
    glove_path: str | None = None
    """A GloVe text file (``word v1 ... vD`` per line) to initialise the word vectors; None: random."""
    eval_trees: int = 0
    """Evaluate on the first this many dev and test trees (0: all; only for smoke tests)."""
    eval_batch_size: int = 512
    """Trees per batch when evaluating (no effect on the numbers)."""
    checkpoint_every: int = 0
    """Epochs between checkpoints of each training under the results folder (0: none); a killed run
    resumes from the newest (module docstring)."""

    @classmethod
    def quick(cls) -> Config:
        # About 17 s of one core per seed: training sentences of at most 12 words (2,295 trees), smaller
        # models, 8 epochs, the binary numbers read off the fine-grained model; 2 seeds (every
        # threshold holds for each of seeds 0-2 alone; 2 keep the main job in budget). With random
        # word vectors and few steps the paper's step sizes barely move the words, so both models
        # take larger steps on a per-node (tree) / per-sentence (LSTM) mean loss.
        return cls(
            scale="quick",
            seeds=2,
            max_train_words=12,
            embedding_dim=64,
            hidden_size=64,
            lstm_hidden_size=72,
            epochs=8,
            loss_reduction="mean",
            learning_rate=0.1,
            embedding_learning_rate=10.0,
            binary_from_fine=True,
            threads=1,
        )

    @classmethod
    def full(cls) -> Config:
        # Table 2: both tasks, full training set, the paper's sizes and optimiser, mean of 5 runs.
        return cls(scale="full", seeds=5, checkpoint_every=1)


# Thresholds. Quick, from our CPU runs of seeds 0, 1, 2 (Tree-LSTM fine 39.0 / 38.7 / 37.9, binary
# 76.6 / 76.6 / 76.0; LSTM fine 33.1 / 31.7 / 34.2, binary 58.5 / 66.1 / 65.6; advantages fine
# 5.8 / 7.0 / 3.7, binary 18.0 / 10.4 / 10.4): each threshold sits below the worst of the three seeds
# (the claims are checked on their mean: 38.5, 76.4, 5.5, 12.9), so one seed passes too. The Tree-LSTM
# trained on root labels alone (seeds 0, 1: fine 32.1 / 30.2, advantage -1.0 / -1.4) and the untrained
# one (fine 12.7, binary 50.1) fail. Full: random word vectors, so the comparable row of Table 2 is the
# random-vector Constituency Tree-LSTM (43.9 / 82.0); thresholds 42 / 80 and "the tree model at least
# matches the LSTM" are our expectation, not yet checked by a full run.
CLAIMS = [
    Claim(
        metric="test_fine_accuracy",
        description="Constituency Tree-LSTM root accuracy, fine-grained (5 classes), SST test",
        paper=51.0,
        source="Table 2, Constituency Tree-LSTM, GloVe vectors tuned (51.0); "
        "randomly initialised vectors: 43.9 (unverified)",
        quick=36.5,
        full=42.0,
        unit="%",
    ),
    Claim(
        metric="test_binary_accuracy",
        description="Constituency Tree-LSTM root accuracy, binary, SST test (neutral sentences dropped)",
        paper=88.0,
        source="Table 2, Constituency Tree-LSTM, GloVe vectors tuned (88.0); "
        "randomly initialised vectors: 82.0 (unverified)",
        quick=73.0,
        full=80.0,
        unit="%",
    ),
    Claim(
        metric="lstm_test_fine_accuracy",
        description="sequential LSTM root accuracy, fine-grained, SST test (same data and training)",
        paper=46.4,
        source="Table 2, LSTM (46.4) (unverified)",
        unit="%",
    ),
    Claim(
        metric="lstm_test_binary_accuracy",
        description="sequential LSTM root accuracy, binary, SST test (same data and training)",
        paper=84.9,
        source="Table 2, LSTM (84.9) (unverified)",
        unit="%",
    ),
    Claim(
        metric="fine_advantage",
        description="Tree-LSTM minus LSTM, fine-grained test accuracy (points)",
        paper=4.6,
        source="Table 2: 51.0 - 46.4 (46.4 unverified)",
        quick=2.0,
        full=0.0,
        unit="points",
    ),
    Claim(
        metric="binary_advantage",
        description="Tree-LSTM minus LSTM, binary test accuracy (points)",
        paper=3.1,
        source="Table 2: 88.0 - 84.9 (84.9 unverified)",
        quick=5.0,
        full=0.0,
        unit="points",
    ),
]


# ---------------------------------------------------------------------------------------------
# Data


@dataclass
class Split:
    """One split of one task: the encoded trees, the sentences as ids, the root labels."""

    trees: list[EncodedTree]
    tokens: list[torch.Tensor]
    labels: np.ndarray


def task_labels(labels: tuple[int, ...], task: str) -> list[int]:
    """Node labels of ``task``: fine keeps 0-4; binary maps 0-1 / 2 / 3-4 to 0 / 1 / 2 (the authors'
    code trains these 3 classes and compares only negative with positive)."""
    if task == "fine":
        return list(labels)
    return [0 if y < 2 else (1 if y == 2 else 2) for y in labels]


def make_split(trees: list[SSTTree], vocabulary: Vocabulary, task: str, lowercase: bool) -> Split:
    if task == "binary":
        trees = [t for t in trees if t.label != 2]
    encoded, tokens = [], []
    for tree in trees:
        words = [None if w is None else (w.lower() if lowercase else w) for w in tree.words]
        ids = [-1 if w is None else vocabulary.index(w) for w in words]
        encoded.append(encode_tree(tree.children, ids, task_labels(tree.labels, task)))
        tokens.append(torch.tensor([i for i in ids if i >= 0], dtype=torch.long))
    roots = np.array([task_labels((t.label,), task)[0] for t in trees], dtype=np.int64)
    return Split(encoded, tokens, roots)


def training_trees(cfg: Config) -> list[SSTTree]:
    """The training subset: sentences of at most ``max_train_words`` words, at most ``train_trees``."""
    trees = load_sst_trees("train")
    if cfg.max_train_words:
        trees = [t for t in trees if len(t.tokens) <= cfg.max_train_words]
    if cfg.train_trees:
        trees = trees[: cfg.train_trees]
    if not trees:
        raise ValueError("no training tree is left: raise max_train_words or train_trees")
    return trees


def load_glove(path: str | Path, vocabulary: Vocabulary, dim: int) -> tuple[torch.Tensor, int]:
    """Rows of a GloVe text file for the vocabulary's words (others stay random); returns the
    vectors found and how many words had one."""
    table = torch.empty(len(vocabulary), dim).uniform_(-0.05, 0.05)
    found = 0
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            word, _, rest = line.rstrip("\n").partition(" ")
            if word in vocabulary and vocabulary.index(word) != vocabulary.unk_id:
                values = rest.split(" ")
                if len(values) != dim:
                    raise ValueError(
                        f"{path}, line {number}: expected {dim} values for {word!r}, got {len(values)}"
                    )
                table[vocabulary.index(word)] = torch.tensor([float(v) for v in values])
                found += 1
    return table, found


# ---------------------------------------------------------------------------------------------
# Training and evaluation


def make_optimizers(model: nn.Module, cfg: Config) -> list[torch.optim.Optimizer]:
    """AdaGrad (with L2 as weight decay) on the weights, plain SGD on the word vectors (Section 5.3)."""
    weights = [p for name, p in model.named_parameters() if not name.startswith("embedding.")]
    return [
        torch.optim.Adagrad(weights, lr=cfg.learning_rate, weight_decay=cfg.weight_decay),
        torch.optim.SGD(model.embedding.parameters(), lr=cfg.embedding_learning_rate),
    ]


def root_log_probs(model: nn.Module, split: Split, kind: str, batch_size: int, device) -> torch.Tensor:
    """Log-probabilities of every sentence's root ``[sentences, C]`` (eval mode)."""
    model.eval()
    outputs = []
    with torch.no_grad():
        for start in range(0, len(split.trees), batch_size):
            if kind == "tree":
                batch = batch_trees(split.trees[start : start + batch_size]).to(device)
                outputs.append(model(batch)[batch.roots].cpu())
            else:
                tokens, lengths = pad_sequences(split.tokens[start : start + batch_size], 0)
                outputs.append(model(tokens.to(device), lengths.to(device)).cpu())
    return torch.cat(outputs)


def accuracy(log_probs: torch.Tensor, labels: np.ndarray, task: str) -> float:
    """Root accuracy (%): argmax for fine; for binary, negative vs positive only (class 0 vs 2)."""
    if task == "fine":
        predictions = log_probs.argmax(1).numpy()
    else:
        predictions = np.where(log_probs[:, 0] > log_probs[:, 2], 0, 2)
    return float(100 * (predictions == labels).mean())


def binary_from_fine(log_probs: torch.Tensor, labels: np.ndarray) -> float:
    """Binary accuracy (%) of a fine-grained model on the non-neutral sentences: positive when
    P(3) + P(4) > P(0) + P(1)."""
    probs = log_probs.exp()
    keep = labels != 2
    positive = (probs[:, 3] + probs[:, 4] > probs[:, 0] + probs[:, 1]).numpy()
    return float(100 * (positive[keep] == (labels[keep] > 2)).mean())


def _checkpoint(cfg: Config, kind: str, task: str) -> Path | None:
    """Where one training's checkpoints go (None when the config does not checkpoint)."""
    if not cfg.checkpoint_every:
        return None
    return checkpoint_folder("tree-lstm", {**cfg.to_dict(), "model": kind, "task": task})


def train_model(
    kind: str, task: str, data: dict[str, Split], vocabulary: Vocabulary, cfg: Config, device, generator
) -> dict:
    """Train one model (``kind`` tree or lstm) on one task; keep its best dev epoch."""
    num_classes = 5 if task == "fine" else 3
    common = dict(
        vocab_size=len(vocabulary),
        num_classes=num_classes,
        embedding_dim=cfg.embedding_dim,
        embedding_dropout=cfg.embedding_dropout,
        classifier_dropout=cfg.classifier_dropout,
    )
    if kind == "tree":
        model = TreeLSTMSentiment(hidden_size=cfg.hidden_size, cell=cfg.cell, **common)
    else:
        model = LSTMSentiment(hidden_size=cfg.lstm_hidden_size, **common)
    if cfg.glove_path:
        vectors, _ = load_glove(cfg.glove_path, vocabulary, cfg.embedding_dim)
        with torch.no_grad():
            model.embedding.weight.copy_(vectors)
    model.to(device)
    optimizers = make_optimizers(model, cfg)
    train, dev = data["train"], data["dev"]
    best = {"dev": -1.0, "state": copy.deepcopy(model.state_dict()), "epoch": 0}
    curve = {"loss": [], "dev": []}
    checkpoints = LoopCheckpoints(
        _checkpoint(cfg, kind, task),
        cfg.checkpoint_every,
        config={**cfg.to_dict(), "model": kind, "task": task},
        model=model,
        **{f"optimizer{k}": optimizer for k, optimizer in enumerate(optimizers)},
        order=generator,
        best=best,
        curve=curve,
    )
    start = checkpoints.resume()  # epochs a killed run had finished (0 without a checkpoint)
    for epoch in track(range(start + 1, cfg.epochs + 1), f"{kind} {task}", total=cfg.epochs - start):
        model.train()
        order = torch.randperm(len(train.trees), generator=generator).tolist()
        losses = []
        for start in range(0, len(order), cfg.batch_size):
            chosen = order[start : start + cfg.batch_size]
            if kind == "tree":
                batch = batch_trees([train.trees[i] for i in chosen]).to(device)
                loss = sentiment_loss(model(batch), batch, cfg.supervision, cfg.loss_reduction)
            else:
                tokens, lengths = pad_sequences([train.tokens[i] for i in chosen], 0)
                labels = torch.from_numpy(train.labels[chosen]).to(device)
                loss = nn.functional.nll_loss(model(tokens.to(device), lengths.to(device)), labels)
            for optimizer in optimizers:
                optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for optimizer in optimizers:
                optimizer.step()
            losses.append(loss.item())
        dev_accuracy = accuracy(
            root_log_probs(model, dev, kind, cfg.eval_batch_size, device), dev.labels, task
        )
        curve["loss"].append(float(np.mean(losses)))
        curve["dev"].append(dev_accuracy)
        if not cfg.select_on_dev or dev_accuracy > best["dev"]:
            best.update(dev=dev_accuracy, state=copy.deepcopy(model.state_dict()), epoch=epoch)
        checkpoints.done(epoch, cfg.epochs)
    model.load_state_dict(best["state"])
    return {"model": model, "epoch": best["epoch"], "curve": curve}


def check_config(cfg: Config) -> None:
    check_int("train_trees", cfg.train_trees, 0)
    check_int("max_train_words", cfg.max_train_words, 0)
    check_int("eval_trees", cfg.eval_trees, 0)
    if not cfg.tasks or any(t not in ("fine", "binary") for t in cfg.tasks):
        raise ValueError(f"tasks must name fine and/or binary, got {cfg.tasks!r}")
    if cfg.binary_from_fine and "fine" not in cfg.tasks:
        raise ValueError(f"binary_from_fine needs the fine task in tasks, got tasks={cfg.tasks!r}")
    check_choice("cell", cfg.cell, ("nary", "childsum"))
    check_choice("supervision", cfg.supervision, ("nodes", "root"))
    check_choice("loss_reduction", cfg.loss_reduction, ("tree", "mean"))
    for name in ("embedding_dim", "hidden_size", "lstm_hidden_size", "batch_size", "eval_batch_size"):
        check_int(name, getattr(cfg, name))
    check_int("epochs", cfg.epochs, 0)
    check_int("checkpoint_every", cfg.checkpoint_every, 0)
    check_float("learning_rate", cfg.learning_rate, 0, min_inclusive=False, finite=True)
    check_float("embedding_learning_rate", cfg.embedding_learning_rate, 0, finite=True)
    check_float("weight_decay", cfg.weight_decay, 0, finite=True)
    check_probability("classifier_dropout", cfg.classifier_dropout, allow_one=False)
    check_probability("embedding_dropout", cfg.embedding_dropout, allow_one=False)
    if cfg.glove_path is not None and not Path(cfg.glove_path).is_file():
        raise ValueError(f"glove_path must name a GloVe text file, got {cfg.glove_path!r} (no such file)")


def _curve_figure(runs: dict[str, dict]) -> Figure:
    figure = Figure(figsize=(10, 4), layout="constrained")
    loss_axis, dev_axis = figure.subplots(1, 2)
    for name, run in runs.items():
        epochs = np.arange(1, len(run["curve"]["loss"]) + 1)
        loss_axis.plot(epochs, run["curve"]["loss"], marker="o", label=name)
        dev_axis.plot(epochs, run["curve"]["dev"], marker="o", label=name)
    loss_axis.set(xlabel="epoch", ylabel="training NLL (tree: per node; LSTM: per sentence)", title="loss")
    dev_axis.set(xlabel="epoch", ylabel="dev root accuracy (%)", title="development accuracy")
    loss_axis.legend(fontsize="small")
    dev_axis.legend(fontsize="small")
    return figure


def run(cfg: Config) -> Result:
    check_config(cfg)
    seed(cfg.seed)
    device = select_device(cfg.device)
    generator = torch.Generator().manual_seed(cfg.seed)

    train_trees = training_trees(cfg)
    words = (t.tokens for t in train_trees)
    vocabulary = Vocabulary.build([[w.lower() for w in s] for s in words] if cfg.lowercase else words)
    limit = cfg.eval_trees or None
    trees = {
        "train": train_trees,
        "dev": load_sst_trees("dev")[:limit],
        "test": load_sst_trees("test")[:limit],
    }
    tasks = [t for t in cfg.tasks if not (t == "binary" and cfg.binary_from_fine)]
    kinds = ["tree", "lstm"] if cfg.lstm_baseline else ["tree"]

    metrics: dict[str, float] = {}
    runs: dict[str, dict] = {}
    details: dict = {"train_trees": len(train_trees), "vocabulary": len(vocabulary)}
    for task in tasks:
        data = {name: make_split(split, vocabulary, task, cfg.lowercase) for name, split in trees.items()}
        for kind in kinds:
            outcome = train_model(kind, task, data, vocabulary, cfg, device, generator)
            prefix = "" if kind == "tree" else "lstm_"
            runs[f"{kind} {task}"] = outcome
            for split in ("dev", "test"):
                log_probs = root_log_probs(outcome["model"], data[split], kind, cfg.eval_batch_size, device)
                metrics[f"{prefix}{split}_{task}_accuracy"] = accuracy(log_probs, data[split].labels, task)
                if task == "fine" and cfg.binary_from_fine and "binary" in cfg.tasks:
                    metrics[f"{prefix}{split}_binary_accuracy"] = binary_from_fine(
                        log_probs, data[split].labels
                    )
            details[f"{kind}_{task}"] = {
                "kept_epoch": outcome["epoch"],
                "parameters": sum(
                    p.numel() for n, p in outcome["model"].named_parameters() if "embedding" not in n
                ),
                "dev_curve": outcome["curve"]["dev"],
            }
    for task in tasks:  # every training evaluated: nothing left to resume
        for kind in kinds:
            if (folder := _checkpoint(cfg, kind, task)) is not None:
                shutil.rmtree(folder, ignore_errors=True)
    if cfg.lstm_baseline:
        for task in cfg.tasks:
            metrics[f"{task}_advantage"] = (
                metrics[f"test_{task}_accuracy"] - metrics[f"lstm_test_{task}_accuracy"]
            )

    notes = [
        "Random word vectors (no GloVe vectors are staged): Table 2's headline rows use tuned GloVe "
        "vectors; its random-vector Constituency Tree-LSTM row reads 43.9 / 82.0 (unverified).",
        "N-ary cell as Eq. 9-14 (zero input at inner nodes); the authors' code has its own leaf transform.",
    ]
    if cfg.binary_from_fine and "binary" in cfg.tasks:
        notes.append(
            "Binary accuracy read off the fine-grained model (P(3)+P(4) > P(0)+P(1)); the paper trains a "
            "separate binary model."
        )
    if cfg.max_train_words or cfg.train_trees:
        notes.append(
            f"Trained on {len(train_trees)} of the 8,544 training trees"
            + (f" (sentences of at most {cfg.max_train_words} words)" if cfg.max_train_words else "")
            + "; dev and test are complete."
        )
    if cfg.supervision == "root":
        notes.append("supervision=root: the Tree-LSTM learned from the sentence labels only (ablation).")
    if cfg.epochs == 0:
        notes.append("epochs=0: untrained models (ablation).")
    if cfg.eval_trees:
        notes.append(
            f"eval_trees={cfg.eval_trees}: only the first dev and test trees were evaluated (smoke test)."
        )
    return Result(metrics=metrics, figures={"training": _curve_figure(runs)}, details=details, notes=notes)
