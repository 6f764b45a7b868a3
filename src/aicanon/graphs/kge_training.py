r"""Training knowledge-graph embeddings as in the ComplEx paper (Trouillon et al., 2016, Section 4).

The objective is the negative log-likelihood of the logistic model with L2 regularisation, Eq. (12):

    ``min_Theta  sum_{r(s,o) in Omega} log(1 + exp(-Y_rso phi(s, r, o; Theta))) + lambda ||Theta||_2^2``

with ``Y_rso = 1`` for true triples and ``-1`` for false ones. A knowledge base holds only true
triples, so false ones are generated (Section 4.2): for each true triple, ``eta`` negatives that
replace its subject *or* its object (each with probability 1/2) by an entity drawn uniformly at
random (:func:`corrupt`). Optimisation is stochastic gradient descent on mini-batches with AdaGrad
(Duchi et al., 2011) tuning the learning rate, initial rate 0.5 in the paper.

:func:`train_kge` is that trainer, for any :class:`aicanon.graphs.kge.KGEModel`. It also takes
explicitly labelled triples (the synthetic experiment of Section 4.1 observes both true and false
entries, so it needs no sampling) and the margin ranking loss that the paper's code uses for TransE
(``max(0, gamma - phi(pos) + mean_j phi(neg_j))``). It is written to be reused by any model whose
decoder scores triples, e.g. R-GCN's DistMult decoder.

Departures from the paper, and why:

* Mini-batches: the paper's code draws each batch of ``T / 100`` positives *with* replacement; we
  shuffle the training triples once per epoch and split them into batches (every triple seen once
  per epoch, the usual SGD epoch). ``batches_per_epoch=100`` reproduces the paper's batch size.
* The loss is averaged over the batch (positives and their negatives) and the regulariser is the
  model's ``penalty`` — the per-batch mean of squared embedding entries, summed over tables — both
  as in the paper's code, whose ``lambda`` grid was validated with that scaling (Eq. 12 sums).
* Gradients are clipped to norm ``max_grad_norm`` (1 in the paper's code, per parameter tensor,
  "to prevent gradient explosion") before the AdaGrad step.
* Negatives are not checked against the known triples (neither does the paper's code): a sampled
  "negative" can be a true triple, which happens with probability about ``degree / N``.
* Early stopping (the paper: filtered MRR on validation every 50 epochs, stop when it decreases):
  with ``validate`` given we evaluate every ``validate_every`` epochs, stop after ``patience``
  evaluations without improvement, and restore the best parameters (the paper's code keeps the
  last ones).
* No bf16 autocast on GPU: these models are embedding look-ups plus dot products, memory-bound,
  and bf16 scores would create spurious ties in the ranking evaluation.

**Checkpoint/resume.** With ``checkpoint_dir``, :func:`train_kge` saves (atomically, through
:func:`aicanon.core.checkpoint.save_checkpoint`) the model, AdaGrad's accumulators, the epoch, the
batch generator's and the global RNG states, the history and the best validated parameters every
``checkpoint_every`` epochs and at the end. A rerun with the same arguments continues from the newest
checkpoint and ends bit-identical to an uninterrupted run; one with other settings raises
:class:`~aicanon.core.checkpoint.CheckpointMismatch`.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from aicanon.core.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from aicanon.core.checks import check_float, check_int
from aicanon.graphs.kge import KGEModel, check_triples

__all__ = ["LOSSES", "TrainingHistory", "corrupt", "logistic_loss", "margin_loss", "train_kge"]

LOSSES = ("logistic", "margin")


def corrupt(
    triples: Tensor, num_entities: int, num_negatives: int, generator: torch.Generator | None = None
) -> Tensor:
    """``num_negatives`` corruptions of each triple: head or tail (probability 1/2 each) made random.

    Returns ``[num_negatives * B, 3]``; row ``j * B + i`` corrupts ``triples[i]`` (the layout of the
    paper's code, so ``negatives.view(num_negatives, B, 3)[:, i]`` are triple ``i``'s negatives).
    """
    if not isinstance(triples, Tensor) or triples.dim() != 2 or triples.size(1) != 3:
        raise ValueError(
            f"triples must be a [B, 3] tensor, got {getattr(triples, 'shape', type(triples).__name__)}"
        )
    if triples.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"triples must be an int64 (or int32) tensor, got {triples.dtype}")
    check_int("num_entities", num_entities)
    check_int("num_negatives", num_negatives, 0)
    batch = triples.size(0)
    negatives = triples.long().repeat(num_negatives, 1)
    total = negatives.size(0)
    entities = torch.randint(num_entities, (total,), generator=generator).to(triples.device)
    head_side = (torch.rand(total, generator=generator) < 0.5).to(triples.device)
    negatives[:, 0] = torch.where(head_side, entities, negatives[:, 0])
    negatives[:, 2] = torch.where(head_side, negatives[:, 2], entities)
    assert negatives.shape == (num_negatives * batch, 3)
    return negatives


def logistic_loss(scores: Tensor, labels: Tensor) -> Tensor:
    """Eq. (12)'s data term averaged: ``mean(log(1 + exp(-Y phi)))`` with labels ``Y`` in {-1, +1}."""
    if scores.shape != labels.shape:
        raise ValueError(
            f"labels must have the shape of scores {tuple(scores.shape)}, got {tuple(labels.shape)}"
        )
    return F.softplus(-labels.to(scores.dtype) * scores).mean()


def margin_loss(positive: Tensor, negative: Tensor, margin: float) -> Tensor:
    """``mean_i max(0, margin - phi(pos_i) + mean_j phi(neg_ij))``; ``negative`` is ``[B, eta]``."""
    if negative.dim() != 2 or negative.size(0) != positive.size(0):
        raise ValueError(
            f"negative must be [B, eta] with B = {positive.size(0)}, got {tuple(negative.shape)}"
        )
    return torch.relu(margin - positive + negative.mean(1)).mean()


@dataclass
class TrainingHistory:
    """What :func:`train_kge` did."""

    losses: list[float] = field(default_factory=list)
    """Mean training objective (loss + lambda * penalty) of each epoch."""
    validation: list[tuple[int, float]] = field(default_factory=list)
    """``(epoch, value)`` of each validation (higher is better)."""
    best_epoch: int | None = None
    best_value: float | None = None
    stopped_early: bool = False


def train_kge(
    model: KGEModel,
    triples: Tensor,
    labels: Tensor | None = None,
    *,
    epochs: int,
    batches_per_epoch: int | None = None,
    batch_size: int | None = None,
    num_negatives: int = 1,
    learning_rate: float = 0.5,
    regularization: float = 0.0,
    loss: str = "logistic",
    margin: float = 1.0,
    max_grad_norm: float | None = 1.0,
    generator: torch.Generator | None = None,
    validate: Callable[[KGEModel], float] | None = None,
    validate_every: int = 50,
    patience: int = 1,
    on_epoch: Callable[[int, float], None] | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 0,
    stop_after: int | None = None,
) -> TrainingHistory:
    """Train ``model`` on ``triples`` ``[T, 3]`` by AdaGrad on Eq. (12) (or the margin loss).

    Args:
        labels: ``[T]`` in {-1, +1}; ``None`` means every triple is true.
        epochs: passes over ``triples``.
        batches_per_epoch / batch_size: give exactly one (the paper: 100 batches per epoch).
        num_negatives: ``eta``, corruptions per triple (0 with labelled data).
        learning_rate: AdaGrad's initial rate (paper: 0.5).
        regularization: ``lambda`` of Eq. (12).
        loss: ``logistic`` (Eq. 12) or ``margin`` (TransE in the paper's code; needs negatives and
            ignores ``labels``).
        max_grad_norm: per-tensor gradient clipping (paper code: 1); ``None`` turns it off.
        validate: called as ``validate(model)`` every ``validate_every`` epochs (and at the end);
            higher is better; the best parameters are kept and training stops after ``patience``
            validations without improvement.
        checkpoint_dir: makes the run resumable (module docstring); ``checkpoint_every`` epochs
            between checkpoints (0: only at the end).
        stop_after: end after that many epochs in total without a checkpoint of its own: a stand-in
            for a killed job, for tests.
    """
    if not isinstance(model, KGEModel):
        raise TypeError(f"model must be an aicanon.graphs.kge.KGEModel, got {type(model).__name__}")
    triples = check_triples(triples, model.num_entities, model.num_relations)
    if triples.size(0) == 0:
        raise ValueError("triples must hold at least one training triple, got 0")
    if labels is not None:
        if not isinstance(labels, Tensor) or labels.shape != (triples.size(0),):
            raise ValueError(
                f"labels must be a [{triples.size(0)}] tensor, got {getattr(labels, 'shape', type(labels).__name__)}"
            )
        if not bool(((labels == 1) | (labels == -1)).all()):
            raise ValueError("labels must all be -1 or +1")
    check_int("epochs", epochs)
    if (batches_per_epoch is None) == (batch_size is None):
        raise ValueError(
            f"give exactly one of batches_per_epoch and batch_size, got {batches_per_epoch!r} and {batch_size!r}"
        )
    if batch_size is None:
        check_int("batches_per_epoch", batches_per_epoch)
        batch_size = max(1, math.ceil(triples.size(0) / batches_per_epoch))
    check_int("batch_size", batch_size)
    check_int("num_negatives", num_negatives, 0)
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if loss == "margin" and num_negatives < 1:
        raise ValueError(f"the margin loss needs num_negatives >= 1, got {num_negatives}")
    if labels is None and num_negatives == 0 and loss == "logistic":
        raise ValueError("with no labels (all triples true) num_negatives must be >= 1, got 0")
    check_float("learning_rate", learning_rate, 0, min_inclusive=False, finite=True)
    check_float("regularization", regularization, 0, finite=True)
    check_float("max_grad_norm", max_grad_norm, 0, min_inclusive=False, finite=True, allow_none=True)
    check_int("validate_every", validate_every)
    check_int("patience", patience)
    check_int("checkpoint_every", checkpoint_every, 0)
    if checkpoint_every and checkpoint_dir is None:
        raise ValueError("checkpoint_every needs checkpoint_dir, got None")
    check_int("stop_after", stop_after, 1, allow_none=True)

    device = next(model.parameters()).device
    triples = triples.to(device)
    if labels is None:
        labels = torch.ones(triples.size(0), device=device)
    labels = labels.to(device=device, dtype=torch.float32)
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adagrad(parameters, lr=learning_rate)
    history = TrainingHistory()
    best_state: dict[str, Tensor] | None = None
    bad_validations = 0

    def run_validation(epoch: int) -> bool:
        nonlocal best_state, bad_validations
        value = float(validate(model))  # type: ignore[misc]
        model.train()
        history.validation.append((epoch, value))
        if history.best_value is None or value > history.best_value:
            history.best_value, history.best_epoch = value, epoch
            best_state = copy.deepcopy(model.state_dict())
            bad_validations = 0
            return False
        bad_validations += 1
        return bad_validations >= patience

    run_config = {
        "model": type(model).__name__,
        "parameters": [list(p.shape) for p in parameters],
        "triples": list(triples.shape),
        "labelled": not bool((labels == 1).all()),
        "generator_seed": generator.initial_seed() if generator is not None else None,
        "settings": [epochs, batch_size, num_negatives, learning_rate, regularization, loss, margin],
        "clipping": max_grad_norm,
        "validation": None if validate is None else [validate_every, patience],
    }
    first_epoch = 1
    if checkpoint_dir is not None:
        state = load_checkpoint(checkpoint_dir, config=run_config)
        if state is not None:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            if generator is not None:
                generator.set_state(state["generator"])
            set_rng_state(state["rng"])
            history = TrainingHistory(**state["history"])
            history.validation = [tuple(pair) for pair in history.validation]
            best_state, bad_validations = state["best_state"], int(state["bad_validations"])
            first_epoch = int(state["epoch"]) + 1
            if state["finished"]:
                first_epoch = epochs + 1

    def save(epoch: int, finished: bool) -> None:
        state = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "generator": generator.get_state() if generator is not None else None,
            "rng": rng_state(),
            "epoch": epoch,
            "finished": finished,
            "history": asdict(history),
            "best_state": best_state,
            "bad_validations": bad_validations,
        }
        save_checkpoint(checkpoint_dir, state, config=run_config)  # type: ignore[arg-type]

    last_epoch = epochs if stop_after is None else min(epochs, stop_after)
    model.train()
    for epoch in range(first_epoch, last_epoch + 1):
        order = torch.randperm(triples.size(0), generator=generator).to(device)
        total, count = 0.0, 0
        for start in range(0, triples.size(0), batch_size):
            index = order[start : start + batch_size]
            positives, y = triples[index], labels[index]
            negatives = corrupt(positives, model.num_entities, num_negatives, generator)
            batch = torch.cat([positives, negatives])
            scores = model._score(batch[:, 0], batch[:, 1], batch[:, 2])
            if loss == "logistic":
                y_all = torch.cat([y, -torch.ones(negatives.size(0), device=device)])
                objective = logistic_loss(scores, y_all)
            else:
                b = positives.size(0)
                objective = margin_loss(scores[:b], scores[b:].view(num_negatives, b).T, margin)
            if regularization > 0:
                objective = objective + regularization * model._penalty(batch[:, 0], batch[:, 1], batch[:, 2])
            optimizer.zero_grad(set_to_none=True)
            objective.backward()
            if max_grad_norm is not None:
                # Per tensor, as downhill's max_gradient_norm in the paper's code.
                for p in parameters:
                    if p.grad is not None:
                        torch.nn.utils.clip_grad_norm_([p], max_grad_norm)
            optimizer.step()
            total += float(objective.detach()) * positives.size(0)
            count += positives.size(0)
        history.losses.append(total / count)
        if on_epoch is not None:
            on_epoch(epoch, history.losses[-1])
        due = validate is not None and (epoch % validate_every == 0 or epoch == epochs)
        stop = bool(due and run_validation(epoch))
        if stop:
            history.stopped_early = epoch < epochs
        if checkpoint_dir is not None and (
            stop or epoch == epochs or (checkpoint_every and epoch % checkpoint_every == 0)
        ):
            save(epoch, finished=stop or epoch == epochs)
        if stop:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history
