"""Benchmark: MATH answer checking, the paper's normalise-and-compare against a sympy-only check, on the
same answer pairs in one process.

Pairs: MATH-500's given answer against the last box of its reference solution (500 pairs, all
equivalent), the same answers against their neighbour's (500 pairs, nearly all different), and the
experiment's tricky pairs. Timed: :func:`aicanon.evals.math_answers.is_equiv` (the paper's
``strip_string`` on both sides, then string equality) against
:func:`aicanon.evals.math_answers.sympy_equiv` alone (parse both into sympy, compare numerically);
prints the time per pair and the ratio paper / sympy (below 1: the paper's check is faster), and how
many pairs each calls equal.

    python benchmarks/bench_math_dataset.py [--repeats R]

(also ``aicanon bench math-dataset``).
"""

from __future__ import annotations

import argparse

import _timing

from aicanon.datasets.math import load_math
from aicanon.evals.math_answers import extract_boxed_answer, is_equiv, sympy_equiv
from aicanon.experiments.math_dataset import TRICKY_PAIRS


def answer_pairs() -> dict[str, list[tuple[str, str]]]:
    problems = load_math("math500")
    given = [p.answer for p in problems]
    extracted = [extract_boxed_answer(p.solution) for p in problems]
    return {
        "MATH-500 given vs extracted (500)": list(zip(given, extracted, strict=True)),
        "MATH-500 given vs neighbour's (500)": list(zip(given, given[1:] + given[:1], strict=True)),
        f"tricky pairs ({len(TRICKY_PAIRS)})": [(p.reference, p.candidate) for p in TRICKY_PAIRS],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args = _timing.parse_common_args(parser, repeats=5, device="cpu")
    _timing.print_setup(args, "median", "one pass over the pairs")
    import sympy  # noqa: F401  (imported before timing: its import is not part of a check)

    for label, pairs in answer_pairs().items():
        timings = _timing.time_alternately(
            {
                "paper": lambda pairs=pairs: [is_equiv(a, b) for a, b in pairs],
                "sympy": lambda pairs=pairs: [sympy_equiv(a, b) for a, b in pairs],
            },
            args.repeats,
        )
        equal_paper = sum(timings["paper"].result)
        equal_sympy = sum(timings["sympy"].result)
        _timing.print_comparison(
            label,
            timings,
            "median",
            ours="paper",
            note=f"equal: paper {equal_paper}, sympy {equal_sympy} of {len(pairs)}; "
            f"per pair {1e6 * timings['paper'].median / len(pairs):.1f} us vs "
            f"{1e6 * timings['sympy'].median / len(pairs):.1f} us",
        )


if __name__ == "__main__":
    main()
