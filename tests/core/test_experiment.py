import json

import pytest

from aicanon.core import experiment as ex
from aicanon.core import results

from . import fake_experiment


@pytest.fixture
def fake():
    return fake_experiment


def test_claim_check_directions_and_reported_only():
    up = ex.Claim("m", "d", paper=1.0, source="T1", quick=0.5, full=None)
    assert up.check(0.5, "quick") is True
    assert up.check(0.49, "quick") is False
    assert up.check(10.0, "full") is None
    assert up.check(float("nan"), "quick") is False
    down = ex.Claim("m", "d", paper=1.0, source="T1", quick=0.5, higher_is_better=False)
    assert down.check(0.4, "quick") is True and down.check(0.6, "quick") is False
    with pytest.raises(ValueError, match="scale must be one of"):
        up.threshold("medium")


def test_reproduce_averages_seeds_and_checks_means(fake):
    cfg = ex.make_config(fake, "quick", noise=0.1, device="cpu")
    rep = ex.reproduce(fake, cfg, slug="fake-paper")
    assert rep.seeds == [0, 1]
    assert len(rep.per_seed) == 2 and rep.per_seed[0]["score"] != rep.per_seed[1]["score"]
    assert rep.metrics["score"] == pytest.approx(sum(m["score"] for m in rep.per_seed) / 2)
    assert rep.metrics_std["score"] > 0
    assert [c.passed for c in rep.claims] == [True, None]
    assert rep.passed and rep.notes == ["fake experiment: no paper behind it"]


def test_reproduce_fails_when_a_claim_fails(fake):
    cfg = ex.make_config(fake, "full", value=1.0, device="cpu")  # full threshold is 1.5
    rep = ex.reproduce(fake, cfg, slug="fake-paper")
    assert [c.passed for c in rep.claims] == [False, True]
    assert not rep.passed


def test_same_seed_same_metrics(fake):
    cfg = ex.make_config(fake, "quick", noise=1.0, device="cpu")
    assert ex.reproduce(fake, cfg, slug="fake-paper").per_seed == ex.reproduce(fake, cfg, slug="fake-paper").per_seed


def test_make_config_rejects_unknown_fields_and_scales(fake):
    with pytest.raises(ValueError, match="has no field 'lr'"):
        ex.make_config(fake, "quick", lr=0.1)
    with pytest.raises(ValueError, match="scale must be one of"):
        ex.make_config(fake, "huge")
    with pytest.raises(ValueError, match="seeds must be >= 1"):
        ex.reproduce(fake, ex.make_config(fake, "quick", seeds=0), slug="fake-paper")


def test_results_written_and_latest_found(fake, tmp_path):
    rep = ex.reproduce(fake, ex.make_config(fake, "quick", device="cpu"), slug="fake-paper")
    folder = results.write(rep, tmp_path, command="aicanon reproduce fake-paper --quick")
    data = json.loads((folder / "result.json").read_text())
    assert data["passed"] is True and data["plots"] == ["curve.png"]
    assert (folder / "curve.png").stat().st_size > 0
    assert data["environment"]["torch"] and data["command"].endswith("--quick")
    latest = results.latest("fake-paper", "quick", tmp_path)
    assert latest is not None and latest["timestamp"] == data["timestamp"]
    assert results.latest("fake-paper", "full", tmp_path) is None


def test_run_sees_each_seed_and_the_total(fake, monkeypatch):
    seen = []
    original = fake.run

    def spy(cfg):
        seen.append((cfg.seed, cfg.seeds))
        return original(cfg)

    monkeypatch.setattr(fake, "run", spy)
    ex.reproduce(fake, ex.make_config(fake, "full", seed=4, device="cpu"), slug="fake-paper")
    assert seen == [(4, 3), (5, 3), (6, 3)]


def test_reproduce_hands_run_the_resolved_device_and_applies_threads(fake, monkeypatch):
    import torch

    seen = []
    original = fake.run

    def spy(cfg):
        seen.append((cfg.device, torch.get_num_threads()))
        return original(cfg)

    monkeypatch.setattr(fake, "run", spy)
    before = torch.get_num_threads()
    rep = ex.reproduce(fake, ex.make_config(fake, "quick", device="auto", threads=1), slug="fake-paper")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert seen == [(expected, 1), (expected, 1)] and rep.device == expected
    assert rep.config["threads"] == 1 and torch.get_num_threads() == before


def test_reproduce_refuses_a_module_that_is_not_an_experiment():
    import types

    with pytest.raises(TypeError, match="lacks Config"):
        ex.reproduce(types.ModuleType("nothing"), ex.ExperimentConfig(), slug="nothing")


def test_a_claimed_metric_missing_from_the_result_fails_the_claim_and_the_run(fake, monkeypatch):
    original = fake.run

    def without_loss(cfg):
        result = original(cfg)
        del result.metrics["loss"]
        return result

    monkeypatch.setattr(fake, "run", without_loss)
    # "loss" is claimed at full scale: missing, the claim and the run fail.
    rep = ex.reproduce(fake, ex.make_config(fake, "full", device="cpu"), slug="fake-paper")
    by_metric = {c.metric: c for c in rep.claims}
    assert by_metric["loss"].passed is False and by_metric["loss"].ours is None
    assert not rep.passed
    assert any("missing from the run's result" in note and "loss" in note for note in rep.notes)
    # At quick scale it is only reported: an arm that runs at full scale only may lack it.
    rep = ex.reproduce(fake, ex.make_config(fake, "quick", device="cpu"), slug="fake-paper")
    assert {c.metric: c.passed for c in rep.claims}["loss"] is None and rep.passed


def test_a_metric_some_seeds_lack_is_not_averaged_over_the_others(fake, monkeypatch):
    original = fake.run

    def seed_1_without_score(cfg):
        result = original(cfg)
        if cfg.seed == 1:
            del result.metrics["score"]
        return result

    monkeypatch.setattr(fake, "run", seed_1_without_score)
    rep = ex.reproduce(fake, ex.make_config(fake, "quick", device="cpu"), slug="fake-paper")
    assert "score" not in rep.metrics
    assert {c.metric: c.passed for c in rep.claims}["score"] is False and not rep.passed


def test_latest_skips_records_that_are_not_results_with_a_warning(tmp_path):
    good = ex.reproduce(fake_experiment, ex.make_config(fake_experiment, "quick", device="cpu"), slug="fake-paper")
    results.write(good, tmp_path)
    newer = tmp_path / "fake-paper" / "99999999T999999999999Z-quick"
    newer.mkdir()
    (newer / "result.json").write_text("{}")
    with pytest.warns(UserWarning, match=r"skipping .*99999999T999999999999Z-quick.*lacks slug"):
        record = results.latest("fake-paper", "quick", tmp_path)
    assert record is not None and record["passed"] is True


def test_an_interrupted_reproduction_resumes_without_rerunning_finished_seeds(fake, monkeypatch, tmp_path):
    cfg = ex.make_config(fake, "full", noise=0.5, device="cpu")  # seeds 0, 1, 2
    uninterrupted = ex.reproduce(fake, cfg, slug="fake-paper")
    original = fake.run
    ran = []

    def killed_at_seed_2(seed_cfg):
        if seed_cfg.seed == 2:
            raise KeyboardInterrupt  # the injected kill, after seeds 0 and 1 finished
        ran.append(seed_cfg.seed)
        return original(seed_cfg)

    monkeypatch.setattr(fake, "run", killed_at_seed_2)
    with pytest.raises(KeyboardInterrupt):
        ex.reproduce(fake, cfg, slug="fake-paper", resume_dir=tmp_path)
    assert ran == [0, 1]

    def counting(seed_cfg):
        ran.append(seed_cfg.seed)
        return original(seed_cfg)

    monkeypatch.setattr(fake, "run", counting)
    resumed = ex.reproduce(fake, cfg, slug="fake-paper", resume_dir=tmp_path)
    assert ran == [0, 1, 2]  # only the missing seed ran again
    assert resumed.per_seed == uninterrupted.per_seed and resumed.metrics == uninterrupted.metrics
    assert set(resumed.figures) == {"curve"} and resumed.details == uninterrupted.details
    assert any("resumed: 2 of 3 seeds" in note for note in resumed.notes)
    # Written, the finished seeds are forgotten: the same command starts afresh next time.
    results.write(resumed, tmp_path)
    assert not list((tmp_path / "fake-paper").glob(".unfinished-*"))


def test_a_rerun_with_another_config_does_not_reuse_finished_seeds(fake, monkeypatch, tmp_path):
    ex.reproduce(fake, ex.make_config(fake, "quick", value=1.0, device="cpu"), slug="fake-paper", resume_dir=tmp_path)
    other = ex.reproduce(
        fake, ex.make_config(fake, "quick", value=3.0, device="cpu"), slug="fake-paper", resume_dir=tmp_path
    )
    assert [m["score"] for m in other.per_seed] == [3.0, 3.0]
    assert not any(note.startswith("resumed") for note in other.notes)


def test_make_config_runs_the_configs_own_checks_on_overrides():
    import dataclasses
    import types

    @dataclasses.dataclass
    class Config(ex.ExperimentConfig):
        width: int = 4

        def __post_init__(self) -> None:
            if self.width < 1:
                raise ValueError(f"width must be >= 1, got {self.width}")

        @classmethod
        def quick(cls):
            return cls(scale="quick")

        @classmethod
        def full(cls):
            return cls(scale="full", width=8)

    module = types.SimpleNamespace(Config=Config)
    assert ex.make_config(module, "full", seeds=2).width == 8
    with pytest.raises(ValueError, match="width must be >= 1, got 0"):
        ex.make_config(module, "quick", width=0)
