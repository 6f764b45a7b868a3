"""Beam search with GNMT's length normalisation and coverage penalty (Wu et al. 2016, Section 7).

Plain beam search keeps the ``beam_size`` most probable partial translations and favours short
ones: every extra token multiplies in a probability below one. GNMT ranks hypotheses by

    s(Y, X) = log(P(Y|X)) / lp(Y) + cp(X; Y)                                     (14)
    lp(Y) = (5 + |Y|)^alpha / (5 + 1)^alpha
    cp(X; Y) = beta * sum_{i=1}^{|X|} log(min(sum_{j=1}^{|Y|} p_{i,j}, 1.0))

where p_{i,j} is the attention probability of the j-th target token on the i-th source token:
lp divides the log-probability by a power of the length, and cp penalises a translation whose
attention has not covered every source token (a source token with total attention below one
costs beta times the log of that total). ``alpha = beta = 0`` is plain beam search.

Search. At every step each live hypothesis is extended by every token; all candidates of a
sentence are ranked by Eq. 14 at their new length (lp is the same for all candidates of one step,
so it only matters against finished hypotheses) and the best ``beam_size`` are kept: those ending
in ``[EOS]`` become finished hypotheses (their places in the beam are not refilled), the others
stay live. A sentence is done when no live hypothesis is left, when none can still beat the best
finished one (log P only falls as tokens are added and cp <= 0, so a live hypothesis can at best
reach log P / lp(max_length)), or at ``max_length``; its translation is the finished hypothesis
with the best score (live ones count as finished at ``max_length``). With ``beam_size = 1`` this
is greedy search, whatever alpha and beta.

The paper's two pruning rules (Section 7), both with the margin ``score_margin`` (the paper's
"beamsize" 3.0; None turns them off):

1. at each step only tokens whose local log-probability is within ``score_margin`` of the best
   token of that hypothesis are considered;
2. once a finished hypothesis exists, live hypotheses scoring more than ``score_margin`` below the
   best finished score are dropped.

Departures and choices the paper leaves open: |Y| counts the generated tokens including
``[EOS]``; the attention of the step that predicts a token is the one that token adds to the
coverage; the sum inside the log is floored at 1e-10 (a source token the model never attends to
would otherwise give -inf); cp is applied at every step (not only to finished hypotheses), so a
hypothesis that neglects the source loses its place in the beam early.

The model is anything with ``encode(source) -> state``, ``decode_step(state, tokens) ->
(log_probs [N, V], attention [N, M], state)`` and ``state.index_select(rows)`` (e.g.
:class:`aicanon.language.gnmt.GNMT`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from aicanon.core.checks import check_float, check_int, check_tensor

__all__ = ["Hypothesis", "beam_search", "coverage_penalty", "greedy_search", "length_penalty"]

_COVERAGE_FLOOR = 1e-10


@dataclass
class Hypothesis:
    """One finished translation: its tokens (without [BOS]; [EOS] excluded), log P(Y|X), Eq. 14's score."""

    tokens: list[int]
    log_prob: float
    score: float
    finished: bool = True
    """False when it was cut at ``max_length`` without [EOS]."""


def length_penalty(length: int | Tensor, alpha: float) -> float | Tensor:
    """lp(Y) = ((5 + |Y|) / 6)^alpha (Eq. 14)."""
    return ((5 + length) / 6) ** alpha


def coverage_penalty(coverage: Tensor, source_mask: Tensor, beta: float) -> Tensor:
    """cp = beta * sum_i log(min(coverage_i, 1)) over the real source positions (Eq. 14);
    ``coverage`` [N, M] holds sum_j p_{i,j}, ``source_mask`` [N, M] is True at real positions."""
    if beta == 0:
        return coverage.new_zeros(coverage.size(0))
    logs = coverage.clamp(min=_COVERAGE_FLOOR, max=1.0).log()
    return beta * logs.masked_fill(~source_mask, 0.0).sum(dim=1)


def _check_common(source: Tensor, bos_id: int, eos_id: int, max_length: int | None) -> int:
    check_tensor("source", source, dim=2, dtype=(torch.long, torch.int))
    check_int("bos_id", bos_id, 0)
    check_int("eos_id", eos_id, 0)
    check_int("max_length", max_length, allow_none=True)
    return 2 * source.size(1) + 10 if max_length is None else max_length


@torch.no_grad()
def greedy_search(
    model, source: Tensor, *, bos_id: int, eos_id: int, max_length: int | None = None
) -> list[list[int]]:
    """The most probable token at every step (beam size one, no penalties): token lists without [EOS]."""
    max_length = _check_common(source, bos_id, eos_id, max_length)
    state = model.encode(source)
    tokens = source.new_full((source.size(0),), bos_id, dtype=torch.long)
    outputs = []
    done = torch.zeros(source.size(0), dtype=torch.bool, device=source.device)
    for _ in range(max_length):
        log_probs, _, state = model.decode_step(state, tokens)
        tokens = log_probs.argmax(dim=1)
        outputs.append(tokens)
        done = done | (tokens == eos_id)
        if bool(done.all()):
            break
    rows = torch.stack(outputs, dim=1).tolist()
    return [row[: row.index(eos_id)] if eos_id in row else row for row in rows]


@torch.no_grad()
def beam_search(
    model,
    source: Tensor,
    *,
    bos_id: int,
    eos_id: int,
    beam_size: int = 4,
    alpha: float = 0.0,
    beta: float = 0.0,
    max_length: int | None = None,
    score_margin: float | None = None,
    pad_id: int = 0,
) -> list[Hypothesis]:
    """Translate every row of ``source`` [B, M] (padded with ``pad_id``) by beam search with Eq. 14's
    score (module docstring); returns the best :class:`Hypothesis` of each sentence.

    ``max_length`` defaults to 2 M + 10 tokens; ``score_margin`` is the paper's pruning margin.
    """
    max_length = _check_common(source, bos_id, eos_id, max_length)
    check_int("beam_size", beam_size)
    check_float("alpha", alpha, 0, finite=True)
    check_float("beta", beta, 0, finite=True)
    check_float("score_margin", score_margin, 0, min_inclusive=False, allow_none=True)
    batch, k = source.size(0), beam_size
    device = source.device
    source_mask = source != pad_id
    state = model.encode(source)
    rows = torch.arange(batch, device=device).repeat_interleave(k)
    state = state.index_select(rows)
    mask = source_mask.index_select(0, rows)
    tokens = torch.full((batch * k,), bos_id, dtype=torch.long, device=device)
    # Only the first copy of each sentence is live at the start (the others would duplicate it).
    log_p = torch.full((batch, k), float("-inf"), device=device)
    log_p[:, 0] = 0.0
    coverage = torch.zeros(batch * k, source.size(1), device=device)
    histories: list[list[list[int]]] = [[[] for _ in range(k)] for _ in range(batch)]
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    done = [False] * batch
    for step in range(1, max_length + 1):
        step_log_probs, attention, state = model.decode_step(state, tokens)
        vocab = step_log_probs.size(1)
        if score_margin is not None:  # pruning rule 1: tokens far below this hypothesis's best
            best = step_log_probs.max(dim=1, keepdim=True).values
            step_log_probs = step_log_probs.masked_fill(step_log_probs < best - score_margin, float("-inf"))
        new_coverage = coverage + attention.float()
        penalty = coverage_penalty(new_coverage, mask, beta)  # [B*K]
        candidate_log_p = log_p.view(-1, 1) + step_log_probs.float()
        candidate_score = candidate_log_p / length_penalty(step, alpha) + penalty.unsqueeze(1)
        top_score, top_index = candidate_score.view(batch, k * vocab).topk(min(k, k * vocab), dim=1)
        top_log_p = candidate_log_p.view(batch, k * vocab).gather(1, top_index)
        top_beam, top_token = (top_index // vocab).tolist(), (top_index % vocab).tolist()
        top_score_list, top_log_p_list = top_score.tolist(), top_log_p.tolist()

        parents = list(range(batch * k))  # rows to continue from (default: themselves, dead)
        next_tokens = [eos_id] * (batch * k)
        next_log_p = [float("-inf")] * (batch * k)
        next_histories: list[list[list[int]]] = [[[] for _ in range(k)] for _ in range(batch)]
        for b in range(batch):
            if done[b]:
                continue
            live = 0
            for rank in range(len(top_score_list[b])):
                score = top_score_list[b][rank]
                if score == float("-inf"):
                    break
                beam, token = top_beam[b][rank], top_token[b][rank]
                if token == eos_id:
                    finished[b].append(Hypothesis(list(histories[b][beam]), top_log_p_list[b][rank], score))
                    continue
                row = b * k + live
                parents[row] = b * k + beam
                next_tokens[row] = token
                next_log_p[row] = top_log_p_list[b][rank]
                next_histories[b][live] = histories[b][beam] + [token]
                live += 1
            if score_margin is not None and finished[b]:  # pruning rule 2
                best_final = max(h.score for h in finished[b])
                for slot in range(live):
                    row = b * k + slot
                    if next_log_p[row] == float("-inf"):
                        continue
                    live_score = _live_score(next_log_p[row], step, alpha, row, penalty, parents)
                    if live_score < best_final - score_margin:
                        next_log_p[row] = float("-inf")
            live_log_p = [
                next_log_p[b * k + s] for s in range(live) if next_log_p[b * k + s] != float("-inf")
            ]
            if finished[b] and live_log_p:  # can any live hypothesis still beat the best finished one?
                best_final = max(h.score for h in finished[b])
                if max(live_log_p) / length_penalty(max_length, alpha) <= best_final:
                    live_log_p = []
            if not live_log_p:
                done[b] = True
                for slot in range(k):
                    next_log_p[b * k + slot] = float("-inf")
        histories = next_histories
        if all(done):
            break
        parent_index = torch.tensor(parents, device=device)
        state = state.index_select(parent_index)
        coverage = new_coverage.index_select(0, parent_index)
        tokens = torch.tensor(next_tokens, device=device)
        log_p = torch.tensor(next_log_p, device=device).view(batch, k)
    else:  # max_length reached: live hypotheses count as finished, scored as they stand
        penalty = coverage_penalty(coverage, mask, beta).tolist()
        log_p_list = log_p.view(-1).tolist()
        for b in range(batch):
            if done[b]:
                continue
            for slot in range(k):
                row = b * k + slot
                if log_p_list[row] == float("-inf"):
                    continue
                score = log_p_list[row] / length_penalty(max_length, alpha) + penalty[row]
                finished[b].append(Hypothesis(histories[b][slot], log_p_list[row], score, finished=False))
    results = []
    for b in range(batch):
        if not finished[b]:  # every hypothesis was pruned at once: fall back to an empty translation
            results.append(Hypothesis([], float("-inf"), float("-inf"), finished=False))
        else:
            results.append(max(finished[b], key=lambda h: h.score))
    return results


def _live_score(
    log_p: float, step: int, alpha: float, row: int, penalty: Tensor, parents: list[int]
) -> float:
    """Eq. 14 of a live hypothesis at its current length (its coverage is its parent's new one)."""
    return log_p / length_penalty(step, alpha) + float(penalty[parents[row]])
