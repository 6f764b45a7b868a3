"""DeepSeek-R1's template, rule rewards, rejection sampling and distillation data (aicanon.align.r1)."""

import pytest
import torch

from aicanon.align.r1 import (
    R1_ZERO_TEMPLATE,
    ParsedResponse,
    Trace,
    accuracy_reward,
    distillation_examples,
    format_reward,
    format_trace,
    parse_response,
    r1_prompt,
    r1_reward,
    rejection_sample,
)
from aicanon.align.sft import IGNORE_INDEX

pytestmark = pytest.mark.paper("deepseek-r1")

GOOD = " <think> 7 + 5 = 12. </think> <answer> 12 </answer>"


def encode(text: str) -> list[int]:
    return [ord(c) % 250 + 2 for c in text]


def test_template_is_table_1_with_the_question_in_place_of_prompt():
    assert R1_ZERO_TEMPLATE.startswith("A conversation between User and Assistant. The user asks a question")
    assert R1_ZERO_TEMPLATE.endswith("User: {prompt}. Assistant:")
    prompt = r1_prompt("How many shells does Mia have now?")
    assert prompt.endswith("User: How many shells does Mia have now?. Assistant:")
    assert r1_prompt("What is 2 + 3.").endswith("User: What is 2 + 3. Assistant:")


def test_parse_response_golden():
    assert parse_response(GOOD) == ParsedResponse("7 + 5 = 12.", "12")
    assert parse_response("<think></think><answer>3</answer>") == ParsedResponse("", "3")
    assert parse_response("<think>a\nb</think>\n<answer> 3 </answer>\n") == ParsedResponse("a\nb", "3")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "The answer is 12.",
        "<think> x </think>",
        "<answer> 12 </answer>",
        "<answer> 12 </answer> <think> x </think>",
        "<think> x <think> y </think> <answer> 12 </answer>",
        "<think> x </think> <answer> 12 </answer> more",
        "before <think> x </think> <answer> 12 </answer>",
        "<think> x </think> <answer> 1 </answer> <answer> 2 </answer>",
    ],
)
def test_badly_formatted_responses_get_no_format_reward(text):
    assert parse_response(text) is None
    assert format_reward([text]) == [0.0]


def test_accuracy_reward_needs_format_and_the_right_number():
    texts = [
        GOOD,
        GOOD,
        "<think></think> <answer> 12.0 </answer>",
        "The answer is 12.",
        "<think> x </think> <answer> twelve </answer>",
        "<think> x </think> <answer> 112 </answer>",  # holds "12" but is not 12
        "<think> x </think> <answer> 12 or 13 </answer>",
    ]
    assert accuracy_reward(texts, ["12", 13, 12, 12, 12, 12, 12]) == [1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    assert format_reward(texts) == [1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0]


def test_r1_reward_is_the_weighted_sum():
    texts = [GOOD, "<think> x </think> <answer> 3 </answer>", "12"]
    assert r1_reward(texts, [12, 12, 12]) == [2.0, 1.0, 0.0]
    assert r1_reward(texts, [12, 12, 12], format_weight=0.5, accuracy_weight=2.0) == [2.5, 0.5, 0.0]


def test_format_trace_round_trips_through_the_parser():
    text = format_trace("9 * 2 = 18.", 18)
    assert text == "<think> 9 * 2 = 18. </think> <answer> 18 </answer>"
    assert parse_response(text) == ParsedResponse("9 * 2 = 18.", "18")
    assert format_reward([format_trace("", "4")]) == [1.0]


def test_rejection_sampling_keeps_correct_formatted_distinct_traces():
    prompts = ["p1", "p1", "p1", "p1", "p2", "p2"]
    texts = [
        GOOD,
        GOOD,
        "The answer is 12.",
        "<think> y </think> <answer> 12 </answer>",
        GOOD,
        "<think></think> <answer> 5 </answer>",
    ]
    answers = [12, 12, 12, 12, 5, 5]
    kept = rejection_sample(prompts, texts, answers)
    assert kept == [
        Trace("p1", GOOD.strip()),
        Trace("p1", "<think> y </think> <answer> 12 </answer>"),
        Trace("p2", "<think></think> <answer> 5 </answer>"),
    ]
    assert len(rejection_sample(prompts, texts, answers, max_per_prompt=1)) == 2
    assert rejection_sample(["p"], ["nothing"], [1]) == []


def test_distillation_examples_label_only_the_trace_and_the_end():
    examples = distillation_examples([Trace("Q?", "<think> a </think> <answer> 1 </answer>")], encode, 1)
    (example,) = examples
    prompt_length = len(encode("Q?"))
    assert torch.all(example.labels[:prompt_length] == IGNORE_INDEX)
    assert example.labels[-1].item() == 1
    assert example.num_response_tokens == len(encode(" <think> a </think> <answer> 1 </answer>")) + 1


def test_bad_input_is_rejected_with_clear_messages():
    with pytest.raises(TypeError, match="completions"):
        format_reward("not a list")
    with pytest.raises(TypeError, match=r"completions\[1\]"):
        format_reward(["a", 3])
    with pytest.raises(ValueError, match="answers must hold 2"):
        accuracy_reward(["a", "b"], [1])
    with pytest.raises(ValueError, match=r"answers\[0\] must be a number"):
        accuracy_reward(["a"], ["abc"])
    with pytest.raises(TypeError, match=r"answers\[0\]"):
        accuracy_reward(["a"], [None])
    with pytest.raises(ValueError, match="format_weight"):
        r1_reward(["a"], [1], format_weight=-1.0)
    with pytest.raises(ValueError, match="placeholder"):
        r1_prompt("q", template="no slot")
    with pytest.raises(ValueError, match="question"):
        r1_prompt("   ")
    with pytest.raises(ValueError, match="tag"):
        format_trace("a </think> b", 1)
    with pytest.raises(ValueError, match="prompts must hold 2"):
        rejection_sample(["p"], ["a", "b"], [1, 1])
    with pytest.raises(ValueError, match="max_per_prompt"):
        rejection_sample(["p"], ["a"], [1], max_per_prompt=0)
    with pytest.raises(ValueError, match="traces must hold at least one"):
        distillation_examples([], encode, 1)
    with pytest.raises(TypeError, match=r"traces\[0\]"):
        distillation_examples([("p", "c")], encode, 1)
