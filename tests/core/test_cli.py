import json
import sys

import pytest
from typer.testing import CliRunner

from aicanon import catalog, cli

from . import fake_experiment

runner = CliRunner()


@pytest.fixture
def fake(monkeypatch, tmp_path):
    """Make `gat` resolve to the fake experiment so reproduce can be tested without training."""
    monkeypatch.setitem(sys.modules, "aicanon.experiments.gat", fake_experiment)
    monkeypatch.setattr(catalog, "is_implemented", lambda paper: paper.slug == "gat")
    monkeypatch.setenv("AICANON_RESULTS", str(tmp_path))
    return tmp_path


def test_list_shows_100_papers():
    result = runner.invoke(cli.app, ["list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert sum(1 for p in catalog.papers() if f" {p.slug} " in result.output) == 100


def test_list_filters_and_rejects_bad_filters():
    result = runner.invoke(cli.app, ["list", "--area", "graphs"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and " gat " in result.output and " vit " not in result.output
    result = runner.invoke(cli.app, ["list", "--area", "cooking"])
    assert result.exit_code == 2 and "--area must be one of" in result.output


def test_unknown_slug_exits_2_with_suggestion():
    result = runner.invoke(cli.app, ["show", "gta"])
    assert result.exit_code == 2 and "did you mean gat" in result.output
    result = runner.invoke(cli.app, ["reproduce", "gta"])
    assert result.exit_code == 2 and "did you mean gat" in result.output


def test_reproduce_json_pass_and_fail_exit_codes(fake):
    result = runner.invoke(cli.app, ["reproduce", "gat", "--json", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["slug"] == "gat" and record["passed"] and record["seeds"] == [0, 1]
    assert (fake / "gat").exists()
    # full thresholds: score >= 1.5 holds with value 2.0; --seeds 1 --seed 5 are honoured
    result = runner.invoke(cli.app, ["reproduce", "gat", "--full", "--seeds", "1", "--seed", "5", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["seeds"] == [5]


def test_reproduce_threads_are_set_for_the_run_and_restored(fake, monkeypatch):
    import torch

    seen = []
    original_run = fake_experiment.run
    monkeypatch.setattr(
        fake_experiment, "run", lambda cfg: seen.append(torch.get_num_threads()) or original_run(cfg)
    )
    before = torch.get_num_threads()
    wanted = 2 if before != 2 else 3
    result = runner.invoke(cli.app, ["reproduce", "gat", "--threads", str(wanted), "--json"])
    assert result.exit_code == 0, result.output
    assert seen and set(seen) == {wanted}
    assert torch.get_num_threads() == before
    assert json.loads(result.stdout)["command"].endswith(f"--threads {wanted}")


def test_reproduce_claim_failure_exits_1(fake, monkeypatch):
    original = fake_experiment.Config.full
    monkeypatch.setattr(
        fake_experiment.Config, "full", classmethod(lambda cls: original().__class__(scale="full", value=1.0))
    )
    result = runner.invoke(cli.app, ["reproduce", "gat", "--full"])
    assert result.exit_code == 1


def test_reproduce_bad_usage_exits_2(fake):
    assert runner.invoke(cli.app, ["reproduce"]).exit_code == 2
    assert runner.invoke(cli.app, ["reproduce", "gat", "--quick", "--full"]).exit_code == 2
    assert runner.invoke(cli.app, ["reproduce", "gat", "--seeds", "0"]).exit_code == 2
    assert runner.invoke(cli.app, ["reproduce", "gat", "--device", "tpu"]).exit_code == 2
    assert runner.invoke(cli.app, ["reproduce", "gat", "--threads", "0"]).exit_code == 2
    assert runner.invoke(cli.app, ["reproduce", "vit"]).exit_code == 2  # not implemented


def test_reproduce_missing_data_exits_2(fake, monkeypatch):
    from aicanon.core.data import fetch

    def run(cfg):
        fetch("planetoid", "ind.pubmed.allx")

    monkeypatch.setattr(fake_experiment, "run", run)
    result = runner.invoke(cli.app, ["reproduce", "gat"])
    assert result.exit_code == 2 and "ind.pubmed.allx" in result.output


def test_report_writes_results_md(fake, tmp_path):
    assert runner.invoke(cli.app, ["reproduce", "gat"]).exit_code == 0
    target = tmp_path / "RESULTS.md"
    result = runner.invoke(cli.app, ["report", "--path", str(target)])
    assert result.exit_code == 0
    text = target.read_text()
    assert "score is high" in text and "fake experiment: no paper behind it" in text
    # Each paper has a section with its plots embedded beside its claims, linked relative to RESULTS.md.
    assert "### 4. Graph Attention Networks (`gat`)" in text and "(#4-graph-attention-networks-gat)" in text
    images = [line for line in text.splitlines() if line.startswith("![quick: curve](")]
    assert len(images) == 1
    relative = images[0][len("![quick: curve](") : -1]
    assert not relative.startswith("/") and (target.parent / relative).is_file()


def test_data_status_and_verify():
    result = runner.invoke(cli.app, ["data", "verify"], env={"COLUMNS": "250"})
    assert result.exit_code == 0 and "ind.cora.x" in result.output and " ok " in result.output
    assert runner.invoke(cli.app, ["data"]).exit_code == 0


def test_show_a_partly_built_paper_names_what_is_missing(monkeypatch):
    paper = catalog.get("instructgpt")
    first = paper.modules[0]
    monkeypatch.setattr(catalog, "module_exists", lambda dotted: dotted == first)
    result = runner.invoke(cli.app, ["show", "instructgpt"], env={"COLUMNS": "300"})
    assert result.exit_code == 0 and "status: planned" in result.output
    assert f"built so far: aicanon.{first}" in result.output
    assert f"missing aicanon.{paper.modules[1]}" in result.output


def test_report_reads_the_papers_numbers_from_the_experiment_as_it_is_now(fake, tmp_path, monkeypatch):
    from aicanon.core.experiment import Claim

    assert runner.invoke(cli.app, ["reproduce", "gat"]).exit_code == 0
    # A later audit corrects the paper's number and source; the recorded run is not rerun.
    corrected = [Claim("score", "score is high", paper=2.25, source="Table 9", quick=0.5, full=1.5)]
    monkeypatch.setattr(fake_experiment, "CLAIMS", corrected)
    target = tmp_path / "RESULTS.md"
    assert runner.invoke(cli.app, ["report", "--path", str(target)]).exit_code == 0
    row = next(line for line in target.read_text().splitlines() if "score is high" in line)
    assert "2.25" in row and "Table 9" in row and "1.5" not in row.split("|")[7]
    assert "loss is low" in target.read_text()  # a claim gone from CLAIMS keeps the run's own text


def test_reproduce_checks_out_and_seed_before_running(fake, monkeypatch, tmp_path):
    ran = []
    monkeypatch.setattr(fake_experiment, "run", lambda cfg: ran.append(cfg) or pytest.fail("ran"))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = runner.invoke(cli.app, ["reproduce", "gat", "--out", str(blocker / "results")])
    assert result.exit_code == 2 and "--out" in result.output and "not a writable folder" in result.output
    result = runner.invoke(cli.app, ["reproduce", "gat", "--seed", "99999999999999999999"])
    assert result.exit_code == 2 and "--seed must be in [0, 2**63)" in result.output
    assert not ran


def test_bench_passes_device_on_and_refuses_a_missing_one(monkeypatch):
    import subprocess

    import torch

    calls = []
    monkeypatch.setattr(subprocess, "call", lambda argv: calls.append(argv) or 0)
    assert runner.invoke(cli.app, ["bench", "gat", "--device", "cpu", "--repeats", "1"]).exit_code == 0
    assert calls[-1][-4:] == ["--device", "cpu", "--repeats", "1"]
    assert runner.invoke(cli.app, ["bench", "gat", "--", "--device=cpu"]).exit_code == 0
    assert calls[-1][-1] == "--device=cpu"
    if not torch.cuda.is_available():
        result = runner.invoke(cli.app, ["bench", "gat", "--", "--device", "cuda"])
        assert result.exit_code == 2 and "torch sees no CUDA device" in result.output
    result = runner.invoke(cli.app, ["bench", "gat", "--device", "tpu"])
    assert result.exit_code == 2 and "device must be one of" in result.output


@pytest.mark.parametrize("setting", ["unset", "empty", "a file"])
def test_data_verify_fails_and_says_why_when_files_are_missing(setting, monkeypatch, tmp_path):
    monkeypatch.setenv("AICANON_CACHE", str(tmp_path / "cache"))
    if setting == "unset":
        monkeypatch.delenv("AICANON_DATA", raising=False)
        reason = "AICANON_DATA is unset"
    elif setting == "empty":
        (tmp_path / "empty").mkdir()
        monkeypatch.setenv("AICANON_DATA", str(tmp_path / "empty"))
        reason = "absent datasets: "
    else:
        (tmp_path / "file").write_text("x")
        monkeypatch.setenv("AICANON_DATA", str(tmp_path / "file"))
        reason = "is not a directory"
    result = runner.invoke(cli.app, ["data", "verify"], env={"COLUMNS": "400"})
    assert result.exit_code == 1
    assert reason in " ".join(result.output.split())


def test_reproduce_out_is_where_everything_the_run_keeps_goes(fake, monkeypatch, tmp_path):
    import os

    from aicanon.core.results import results_dir

    seen = []
    original = fake_experiment.run
    monkeypatch.setattr(fake_experiment, "run", lambda cfg: seen.append(results_dir()) or original(cfg))
    monkeypatch.setenv("AICANON_RESULTS", os.environ["AICANON_RESULTS"])  # restored after the test
    assert runner.invoke(cli.app, ["reproduce", "gat", "--out", str(tmp_path / "elsewhere")]).exit_code == 0
    assert seen and all(path == tmp_path / "elsewhere" for path in seen)
