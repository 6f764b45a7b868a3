"""Tree of Thoughts' search (Section 3) over a scripted model and a toy task whose tree is known by
hand: BFS keeps the b best states, the cost in prompts is counted exactly, greedy chains without
evaluation take the first proposal, votes and sampled selection work, DFS prunes and backtracks; and
the Game of 24 protocol with the solver oracle; bad input."""

from __future__ import annotations

import pytest

from aicanon.datasets.game24 import load_game24
from aicanon.language.completion import Completion, check_completion_request
from aicanon.reasoning.game24 import Game24Oracle, Game24Task, check_answer
from aicanon.reasoning.tree_of_thoughts import SearchStats, StateEvaluator, ThoughtGenerator, bfs, dfs

pytestmark = pytest.mark.paper("tree-of-thoughts")


def total(y: str) -> int:
    return sum(int(t) for t in y.split())


class SumTask:
    """Reach the target x as a sum of three thoughts, each 1, 2 or 3."""

    steps = 3

    def propose_prompt(self, x, y):
        return f"propose {total(y)}"

    def parse_proposals(self, x, y, text):
        return [y + line + "\n" for line in text.split("\n") if line]

    def sample_prompt(self, x, y):
        return f"sample {total(y)}"

    def value_prompt(self, x, y):
        return f"value {total(y)} {x} {len(y.split())}"

    def parse_value(self, x, y, outputs):
        return sum(float(o) for o in outputs)

    def vote_prompt(self, x, ys):
        return "vote " + x + " " + ",".join(str(total(y)) for y in ys)

    def parse_votes(self, x, ys, outputs):
        return [sum(o == str(i) for o in outputs) for i in range(len(ys))]


class ScriptedModel:
    def __init__(self):
        self.seen = []

    def complete(self, prompts, max_tokens=64, temperature=0.0, n=1, stop=None):
        prompts, _ = check_completion_request(prompts, max_tokens, temperature, n, stop)
        self.seen += prompts
        return [[Completion(self.answer(p), "stop", ("t",), (-0.1,))] * n for p in prompts]

    @staticmethod
    def answer(prompt):
        kind, *rest = prompt.split(" ")
        if kind == "propose":
            return "1\n2\n3\n"
        if kind == "sample":
            return "2\n"
        if kind == "value":  # high when the target is still reachable with the steps left
            now, target, used = (int(v) for v in rest)
            left = 3 - used
            return "1" if now + left <= int(target) <= now + 3 * left else "0.01"
        target, sums = int(rest[0]), [int(v) for v in rest[1].split(",")]
        return str(max(range(len(sums)), key=lambda i: sums[i] if sums[i] <= target else -1))


def test_bfs_finds_the_only_path_and_counts_prompts_exactly():
    model, stats = ScriptedModel(), SearchStats()
    evaluator = StateEvaluator("value", n=1, temperature=0.0, cache=False)
    (result,) = bfs(model, SumTask(), ["9"], breadth=2, evaluator=evaluator, stats=stats)
    assert result.output == "3\n3\n3\n" and total(result.output) == 9
    assert result.values[0] == 1.0 and len(result.outputs) == 2
    # level 1: 1 propose + 3 values; levels 2 and 3: 2 proposes + 6 values each
    assert stats.prompts == 20 and stats.completions == 20 and stats.generated_tokens == 20
    assert [len(level["candidates"]) for level in result.levels] == [3, 6, 6]


def test_value_cache_reuses_identical_prompts():
    model, stats = ScriptedModel(), SearchStats()
    (result,) = bfs(model, SumTask(), ["9"], breadth=2, evaluator=StateEvaluator(n=1), stats=stats)
    assert result.output == "3\n3\n3\n"
    value_prompts = [p for p in model.seen if p.startswith("value")]
    assert len(value_prompts) == len(set(value_prompts)) < 15


def test_greedy_chain_without_evaluation_takes_the_first_proposal():
    (result,) = bfs(ScriptedModel(), SumTask(), ["9"], breadth=1, evaluator=None)
    assert result.output == "1\n1\n1\n" and result.values == [0.0]


def test_lockstep_batches_problems_and_matches_one_at_a_time():
    model = ScriptedModel()
    together = bfs(model, SumTask(), ["4", "9", "6"], breadth=2, evaluator=StateEvaluator(n=1, cache=False))
    alone = [
        bfs(model, SumTask(), [x], breadth=2, evaluator=StateEvaluator(n=1, cache=False))[0] for x in "496"
    ]
    assert [r.output for r in together] == [r.output for r in alone]
    assert [total(r.output) for r in together] == [4, 9, 6]


def test_sample_generation_vote_evaluation_and_sampled_selection():
    model = ScriptedModel()
    sample = ThoughtGenerator("sample", n=2, temperature=0.7)
    (result,) = bfs(
        model, SumTask(), ["6"], breadth=1, generator=sample, evaluator=StateEvaluator("vote", n=3)
    )
    assert result.output == "2\n2\n2\n"
    (voted,) = bfs(model, SumTask(), ["9"], breadth=1, evaluator=StateEvaluator("vote", n=3))
    assert total(voted.output) == 9
    first = bfs(model, SumTask(), ["9"], breadth=2, evaluator=StateEvaluator(n=1), selection="sample", seed=4)
    again = bfs(model, SumTask(), ["9"], breadth=2, evaluator=StateEvaluator(n=1), selection="sample", seed=4)
    assert first[0].outputs == again[0].outputs


def test_dfs_prunes_backtracks_and_gives_up():
    model, stats = ScriptedModel(), SearchStats()
    result = dfs(model, SumTask(), "8", evaluator=StateEvaluator(n=1), value_threshold=0.5, stats=stats)
    assert total(result.output) == 8 and len(result.output.split()) == 3
    hopeless = dfs(model, SumTask(), "20", evaluator=StateEvaluator(n=1), value_threshold=0.5)
    assert hopeless.output == "" and len(hopeless.levels[0]["visited"]) == 1  # the root's children all pruned
    capped = dfs(model, SumTask(), "9", evaluator=StateEvaluator(n=1), value_threshold=0.0, max_states=2)
    assert len(capped.levels[0]["visited"]) <= 2


def test_game24_protocol_with_the_solver_oracle_solves_the_test_games():
    games = [p.text for p in load_game24(range(900, 910))]
    for prompts in ("paper", "zero_shot"):
        results = bfs(Game24Oracle(), Game24Task(prompts), games, breadth=5, evaluator=StateEvaluator(n=3))
        assert all(check_answer(r.x, r.output) for r in results)
        assert all(r.output.count("\n") == 4 and "Answer:" in r.output for r in results)


def test_bad_input_is_rejected():
    with pytest.raises(TypeError, match="model"):
        bfs(object(), SumTask(), ["9"])
    with pytest.raises(TypeError, match="inputs"):
        bfs(ScriptedModel(), SumTask(), "9")
    with pytest.raises(ValueError, match="breadth"):
        bfs(ScriptedModel(), SumTask(), ["9"], breadth=0)
    with pytest.raises(ValueError, match="selection"):
        bfs(ScriptedModel(), SumTask(), ["9"], selection="best")
    with pytest.raises(ValueError, match="method"):
        ThoughtGenerator("beam")
    with pytest.raises(ValueError, match="method"):
        StateEvaluator("score")
    with pytest.raises(ValueError, match="n"):
        StateEvaluator(n=0)
    with pytest.raises(ValueError, match="max_states"):
        dfs(ScriptedModel(), SumTask(), "9", max_states=0)
    with pytest.raises(TypeError, match="x"):
        dfs(ScriptedModel(), SumTask(), 9)
