"""Test configuration: staged data, threads, and the parity record that `aicanon verify` writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STAGED = ROOT.parent / "shared" / "data"

# CI exports AICANON_DATA=../shared/data; a developer's checkout beside shared/ gets the same default.
if not os.environ.get("AICANON_DATA") and STAGED.is_dir():
    os.environ["AICANON_DATA"] = str(STAGED)
os.environ.setdefault("AICANON_PROGRESS", "0")
# Downloads are never allowed from tests.
os.environ["AICANON_OFFLINE"] = "1"


def pytest_configure(config: pytest.Config) -> None:
    import torch
    from hypothesis import settings

    # CI must give the same verdict on the same commit: there hypothesis draws a fixed sequence of
    # examples. Developers keep random exploration (and its database of failures) locally.
    settings.register_profile("ci", derandomize=True, database=None)
    if os.environ.get("CI"):
        settings.load_profile("ci")

    # The suite runs as two pytest-xdist workers on two cores (README, .ci/run): one torch thread each.
    # Several threads per worker oversubscribe the cores, and the small models here then slow down
    # by an order of magnitude while threads wait on each other.
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def base_cache(tmp_path_factory) -> str:
    """One cache of the align experiments' pre-trained base models per test session (per xdist
    worker): LoRA, InstructGPT and DPO pre-train a base once, as `aicanon reproduce` does with
    results/_cache/char_lm, and a base of the same configuration is shared between them."""
    return str(tmp_path_factory.mktemp("align-base"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--paper", action="append", default=[], help="run only the tests of this paper slug")
    parser.addoption(
        "--record-parity", action="store_true", help="write results/<slug>/parity.json from parity tests"
    )


def _paper_of(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("paper")
    return marker.args[0] if marker and marker.args else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = set(config.getoption("--paper"))
    if wanted:
        keep = [i for i in items if _paper_of(i) in wanted]
        config.hook.pytest_deselected(items=[i for i in items if _paper_of(i) not in wanted])
        items[:] = keep


_parity: dict[str, dict[str, list[str]]] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    item_info = _items.get(report.nodeid)
    if item_info is None:
        return
    slug = item_info
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        bucket = _parity.setdefault(slug, {"passed": [], "failed": [], "skipped": []})
        bucket[report.outcome].append(report.nodeid)


_items: dict[str, str] = {}


def pytest_itemcollected(item: pytest.Item) -> None:
    if item.get_closest_marker("parity") is not None and _paper_of(item):
        _items[item.nodeid] = _paper_of(item)  # type: ignore[assignment]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not session.config.getoption("--record-parity"):
        return
    import json

    from aicanon.core.environment import environment
    from aicanon.core.results import results_dir

    for slug, outcome in _parity.items():
        folder = results_dir() / slug
        folder.mkdir(parents=True, exist_ok=True)
        env = environment("cpu")
        record = {
            "slug": slug,
            "passed": len(outcome["passed"]),
            "failed": len(outcome["failed"]),
            "skipped": len(outcome["skipped"]),
            "ok": not outcome["failed"] and bool(outcome["passed"]),
            "tests": outcome,
            "commit": env["commit"],
            "date": env["date"],
            "versions": {"torch": env["torch"]},
        }
        (folder / "parity.json").write_text(json.dumps(record, indent=2) + "\n")
