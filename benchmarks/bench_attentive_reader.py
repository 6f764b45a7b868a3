"""Benchmark: the readers of Hermann et al. 2015, forward + backward per example, in one process.

There is no maintained reference implementation of the Attentive Reader to compare against, so the
baseline is a plain deep reader built from ``torch.nn.LSTM(num_layers=2)`` (document ||| query, no
skip connections, its last state to the output layer): what a practitioner would write first. Our
Deep LSTM Reader (skip connections from the input to every layer and from every layer to the
output: a stack of one-layer LSTMs) is timed against it, and the Attentive and Impatient Readers
beside it (their ratio says what attention and re-reading cost). All take the same padded batch of
random cloze-shaped inputs; the callables run alternately, repeat after repeat, and the median is
reported as milliseconds per example.

    python benchmarks/bench_attentive_reader.py [--device cpu|cuda] [--threads N] [--repeats R]
        [--batch B] [--document-length L] [--hidden H]

(also ``aicanon bench attentive-reader -- --device cuda``).
"""

from __future__ import annotations

import argparse

import _timing
import torch
from torch import nn

from aicanon.language.attentive_reader import AttentiveReader, DeepLSTMReader, ImpatientReader

VOCAB, ENTITIES, DELIMITER = 5000, 48, 2


class PlainDeepReader(nn.Module):
    """``document ||| query`` through ``nn.LSTM(num_layers=2)``; the last real state to W(a)."""

    def __init__(self, reader: DeepLSTMReader, embedding_size: int, hidden_size: int) -> None:
        super().__init__()
        self.reader = reader  # only for its concatenation of document ||| query
        self.embedding = nn.Embedding(VOCAB, embedding_size, padding_idx=0)
        self.lstm = nn.LSTM(embedding_size, hidden_size, num_layers=2, batch_first=True)
        self.output = nn.Linear(hidden_size, ENTITIES)

    def forward(self, document, document_lengths, query, query_lengths, candidates):
        joined, lengths = self.reader.concatenate(document, document_lengths, query, query_lengths)
        y, _ = self.lstm(self.embedding(joined))
        g = y[torch.arange(y.size(0), device=y.device), lengths - 1]
        return self.output(g).masked_fill(~candidates, float("-inf"))


def inputs(batch: int, document_length: int, query_length: int, device: torch.device):
    generator = torch.Generator().manual_seed(0)
    document = torch.randint(3, VOCAB, (batch, document_length), generator=generator)
    query = torch.randint(3, VOCAB, (batch, query_length), generator=generator)
    document_lengths = torch.randint(document_length // 2, document_length + 1, (batch,), generator=generator)
    query_lengths = torch.randint(query_length // 2, query_length + 1, (batch,), generator=generator)
    document_lengths[0], query_lengths[0] = document_length, query_length
    candidates = torch.rand(batch, ENTITIES, generator=generator) < 0.2
    candidates[:, 0] = True
    answers = torch.zeros(batch, dtype=torch.long)
    tensors = (document, document_lengths, query, query_lengths, candidates)
    return tuple(t.to(device) for t in tensors), answers.to(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=32, help="examples per batch")
    parser.add_argument("--document-length", type=int, default=120, help="document tokens (padded length)")
    parser.add_argument("--query-length", type=int, default=25, help="query tokens (padded length)")
    parser.add_argument("--hidden", type=int, default=64, help="LSTM units (per direction / per layer)")
    args = _timing.parse_common_args(parser, repeats=10)
    _timing.print_setup(args, "median", "forward + backward, ms per example")
    device, hidden = args.device, args.hidden
    torch.manual_seed(0)
    deep = DeepLSTMReader(VOCAB, ENTITIES, delimiter_id=DELIMITER, embedding_size=hidden, hidden_size=hidden)
    models = {
        "deep_lstm": deep,
        "plain": PlainDeepReader(deep, hidden, hidden),
        "attentive": AttentiveReader(
            VOCAB, ENTITIES, embedding_size=hidden, hidden_size=hidden, attention_size=hidden
        ),
        "impatient": ImpatientReader(
            VOCAB, ENTITIES, embedding_size=hidden, hidden_size=hidden, attention_size=hidden
        ),
    }
    for model in models.values():
        model.to(device)
    batch, answers = inputs(args.batch, args.document_length, args.query_length, device)

    def step(model: nn.Module):
        return lambda: nn.functional.cross_entropy(model(*batch), answers).backward()

    timings = _timing.time_alternately(
        {name: step(model) for name, model in models.items()},
        args.repeats,
        device,
        warmup=2,
        before_each={name: (lambda m=model: m.zero_grad(set_to_none=True)) for name, model in models.items()},
    )
    for timing in timings.values():  # per example
        timing.times = [t / args.batch for t in timing.times]
    label = f"B={args.batch}, |d|={args.document_length}, |q|={args.query_length}, H={hidden}"
    _timing.print_comparison(label, timings, "median", ours="deep_lstm", references=("plain",), width=40)
    print(
        "ratio deep_lstm/plain: ours (skip connections, one nn.LSTM per layer) against nn.LSTM(num_layers=2)"
    )


if __name__ == "__main__":
    main()
