"""Benchmark: the cost of Tree of Thoughts' search against CoT and IO on the Game of 24, same model,
same test games, one process.

There is no reference library for Tree of Thoughts (the paper's repository is a set of scripts over
the OpenAI API, not an installable library), so the comparison is the one the paper makes in its
cost table (Appendix B.3): model calls and generated tokens per game, and here wall time, for IO, CoT
and ToT-BFS (b = 5, propose + value), with

* the solver oracle (:class:`aicanon.reasoning.game24.Game24Oracle`, no model cost: the search's own
  overhead, prompts built and parsed), with the paper's few-shot prompts;
* the trained Game of 24 model of the experiment (from its cache; trained first if absent), with the
  zero-shot prompts; it prints ToT's time / CoT's time.

    python benchmarks/bench_tree_of_thoughts.py [--games N] [--cache DIR] [--oracle-only]
"""

from __future__ import annotations

import argparse
import time

from aicanon.datasets.game24 import load_game24
from aicanon.reasoning.game24 import Game24Oracle, Game24Task, check_answer
from aicanon.reasoning.tree_of_thoughts import SearchStats, StateEvaluator, ThoughtGenerator, bfs


def measure(model, task: Game24Task, games: list[str], n_evaluate: int) -> dict[str, dict[str, float]]:
    rows = {}
    for name in ("IO", "CoT"):
        start = time.perf_counter()
        prompts = [task.standard_prompt(x) if name == "IO" else task.cot_prompt(x) for x in games]
        max_tokens = task.answer_max_tokens if name == "IO" else task.propose_max_tokens
        outputs = model.complete(prompts, max_tokens=max_tokens)
        stats = SearchStats()
        stats.add(prompts, outputs)
        ok = sum(check_answer(x, g[0].text) for x, g in zip(games, outputs, strict=True))
        rows[name] = _row(stats, time.perf_counter() - start, ok, len(games))
    stats = SearchStats()
    start = time.perf_counter()
    results = bfs(
        model,
        task,
        games,
        breadth=5,
        generator=ThoughtGenerator("propose"),
        evaluator=StateEvaluator("value", n=n_evaluate, temperature=0.7),
        stats=stats,
    )
    ok = sum(check_answer(r.x, r.output) for r in results)
    rows["ToT b=5"] = _row(stats, time.perf_counter() - start, ok, len(games))
    return rows


def _row(stats: SearchStats, seconds: float, ok: int, games: int) -> dict[str, float]:
    return {
        "prompts/game": stats.prompts / games,
        "tokens/game": stats.generated_tokens / games,
        "prompt kchars/game": stats.prompt_chars / games / 1000,
        "seconds/game": seconds / games,
        "success": ok / games,
    }


def show(title: str, rows: dict[str, dict[str, float]]) -> None:
    print(title)
    keys = list(next(iter(rows.values())))
    print(f"{'':10}" + "".join(f"{k:>20}" for k in keys))
    for name, row in rows.items():
        print(f"{name:10}" + "".join(f"{row[k]:>20.3f}" for k in keys))
    print(f"ToT / CoT time ratio: {rows['ToT b=5']['seconds/game'] / rows['CoT']['seconds/game']:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--games", type=int, default=20)
    parser.add_argument("--cache", default=None, help="folder of the experiment's trained model")
    parser.add_argument("--oracle-only", action="store_true")
    args = parser.parse_args()
    games = [p.text for p in load_game24(range(900, 900 + args.games))]
    show(
        "solver oracle, the paper's prompts (search overhead only):",
        measure(Game24Oracle(), Game24Task("paper"), games, 3),
    )
    if not args.oracle_only:
        from aicanon.experiments.tree_of_thoughts import ModelConfig, game24_language_model

        model = game24_language_model(ModelConfig(), args.cache)
        show(
            "\ntrained Game of 24 model, zero-shot prompts:",
            measure(model, Game24Task("zero_shot"), games, 3),
        )


if __name__ == "__main__":
    main()
