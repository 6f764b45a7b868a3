"""Timing shared by the benchmark scripts: ours against a reference, on the same inputs, in one process.

The callables under comparison run alternately, repeat after repeat, so machine noise (another job,
frequency scaling, a cache flushed) hits them alike; on CUDA each timed call sits between two device
synchronisations, so the time covers the work and not only its launch. A script reports the median
(typical cost) or the minimum (the least disturbed run: robust on a shared machine) of the repeats.

Scripts run as ``python benchmarks/bench_x.py`` (or ``aicanon bench SLUG``), so this folder is
``sys.path[0]`` and ``import _timing`` finds this module.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch

from aicanon.core.device import select_device


@dataclass
class Timing:
    """Seconds per call over the repeats of one callable, and what its last call returned."""

    times: list[float] = field(default_factory=list)
    result: object = None

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def min(self) -> float:
        return min(self.times)

    def statistic(self, name: str) -> float:
        """``median`` or ``min``: the statistic a script reports."""
        if name not in ("median", "min"):
            raise ValueError(f"statistic must be 'median' or 'min', got {name!r}")
        return self.median if name == "median" else self.min


def synchronize(device: torch.device | None) -> None:
    """Wait for queued CUDA work, so that a timer read afterwards covers it."""
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)


def time_alternately(
    callables: Mapping[str, Callable[[], object]],
    repeats: int,
    device: torch.device | None = None,
    *,
    warmup: int = 1,
    number: int = 1,
    before_each: Mapping[str, Callable[[], None]] | None = None,
) -> dict[str, Timing]:
    """Time each named callable ``repeats`` times, alternating between them, after ``warmup`` rounds.

    One sample is ``number`` calls between two synchronisations of ``device`` (None: no device to
    wait for, e.g. numpy), divided by ``number``: ``number > 1`` amortises the synchronisation for
    operations of microseconds. ``before_each[name]``, when given, runs untimed before every
    sample of that callable (e.g. clearing gradients).
    """
    before_each = before_each or {}
    timings = {name: Timing() for name in callables}
    for _ in range(warmup):  # first calls pay for allocation, autotuning, lazy imports
        for fn in callables.values():
            fn()
    for _ in range(repeats):
        for name, fn in callables.items():
            if name in before_each:
                before_each[name]()
            synchronize(device)
            start = time.perf_counter()
            for _ in range(number):
                timings[name].result = fn()
            synchronize(device)
            timings[name].times.append((time.perf_counter() - start) / number)
    return timings


def print_comparison(
    label: str,
    timings: Mapping[str, Timing | None],
    statistic: str = "median",
    *,
    ours: str = "ours",
    references: tuple[str, ...] | None = None,
    note: str = "",
    width: int = 44,
) -> None:
    """One line: ``label  ours X ms   ref Y ms   ratio ours/ref R ... note`` (ratio below 1: ours faster).

    Every name in ``timings`` but ``ours`` is printed in order; the names in ``references`` (default:
    all of them) get a ratio, the others only their time. A timing of None prints ``skipped``.
    """
    if references is None:
        references = tuple(name for name in timings if name != ours)
    ours_ms = 1e3 * timings[ours].statistic(statistic)
    parts = [f"{label:<{width}}", f"{ours} {ours_ms:9.3f} ms"]
    for name, timing in timings.items():
        if name == ours:
            continue
        if timing is None:
            parts.append(f"{name} {'skipped':>12}")
            continue
        ms = 1e3 * timing.statistic(statistic)
        parts.append(f"{name} {ms:9.3f} ms")
        if name in references:
            parts.append(f"ratio {ours}/{name} {ours_ms / ms:5.2f}")
    if note:
        parts.append(note)
    print("   ".join(parts))


def parse_common_args(
    parser: argparse.ArgumentParser,
    *,
    repeats: int,
    threads: int = 0,
    device: str = "auto",
    device_help: str = "auto (CUDA when present), cpu, cuda or cuda:N",
) -> argparse.Namespace:
    """Add --device, --threads and --repeats, parse, set torch's CPU threads and resolve the device.

    ``args.device`` comes back as a ``torch.device``. ``--threads 0`` leaves torch's default.
    """
    parser.add_argument("--device", default=device, help=device_help)
    parser.add_argument(
        "--threads", type=int, default=threads, help="torch CPU threads (0: leave torch's default)"
    )
    parser.add_argument("--repeats", type=int, default=repeats, help="timed calls of each")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.device = select_device(args.device)
    return args


def print_setup(args: argparse.Namespace, statistic: str, what: str = "") -> None:
    """The header line: device, torch version, threads, what is timed, which statistic of how many."""
    what = f"{what}, " if what else ""
    print(
        f"device {args.device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"{what}{statistic} of {args.repeats}"
    )


def compare_image_models(
    label: str,
    ours: torch.nn.Module,
    reference: torch.nn.Module,
    x: torch.Tensor,
    repeats: int,
    device: torch.device | str | None,
    *,
    reference_name: str = "timm",
    width: int = 44,
) -> None:
    """Forward + backward of two image models with the same weights on the same batch ``x``, timed
    alternately; prints one comparison line with the largest output difference (checked first: a
    benchmark of two different functions means nothing)."""
    with torch.no_grad():
        difference = (ours(x) - reference(x)).abs().max().item()
    timings = time_alternately(
        {
            "ours": lambda: ours(x).square().sum().backward(),
            reference_name: lambda: reference(x).square().sum().backward(),
        },
        repeats,
        device,
        warmup=2,
        before_each={
            "ours": lambda: ours.zero_grad(set_to_none=True),
            reference_name: lambda: reference.zero_grad(set_to_none=True),
        },
    )
    print_comparison(label, timings, "median", note=f"max |diff| {difference:.1e}", width=width)
