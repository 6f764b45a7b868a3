"""MMLU scoring: our batched harness against a straightforward per-question loop, same model, same
questions, same numbers.

* ours: :func:`aicanon.evals.mmlu.evaluate_mmlu` over ``LocalLanguageModel.loglikelihood``: each
  call scores ``batch`` questions' four continuations in one forward pass, and a question's four
  one-token answers (" A" … " D", identical model inputs) share one row of it;
* loop: what a first implementation does (and the paper's script, one API call per question,
  resembles): per question, per letter, one forward pass over prompt + letter and the letter's
  log-probability read from it.

The model is the experiment's random byte-level Llama (its cost per token is what it is for any
model; the ratio comes from the number and shape of forward passes). Both produce the same
predictions (checked before timing).
"""

from __future__ import annotations

import argparse

import _timing
import numpy as np
import torch

from aicanon.datasets.mmlu import ANSWER_LETTERS, load_mmlu
from aicanon.evals.mmlu import CHOICE_CONTINUATIONS, evaluate_mmlu, fit_prompt
from aicanon.experiments.mmlu import Config, build_backend


@torch.no_grad()
def per_question_loop(backend, prompts: list[str]) -> list[list[float]]:
    """One unbatched forward pass per (question, letter): log P(" X" | prompt) summed over its tokens."""
    out = []
    for prompt in prompts:
        scores = []
        for continuation in CHOICE_CONTINUATIONS:
            context_ids = [backend.bos_token_id] + backend.tokenizer.encode(prompt)
            whole = [backend.bos_token_id] + backend.tokenizer.encode(prompt + continuation)
            logits = backend.model(torch.tensor([whole[:-1]], device=backend.device))[0]
            logprobs = logits.float().log_softmax(-1)
            scores.append(sum(float(logprobs[t - 1, whole[t]]) for t in range(len(context_ids), len(whole))))
        out.append(scores)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=24, help="test questions per subject")
    parser.add_argument("--batch", type=int, default=16, help="questions per forward pass (ours)")
    args = _timing.parse_common_args(parser, repeats=3)
    _timing.print_setup(args, "median", "scoring 4 subjects' questions with the random byte Llama")
    cfg = Config.quick()
    cfg.device = str(args.device)
    test = {s: q[: args.questions] for s, q in load_mmlu("test", list(cfg.subjects)).items()}
    dev = load_mmlu("dev", list(test))
    torch.manual_seed(0)
    backend, fits = build_backend(cfg, test, dev)
    prompts = [fit_prompt(q, dev[s], cfg.shots, fits)[0] for s, questions in test.items() for q in questions]

    def ours():
        report = evaluate_mmlu(backend, test, dev, shots=cfg.shots, fits=fits, batch_size=args.batch)
        return [r["loglikelihoods"] for r in report.records]

    ours_scores, loop_scores = np.array(ours()), np.array(per_question_loop(backend, prompts))
    difference = float(np.abs(ours_scores - loop_scores).max())
    same = (ours_scores.argmax(1) == loop_scores.argmax(1)).all()
    timings = _timing.time_alternately(
        {"ours": ours, "loop": lambda: per_question_loop(backend, prompts)}, args.repeats, args.device
    )
    note = f"max |diff| {difference:.1e}, same predictions: {bool(same)} ({len(ANSWER_LETTERS)} letters)"
    _timing.print_comparison(f"{len(prompts)} questions, 5-shot", timings, "median", note=note)


if __name__ == "__main__":
    main()
