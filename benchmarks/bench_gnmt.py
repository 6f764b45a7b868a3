"""Benchmark: GNMT's pieces against their references, same inputs, one process.

1. Corpus BLEU: ours (:func:`aicanon.language.bleu.corpus_bleu`) against ``sacrebleu.corpus_bleu``
   on Multi30k's 1,000 test references, scoring lightly corrupted copies (the scores must agree).
2. The encoder-decoder's training step: forward + backward of our GNMT stack (bi-directional
   bottom layer, residual uni-directional layers, bottom-layer attention fed to every decoder layer)
   against a plain ``torch.nn.LSTM`` encoder-decoder of the same depth and width (multi-layer fused
   LSTMs, attention computed once from the top decoder layer, Luong-style) on the same batch. The
   two are different models: the ratio is the price of GNMT's step-by-step bottom decoder layer.
3. Decoding: our beam search (beam 4, alpha = beta = 0.2, pruning) against greedy search on the
   same model and sentences: the cost of the search over one hypothesis.

    python benchmarks/bench_gnmt.py [--device cpu|cuda] [--threads N] [--repeats R]
"""

from __future__ import annotations

import argparse
import random

import _timing
import torch
from torch import nn

from aicanon.language.beam_search import beam_search, greedy_search
from aicanon.language.bleu import corpus_bleu
from aicanon.language.gnmt import GNMT, GNMTConfig, teacher_forced_loss


class PlainSeq2Seq(nn.Module):
    """A torch.nn.LSTM encoder-decoder of the same size: fused multi-layer LSTMs, dot attention on top."""

    def __init__(self, vocab: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.source_embedding = nn.Embedding(vocab, hidden)
        self.target_embedding = nn.Embedding(vocab, hidden)
        self.encoder = nn.LSTM(hidden, hidden, layers, batch_first=True)
        self.decoder = nn.LSTM(hidden, hidden, layers, batch_first=True)
        self.combine = nn.Linear(2 * hidden, hidden)
        self.output = nn.Linear(hidden, vocab)

    def loss(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        memory, _ = self.encoder(self.source_embedding(source))
        decoded, _ = self.decoder(self.target_embedding(target))
        weights = (decoded @ memory.transpose(1, 2)).masked_fill((source == 0).unsqueeze(1), -1e9).softmax(-1)
        top = torch.tanh(self.combine(torch.cat([decoded, weights @ memory], dim=-1)))
        logits = self.output(top)
        return nn.functional.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=0)


def bench_bleu(args) -> None:
    import sacrebleu

    from aicanon.datasets.multi30k import load_multi30k

    references = [t for _, t in load_multi30k("test")]
    rng = random.Random(0)
    hypotheses = [" ".join(w for w in r.split() if rng.random() > 0.2) for r in references]
    ours, theirs = corpus_bleu(hypotheses, [references]), sacrebleu.corpus_bleu(hypotheses, [references])
    timings = _timing.time_alternately(
        {
            "ours": lambda: corpus_bleu(hypotheses, [references]),
            "sacrebleu": lambda: sacrebleu.corpus_bleu(hypotheses, [references]),
        },
        args.repeats,
        None,
        warmup=1,
    )
    note = f"BLEU {ours.score:.4f} vs {theirs.score:.4f}"
    _timing.print_comparison("corpus BLEU, 1000 Multi30k sentences", timings, "median", note=note, width=40)


def bench_training_step(args, vocab=4000, hidden=128, layers=2, batch=64, length=16) -> None:
    torch.manual_seed(0)
    gnmt = GNMT(GNMTConfig(vocab, vocab, hidden, encoder_layers=layers, decoder_layers=layers, dropout=0.0))
    plain = PlainSeq2Seq(vocab, hidden, layers)
    gnmt.to(args.device), plain.to(args.device)
    source = torch.randint(4, vocab, (batch, length), device=args.device)
    target = torch.randint(4, vocab, (batch, length + 1), device=args.device)
    timings = _timing.time_alternately(
        {
            "gnmt": lambda: teacher_forced_loss(gnmt, source, target, 2).backward(),
            "nn.LSTM": lambda: plain.loss(source, target).backward(),
        },
        args.repeats,
        args.device,
        warmup=2,
        before_each={
            "gnmt": lambda: gnmt.zero_grad(set_to_none=True),
            "nn.LSTM": lambda: plain.zero_grad(set_to_none=True),
        },
    )
    label = f"train step {layers}+{layers}x{hidden}, B={batch}, L={length}"
    _timing.print_comparison(label, timings, "median", ours="gnmt", width=40)


def bench_search(args, vocab=4000, hidden=128, batch=100, length=14) -> None:
    torch.manual_seed(0)
    model = GNMT(GNMTConfig(vocab, vocab, hidden, encoder_layers=2, decoder_layers=2, dropout=0.0)).eval()
    model.to(args.device)
    source = torch.randint(4, vocab, (batch, length), device=args.device)
    common = dict(bos_id=2, eos_id=3, max_length=20)
    timings = _timing.time_alternately(
        {
            "beam": lambda: beam_search(
                model, source, beam_size=4, alpha=0.2, beta=0.2, score_margin=3.0, **common
            ),
            "greedy": lambda: greedy_search(model, source, **common),
        },
        max(3, args.repeats // 4),
        args.device,
        warmup=1,
    )
    _timing.print_comparison(f"decode {batch} sentences, 20 steps", timings, "median", ours="beam", width=40)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args = _timing.parse_common_args(parser, repeats=10)
    _timing.print_setup(args, "median")
    bench_bleu(args)
    bench_training_step(args)
    bench_search(args)


if __name__ == "__main__":
    main()
