"""aicanon.evals.sparks and sparks_checkers: the sandbox's limits, each checker on hand-computed
cases (a PASS printer, an always-equal object, occluded and off-canvas shapes, hedges, fabricated
tool output), the rasteriser against areas computed by hand, property tests of the calculator and
the expression checker, the suite's generation and its oracle over real HTTP, the validation against
hand labels (strict checkers agree with every label; naive ones accept adversarial outputs), bad input."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aicanon.evals.sparks import (
    CODE_PROBLEMS,
    FAMILIES,
    SEARCH,
    Item,
    OracleResponder,
    build_suite,
    check_output,
    code_item,
    hand_labelled_candidates,
    math_derivative,
    run_suite,
    spatial_item,
    tom_dropbox,
    validate_checkers,
)
from aicanon.evals.sparks_checkers import (
    FakeSearch,
    calculator,
    check_code,
    check_expression_answer,
    check_false_belief,
    check_numeric_answer,
    check_svg_relation,
    check_tool_transcript,
    extract_code,
    parse_svg,
    parse_tool_calls,
    rasterize,
    run_python,
    safe_expression,
    stated_answer,
)
from aicanon.language.http_backend import OpenAICompatibleLanguageModel
from aicanon.language.server import BackgroundServer, create_app

pytestmark = pytest.mark.paper("sparks-agi")

ADD = [([1, 2], 3), ([-4, 4], 0), ([10, 5], 15)]


# -- the sandbox ---------------------------------------------------------------------------------


def test_sandbox_runs_isolated_in_a_temporary_folder():
    os.environ["SPARKS_TEST_SECRET"] = "hidden"
    try:
        result = run_python(
            "import os, sys\nprint(os.getcwd())\nprint(os.environ.get('SPARKS_TEST_SECRET'))\n"
            "print(sys.flags.isolated, sys.flags.no_site)\nprint(open('data.txt').read())\n",
            {"data.txt": "given"},
        )
    finally:
        del os.environ["SPARKS_TEST_SECRET"]
    folder, secret, flags, data = result.stdout.splitlines()
    assert result.returncode == 0 and not result.timed_out
    assert secret == "None"  # the parent's environment does not leak in
    assert flags == "1 1" and data == "given"
    assert os.path.basename(folder).startswith("sparks-") and not os.path.exists(folder)  # removed afterwards


def test_sandbox_limits_time_memory_and_file_size():
    loop = run_python("while True:\n    pass\n", timeout=10.0, cpu_seconds=1)
    assert loop.returncode != 0  # killed by RLIMIT_CPU well before the 10 s wall clock
    sleeper = run_python("import time\ntime.sleep(30)\n", timeout=0.5)
    assert sleeper.timed_out and sleeper.returncode is None
    memory = run_python("x = bytearray(2 * 1024 ** 3)\n", memory_mb=256)
    assert memory.returncode != 0 and "MemoryError" in memory.stderr
    big_file = run_python("open('f', 'w').write('x' * (4 * 1024 * 1024))\n")
    assert big_file.returncode != 0  # RLIMIT_FSIZE: 1 MiB


def test_code_checker_accepts_solutions_and_rejects_cheats():
    good = "```python\ndef add(a, b):\n    print('noise')\n    return a + b\n```"
    assert check_code(good, "add", ADD).passed
    assert extract_code("text\n```py\nx = 1\n```\nmore") == "x = 1\n"
    cheats = {
        "prints PASS, exits": "import os\nprint('PASS', flush=True)\nos._exit(0)\n",
        "sys.exit while loading": "import sys\nsys.exit(0)\n",
        "always equal": "class E:\n    def __eq__(self, o):\n        return True\n"
        "def add(a, b):\n    return E()\n",
        "False for 0": "def add(a, b):\n    return False if a + b == 0 else a + b\n",
        "patched builtins": "import builtins\nbuiltins.isinstance = lambda *a: True\n"
        "def add(a, b):\n    return 0\n",
        "fake result line": "print('@@SPARKS-RESULT@@{\"outputs\": []}')\ndef add(a, b):\n    return 0\n",
        "hard-coded example": "def add(a, b):\n    return 3\n",
    }
    for name, code in cheats.items():
        assert not check_code(code, "add", ADD).passed, name
    # True is not 1: a type-strict comparison
    assert not check_code("def f():\n    return True\n", "f", [([], 1)]).passed
    assert check_code("def f():\n    return 1.0\n", "f", [([], 1)]).passed  # 1.0 == 1 as JSON numbers


def test_every_reference_solution_passes_its_hidden_tests():
    for name in CODE_PROBLEMS:
        item = code_item(name)
        assert check_output(item, item.reference[0]).passed, name


# -- mathematics ---------------------------------------------------------------------------------


def test_stated_answer_and_numeric_checks():
    assert stated_answer("so \\boxed{\\frac{1}{2}} here") == "\\frac{1}{2}"
    assert stated_answer("Thus the answer is: $42$.\nDone") == "42"
    assert stated_answer("no answer") is None
    assert check_numeric_answer("The answer is 1,200.", 1200).passed
    assert check_numeric_answer("The answer is 0.5", 0.5).passed
    assert not check_numeric_answer("The answer is 6 or 7.", 6).passed
    assert not check_numeric_answer("6 is in the working. The answer is 7.", 6).passed
    assert not check_numeric_answer("6", 6).passed  # stated nowhere


def test_expression_checker_is_equivalence_not_string_match():
    expected = "12*x**2 + 6*x - 5"
    for text in (
        "The answer is 12x^2 + 6x - 5.",
        "The answer is 6x(2x+1) - 5",
        "The answer is (24x^2 + 12x - 10)/2",
    ):
        assert check_expression_answer(text, expected).passed, text
    assert not check_expression_answer("The answer is 12x^2 + 6x + 5", expected).passed
    assert not check_expression_answer("The answer is 12y^2", expected).passed
    for hostile in ("__import__('os').system('true')", "x.__class__", "(lambda: 1)()", "9**9**9", "'a'"):
        with pytest.raises(ValueError):
            safe_expression(hostile)


@pytest.mark.parity
def test_expression_equivalence_agrees_with_sympy():
    sympy = pytest.importorskip("sympy")
    from sympy.parsing.sympy_parser import (
        implicit_multiplication_application,
        parse_expr,
        standard_transformations,
    )

    transformations = standard_transformations + (implicit_multiplication_application,)
    expected = "12*x**2 + 6*x - 5"
    answers = [
        "12x^2 + 6x - 5",
        "6x(2x + 1) - 5",
        "(24x^2 + 12x - 10)/2",
        "12x^2 + 6x + 5",
        "12x^2 - 5 + 6x",
        "(2x + 1)(6x) - 5",
        "12(x + 0.5)^2 - 8",
        "12(x + 0.25)^2 - 5.75",
        "x^2",
        "(x - 1)(x + 1) + 11x^2 + 6x - 4",
    ]
    for answer in answers:
        theirs = parse_expr(answer.replace("^", "**"), transformations=transformations)
        same = sympy.simplify(theirs - sympy.sympify(expected)) == 0
        ours = check_expression_answer(f"The answer is {answer}.", expected).passed
        assert ours == same, answer


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 9), st.integers(1, 9), st.integers(1, 9))
def test_the_derivative_items_reference_and_shifted_answer(a, b, c):
    item = math_derivative(a, b, c)
    assert check_output(item, item.reference[0]).passed
    assert not check_output(item, f"The answer is {3 * a}x^2 + {2 * b}x - {c + 1}.").passed


@pytest.mark.parity
@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(-1000, 1000), min_size=2, max_size=5),
    st.lists(st.sampled_from("+-*"), min_size=4, max_size=4),
)
def test_calculator_agrees_with_python_on_integer_arithmetic(numbers, operators):
    expression = str(numbers[0]) + "".join(
        f" {op} {n}" for op, n in zip(operators, numbers[1:], strict=False)
    )
    assert calculator(expression) == str(
        eval(expression)
    )  # eval of our own integer expression, in the test only


def test_calculator_values_and_refusals():
    assert calculator("48213 * 3") == "144639"
    assert calculator("1 / 4") == "0.25"
    assert calculator("7 // 2 + 2 ** 10") == "1027"
    assert calculator("1/0").startswith("error")
    assert calculator("2 ** 1000").startswith("error")
    assert calculator("open('x')").startswith("error")


# -- theory of mind ------------------------------------------------------------------------------


def test_false_belief_checker():
    check = lambda text: check_false_belief(text, "/shared_folder/photos", "/shared_folder/tmp").passed  # noqa: E731
    assert check(
        "Alice looks in /shared_folder/photos, unaware of /shared_folder/tmp.\nAnswer: /shared_folder/photos"
    )
    assert check("Answer: the photos folder")
    assert not check("Answer: /shared_folder/tmp")
    assert not check("Answer: /shared_folder/photos or /shared_folder/tmp")
    assert not check("Answer: not /shared_folder/photos")
    assert not check("Answer: /shared_folder/photos2")  # a whole-word match
    item = tom_dropbox("Alice", "Bob", "photo.png", "photos", "tmp")
    assert (
        "Dropbox" in item.prompt
        and "'photo.png'" in item.prompt
        and item.answer["expected"] == "/shared_folder/photos"
    )


# -- spatial -------------------------------------------------------------------------------------


def _svg(*elements: str) -> str:
    return '<svg viewBox="0 0 100 100">' + "".join(elements) + "</svg>"


def test_rasterizer_areas_match_geometry():
    circle, square, triangle = rasterize(
        _svg(
            '<circle cx="25" cy="25" r="10" fill="red"/>',
            '<rect x="60" y="10" width="20" height="20" fill="blue"/>',
            '<polygon points="10,90 50,90 10,50" fill="green"/>',
        )
    )
    assert circle.kind == "circle" and circle.colour == "red"
    assert circle.mask.sum() == pytest.approx(math.pi * 100, rel=0.05)
    assert square.kind == "square" and square.mask.sum() == 400
    assert triangle.kind == "triangle" and triangle.mask.sum() == pytest.approx(800, rel=0.06)


def test_rasterizer_paints_in_order_and_translates():
    below, cover = rasterize(
        _svg(
            '<circle cx="50" cy="50" r="10" fill="red"/>',
            '<rect x="0" y="0" width="100" height="100" fill="white"/>',
        )
    )
    assert below.mask.sum() > 0 and below.visible.sum() == 0
    (moved,) = rasterize(
        _svg('<g transform="translate(40 0)" fill="orange"><rect x="0" y="0" width="10" height="10"/></g>')
    )
    rows, cols = np.nonzero(moved.visible)
    assert (cols.min(), cols.max(), rows.max()) == (40, 49, 9) and moved.colour == "orange"
    with pytest.raises(ValueError, match="DOCTYPE"):
        parse_svg('<!DOCTYPE x [<!ENTITY a "b">]><svg viewBox="0 0 1 1"></svg>')
    with pytest.raises(ValueError, match="only translate"):
        rasterize(_svg('<rect width="5" height="5" transform="rotate(45)"/>'))


def test_svg_relation_checker():
    drawing = _svg(
        '<circle cx="50" cy="20" r="12" fill="red"/>',
        '<rect x="35" y="55" width="30" height="30" fill="#0000ff"/>',
    )
    assert check_svg_relation(drawing, ("red", "circle"), "above", ("blue", "square")).passed
    assert not check_svg_relation(drawing, ("red", "circle"), "below", ("blue", "square")).passed
    assert not check_svg_relation(drawing, ("red", "circle"), "left of", ("blue", "square")).passed
    assert check_svg_relation(drawing, ("blue", "square"), "below", ("red", "circle")).passed
    assert not check_svg_relation("<svg><circle", ("red", "circle"), "above", ("blue", "square")).passed
    odd_width = _svg('<circle cx="50" cy="20" r="12" fill="red" stroke="red" stroke-width="2em"/>')
    assert not check_svg_relation(
        odd_width, ("red", "circle"), "above", ("blue", "square")
    ).passed  # no crash
    crowd = _svg(*['<rect width="1" height="1"/>'] * 501, '<circle cx="50" cy="20" r="12" fill="red"/>')
    assert "more than 500" in check_svg_relation(crowd, ("red", "circle"), "above", ("blue", "square")).reason
    for relation in ("above", "below", "left of", "right of"):
        item = spatial_item(("purple", "triangle"), relation, ("yellow", "square"))
        assert check_output(item, item.reference[0]).passed, relation


# -- tool use ------------------------------------------------------------------------------------


def test_tool_calls_search_and_transcript_checker():
    assert parse_tool_calls('SEARCH("height of Mount Elsk")') == ("SEARCH", "height of Mount Elsk")
    assert parse_tool_calls("SEARCH(height)") is None  # quotes are part of the format
    assert parse_tool_calls("then CALC(2 * 3)") == ("CALC", "2 * 3")
    search = FakeSearch(
        {"alpha town population": "Alpha has 10 people.", "beta town population": "Beta has 20 people."}
    )
    assert search("How many people live in Beta?") == "Beta has 20 people."
    assert search("weather") == "No results."
    fact = "Beta has 20 people."
    good = f'SEARCH("population of beta")\nRESULT: {fact}\nCALC(20 * 2)\nRESULT: 40\nAnswer: 40'
    assert check_tool_transcript(good, 40, search, [fact], True).passed
    assert not check_tool_transcript(
        good.replace("RESULT: 40", "RESULT: 41"), 40, search, [fact], True
    ).passed
    assert not check_tool_transcript("Answer: 40", 40, search, [fact], True).passed
    assert not check_tool_transcript(
        good.replace("Answer: 40", "Answer: 40 or 41"), 40, search, [fact], True
    ).passed


# -- the suite -----------------------------------------------------------------------------------


def test_build_suite_is_seeded_and_covers_every_family():
    first, again, other = build_suite(3, 8), build_suite(3, 8), build_suite(4, 8)
    assert [i.prompt for i in first] == [i.prompt for i in again]
    assert [i.prompt for i in first] != [i.prompt for i in other]
    assert {i.family for i in first} == set(FAMILIES)
    assert sum(i.family == "code" for i in first) == len(CODE_PROBLEMS) == 8
    assert len({i.id for i in first}) == len(first)
    assert all(i.prompt.isascii() for i in first)  # the small model's alphabet is printable ASCII


def test_oracle_over_http_scores_every_item_and_a_silent_model_none():
    items = build_suite(1, 3, families=("math", "theory_of_mind", "spatial", "tool_use"))
    with BackgroundServer(create_app(OracleResponder(items), "oracle")) as server:
        with OpenAICompatibleLanguageModel(server.base_url, "oracle", api_key_env=None) as client:
            report = run_suite(client, items)
    assert report.score == 1.0 and all(r.passed == r.n == 3 for r in report.families.values())
    transcript = report.families["tool_use"].records[0]["output"]
    assert "RESULT:" in transcript and "Answer:" in transcript
    silent = run_suite(OracleResponder([]), items)
    assert silent.score == 0.0
    assert silent.families["math"].interval.high < 0.75  # Wilson, 0 of 3
    data = report.as_dict()
    assert data["families"]["spatial"]["records"][0]["prompt"].startswith("Draw a")


def test_strict_checkers_agree_with_every_hand_label_and_naive_ones_do_not():
    candidates = hand_labelled_candidates()
    kinds = {(c.item.family, c.kind) for c in candidates}
    assert {
        (f, k) for f in FAMILIES for k in ("correct", "subtly wrong", "malformed", "adversarial")
    } <= kinds
    strict = validate_checkers(candidates, "strict")
    for family, row in strict.items():
        mismatches = [v for v in row["verdicts"] if v["label"] != v["accepted"]]
        assert not mismatches, (family, mismatches)
        assert row["precision"] == row["recall"] == 1.0
    naive = validate_checkers(candidates, "naive")
    assert all(naive[f]["adversarial_accepted"] >= 2 for f in FAMILIES)
    assert all(naive[f]["precision"] < 0.7 for f in FAMILIES)


def test_bad_input_is_rejected():
    item = build_suite(0, 1, families=("math",))[0]
    with pytest.raises(TypeError, match="item must be an Item"):
        check_output("not an item", "x")
    with pytest.raises(TypeError, match="output must be a str"):
        check_output(item, None)
    with pytest.raises(ValueError, match="checker"):
        check_output(item, "x", checker="lenient")
    with pytest.raises(ValueError, match="items_per_family"):
        build_suite(0, 0)
    with pytest.raises(ValueError, match="families"):
        build_suite(0, 1, families=("poetry",))
    with pytest.raises(TypeError, match="LanguageModel"):
        run_suite(object(), [item])
    with pytest.raises(ValueError, match="items"):
        run_suite(OracleResponder([]), [])
    with pytest.raises(ValueError, match="timeout"):
        run_python("pass", timeout=0)
    with pytest.raises(ValueError, match="relation"):
        check_svg_relation("<svg/>", ("red", "circle"), "inside", ("blue", "square"))
    with pytest.raises(ValueError, match="cases"):
        check_code("def f(): pass", "f", [])
    with pytest.raises(ValueError, match="candidates"):
        validate_checkers([])
    with pytest.raises(ValueError, match="entries"):
        FakeSearch({})
    assert isinstance(SEARCH("Velmora population"), str) and isinstance(item, Item)
