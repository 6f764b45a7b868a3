"""Benchmark: prompt-based classification scores (cloze template, verbaliser, one- and two-token
answers) with our MaskedLMPromptClassifier against the same scores computed from transformers'
AlbertForMaskedLM on the same weights and inputs, in one process.

Times the label scores of a batch of prompts (forward only, as in zero-shot prompting; and forward +
backward, as in prompt-based fine-tuning) and prints ours / transformers' time ratio (below 1: ours
is faster). The reference's cost includes only its forward and the same gather of the answer slots.

    python benchmarks/bench_prompt_learning.py [--device cpu|cuda] [--threads N] [--repeats R]

(also ``aicanon bench prompt-learning``).
"""

from __future__ import annotations

import argparse
import warnings

import _timing
import torch
import torch.nn.functional as F

from aicanon.language.albert import (
    AlbertConfig,
    AlbertForPreTraining,
    config_to_transformers,
    to_transformers,
)
from aicanon.language.prompting import MaskedLMPromptClassifier, PromptTemplate, Verbalizer, answer_log_probs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=64, help="prompts per call")
    args = _timing.parse_common_args(parser, repeats=10)
    warnings.filterwarnings("ignore")
    import transformers

    device = args.device
    _timing.print_setup(args, "median", f"label scores of {args.batch} prompts (answers of 1 and 2 tokens)")
    torch.manual_seed(0)
    vocab = 5000
    cfg = AlbertConfig(
        vocab_size=vocab,
        embedding_size=128,
        hidden_size=256,
        num_layers=4,
        num_heads=4,
        intermediate_size=1024,
        sharing="all",
    )
    ours_model = AlbertForPreTraining(cfg).eval().to(device)
    reference = transformers.AlbertForMaskedLM(transformers.AlbertConfig(**config_to_transformers(cfg)))
    state = {
        k: v
        for k, v in to_transformers(ours_model.state_dict(), cfg).items()
        if not k.startswith(("sop_classifier", "albert.pooler"))
    }
    reference.load_state_dict(state, strict=False)
    reference.tie_weights()
    reference = reference.eval().to(device)

    words = [f"w{i}" for i in range(vocab)]
    index = {w: i for i, w in enumerate(words)}

    def tokenize(text: str) -> list[int]:
        return [index.get(w, 1) for w in text.split()]

    clf = MaskedLMPromptClassifier(
        ours_model,
        tokenize,
        PromptTemplate("[X] w10 w11 [Z] w12 ."),
        Verbalizer([["w20"], ["w21", "w22 w23"]]),
        cls_id=2,
        sep_id=3,
        mask_id=4,
    )
    generator = torch.Generator().manual_seed(0)
    texts = [
        " ".join(f"w{int(i)}" for i in torch.randint(30, vocab, (40,), generator=generator))
        for _ in range(args.batch)
    ]

    def reference_scores() -> torch.Tensor:
        columns = []
        for m, answers in ((1, [[20], [21]]), (2, [[22, 23]])):
            ids, mask, slots = clf.encode(texts, m)
            ids, mask, slots = ids.to(device), mask.to(device), slots.to(device)
            logits = reference(input_ids=ids, attention_mask=mask.long()).logits
            log_probs = F.log_softmax(logits[torch.arange(len(texts), device=device)[:, None], slots], -1)
            columns.append(answer_log_probs(log_probs, answers))
        scores = torch.cat(columns, dim=1)
        return clf.verbalizer.label_scores(scores)

    with torch.no_grad():
        difference = (clf(texts) - reference_scores()).abs().max().item()
        timings = _timing.time_alternately(
            {"ours": lambda: clf(texts), "transformers": reference_scores}, args.repeats, device, warmup=2
        )
    _timing.print_comparison(
        "forward (zero-shot scoring)", timings, "median", note=f"max |diff| {difference:.1e}"
    )
    timings = _timing.time_alternately(
        {
            "ours": lambda: clf(texts).sum().backward(),
            "transformers": lambda: reference_scores().sum().backward(),
        },
        args.repeats,
        device,
        warmup=2,
        before_each={
            "ours": lambda: clf.zero_grad(set_to_none=True),
            "transformers": lambda: reference.zero_grad(set_to_none=True),
        },
    )
    _timing.print_comparison("forward + backward (prompt-based tuning)", timings, "median")


if __name__ == "__main__":
    main()
