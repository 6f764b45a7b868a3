"""Benchmark: throughput of the Sparks-of-AGI suite's checkers, strict against naive, one process.

For each family, every hand-labelled candidate output (aicanon.evals.sparks.hand_labelled_candidates)
is checked by the strict checker and by the naive one (substring/tag matching, assert-then-PASS for
code), alternately, repeat after repeat; the line shows milliseconds per check and the ratio
strict / naive (the price of precision: sandboxed code with hidden tests, SVG rasterisation,
tool replay). The code family runs one child process per check for both checkers, so its time is
mostly process start-up; its candidates include one that loops until the CPU limit (1 s) ends it,
left out here (``--with-timeouts`` puts it back).

    python benchmarks/bench_sparks_agi.py [--repeats R] [--with-timeouts]

(also ``aicanon bench sparks-agi``).
"""

from __future__ import annotations

import argparse

import _timing

from aicanon.evals.sparks import FAMILIES, check_output, hand_labelled_candidates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--with-timeouts", action="store_true", help="keep the candidate that never returns")
    args = _timing.parse_common_args(parser, repeats=5)
    _timing.print_setup(args, "median", "checks of every hand-labelled candidate of a family")
    candidates = [
        c for c in hand_labelled_candidates() if args.with_timeouts or "never returns" not in c.note
    ]
    for family in FAMILIES:
        members = [c for c in candidates if c.item.family == family]

        def check_all(kind: str, members=members) -> int:
            return sum(check_output(c.item, c.output, kind).passed for c in members)

        timings = _timing.time_alternately(
            {"ours": lambda: check_all("strict"), "naive": lambda: check_all("naive")},
            args.repeats,
            None,
            warmup=1,
        )
        per_check = {
            name: _timing.Timing([t / len(members) for t in timing.times], timing.result)
            for name, timing in timings.items()
        }
        accepted = (
            f"accepted: strict {timings['ours'].result}, naive {timings['naive'].result} of {len(members)}"
        )
        _timing.print_comparison(
            f"{family} ({len(members)} candidates), per check", per_check, "median", note=accepted, width=40
        )


if __name__ == "__main__":
    main()
