import pytest

from aicanon.language.completion import Completion
from aicanon.reasoning.react import (
    HOTPOTQA_INSTRUCTION,
    HOTPOTQA_REACT_EXEMPLAR,
    MAX_STEPS,
    cot_answer,
    cot_sc_then_react,
    exact_match,
    f1_score,
    fever_accuracy,
    normalize_answer,
    react_then_cot_sc,
    run_chain_of_thought,
    run_episodes,
)
from aicanon.reasoning.wiki_env import WikiEnvironment

pytestmark = pytest.mark.paper("react")

PAGES = {
    "Ann Rell": "Ann Rell is a painter. The partner of Ann Rell is Bo Kim",
    "Bo Kim": "Bo Kim is a baker. Bo Kim lives in Lima",
}


class Scripted:
    """A LanguageModel that answers each prompt by the first rule whose key the prompt ends with."""

    def __init__(self, rules):
        self.rules, self.calls = rules, []

    def complete(self, prompts, max_tokens=64, temperature=0.0, n=1, stop=None):
        self.calls.append((list(prompts), stop))
        out = []
        for prompt in prompts:
            text = next((v for k, v in self.rules if prompt.endswith(k)), " nothing")
            out.append([Completion(text, "stop") for _ in range(n)])
        return out


def react_rules():
    return [
        (
            "Question: Where does the partner of Ann Rell live?\nThought 1:",
            " I need to search Ann Rell.\nAction 1: search[Ann Rell]",
        ),
        (
            "Observation 1: Ann Rell is a painter. The partner of Ann Rell is Bo Kim.\nThought 2:",
            " The partner is Bo Kim.\nAction 2: Search[Bo Kim]",
        ),
        ("Observation 2: Bo Kim is a baker. Bo Kim lives in Lima.\nThought 3:", " So the answer is Lima."),
        ("Thought 3: So the answer is Lima.\nAction 3:", " finish[Lima]"),
    ]


def test_react_loop_writes_the_papers_trajectory_and_reprompts_for_a_missing_action():
    model = Scripted(react_rules())
    [episode] = run_episodes(model, ["Where does the partner of Ann Rell live?"], [WikiEnvironment(PAGES)])
    assert episode.answer == "Lima" and episode.steps == 3
    assert episode.text == (
        "Thought 1: I need to search Ann Rell.\nAction 1: search[Ann Rell]\n"
        "Observation 1: Ann Rell is a painter. The partner of Ann Rell is Bo Kim.\n"
        "Thought 2: The partner is Bo Kim.\nAction 2: Search[Bo Kim]\n"
        "Observation 2: Bo Kim is a baker. Bo Kim lives in Lima.\n"
        "Thought 3: So the answer is Lima.\nAction 3: finish[Lima]\n"
        "Observation 3: Episode finished, reward = 0\n"
    )
    assert model.calls[0][1] == ["\nObservation 1:"]
    assert model.calls[-1][1] == ["\n"]  # the reference's re-prompt for the action alone


def test_act_mode_and_step_limit():
    model = Scripted([("Action 1:", " search[Ann Rell]"), (":", " lookup[zzz]")])
    episodes = run_episodes(
        model,
        ["q1", "q2"],
        [WikiEnvironment(PAGES), WikiEnvironment(PAGES)],
        mode="act",
        max_steps=MAX_STEPS["fever"],
    )
    for episode in episodes:
        assert episode.answer is None and episode.steps == 5 and not episode.finished
        assert episode.actions == ["search[Ann Rell]"] + ["lookup[zzz]"] * 4
        assert "Thought" not in episode.text
    assert len(model.calls) == 5  # one batched call per step for both episodes
    assert all(len(prompts) == 2 for prompts, _ in model.calls)


def test_prefix_holds_the_papers_prompt():
    model = Scripted(react_rules())
    prefix = HOTPOTQA_INSTRUCTION + HOTPOTQA_REACT_EXEMPLAR
    run_episodes(model, ["Where does the partner of Ann Rell live?"], [WikiEnvironment(PAGES)], prefix=prefix)
    assert model.calls[0][0][0].startswith("Solve a question answering task with interleaving Thought")
    assert "Action 2: Lookup[named after]" in model.calls[0][0][0]


def test_official_hotpotqa_normalisation_and_scores():
    assert normalize_answer("The  Boston Celtics!") == "boston celtics"
    assert normalize_answer("An apple, a day") == "apple day"
    assert exact_match("the Boston Celtics.", "Boston Celtics")
    assert not exact_match(None, "Boston Celtics") and exact_match(None, "")
    assert f1_score("Boston Celtics team", "Boston Celtics") == pytest.approx(0.8)  # p=2/3, r=1
    assert f1_score("yes", "no") == 0.0 and f1_score("no", "no") == 1.0
    assert f1_score("yes it is", "yes") == 0.0  # the reference's yes/no rule after normalisation
    assert fever_accuracy(["SUPPORTS", "refutes", None], ["SUPPORTS", "REFUTES", "NOT ENOUGH INFO"]) == 2 / 3


def test_cot_answer_and_cot_sc_majority():
    assert cot_answer(" Let's think step by step. X is Y, so the answer is Y.\nAnswer: Y") == "Y"
    assert cot_answer(" Let's think. So the answer is Lima.") == "Lima"
    assert cot_answer(" no idea") is None
    model = Scripted([("Thought:", " so the answer is Lima.\nAnswer: Lima")])
    [(answer, samples)] = run_chain_of_thought(model, ["q"], samples=3, temperature=0.7)
    assert answer == "Lima" and samples == ["Lima"] * 3
    assert model.calls[0][0] == ["Question: q\nThought:"]


def test_back_offs_of_section_3_3():
    asked = []

    def cot_sc(indices):
        asked.append(indices)
        return [f"cot{k}" for k in indices]

    assert react_then_cot_sc(["a", None, "c", None], cot_sc) == ["a", "cot1", "c", "cot3"]
    assert asked == [[1, 3]]
    assert react_then_cot_sc(["a"], cot_sc) == ["a"] and len(asked) == 1  # nothing to back off

    samples = [["x", "x", "y"], ["x", "y", "z", "w"], ["p", None, None, "p"]]
    # majority share 2/3 keeps CoT-SC; 1/4 and 2/4... 2/4 = 0.5 is not < n/2, so only the second backs off
    assert cot_sc_then_react(samples, lambda idx: [f"react{k}" for k in idx]) == ["x", "react1", "p"]


def test_bad_input():
    env = WikiEnvironment(PAGES)
    with pytest.raises(ValueError, match="mode"):
        run_episodes(Scripted([]), ["q"], [env], mode="think")
    with pytest.raises(ValueError, match="max_steps"):
        run_episodes(Scripted([]), ["q"], [env], max_steps=0)
    with pytest.raises(ValueError, match="environments"):
        run_episodes(Scripted([]), ["q", "r"], [env])
    with pytest.raises(ValueError, match="temperature"):
        run_chain_of_thought(Scripted([]), ["q"], samples=3)
    with pytest.raises(TypeError, match="text"):
        normalize_answer(None)
    with pytest.raises(ValueError, match="predictions"):
        fever_accuracy([], [])
    with pytest.raises(ValueError, match="empty"):
        cot_sc_then_react([[]], lambda idx: [])


def test_protocol_on_real_hotpotqa_and_fever_questions_over_a_tiny_collection():
    from aicanon.datasets.hotpotqa import load_fever, load_hotpotqa
    from aicanon.reasoning.react import evaluate

    dev = load_hotpotqa("dev")[:3]
    # a tiny collection: one page per question, titled "Page k", whose first sentence holds the answer
    pages = {f"Page {k}": f"The answer to question {k} is {q.answer}. Filler text" for k, q in enumerate(dev)}
    rules = []
    for k, q in enumerate(dev):
        rules.append(
            (
                f"Question: {q.question}\nThought 1:",
                f" I need to search Page {k}.\nAction 1: Search[Page {k}]",
            )
        )
        rules.append(
            (
                f"is {q.answer}. Filler text.\nThought 2:",
                f" So the answer is {q.answer}.\nAction 2: Finish[{q.answer}]",
            )
        )
    model = Scripted(rules)
    scores = evaluate(model, [q.question for q in dev], [q.answer for q in dev], pages)
    assert scores == {"em": 1.0, "f1": 1.0, "finished": 1.0}
    assert model.calls[0][0][0].startswith(HOTPOTQA_INSTRUCTION)  # the paper's prompt by default
    # a wrong answer on one question: EM 2/3; the official F1 gives partial credit for overlap
    wrong = Scripted([(k, v.replace(f"Finish[{dev[0].answer}]", "Finish[no]")) for k, v in rules])
    assert evaluate(wrong, [q.question for q in dev], [q.answer for q in dev], pages)["em"] == pytest.approx(
        2 / 3
    )

    claims = [c for c in load_fever()[:20] if c.label != "NOT ENOUGH INFO"][:2]
    model = Scripted(
        [(f"Claim: {c.claim}\nThought 1:", f" Done.\nAction 1: Finish[{c.label}]") for c in claims]
    )
    scores = evaluate(model, [c.claim for c in claims], [c.label for c in claims], pages, task="fever")
    assert scores == {"accuracy": 1.0, "finished": 1.0}
    assert model.calls[0][0][0].startswith("Determine if there is Observation that SUPPORTS or REFUTES")
