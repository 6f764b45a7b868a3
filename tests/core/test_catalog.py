import json
from pathlib import Path

import pytest

from aicanon import catalog

SLUGS = Path(__file__).resolve().parents[3] / "shared" / "seed" / "slugs.tsv"


def test_catalog_has_the_100_papers_with_seed_slugs_and_areas():
    papers = catalog.papers()
    assert [p.rank for p in papers] == list(range(1, 101))
    if SLUGS.exists():
        rows = [line.split("\t") for line in SLUGS.read_text().strip().splitlines()[1:]]
        assert [(int(r), s, a) for r, s, a, _ in rows] == [(p.rank, p.slug, p.area) for p in papers]
    assert all(p.area in catalog.AREAS and p.kind in catalog.KINDS for p in papers)
    assert catalog.get("gat").title == "Graph Attention Networks"


def _entry(rank, slug, area="vision", kind="method"):
    return (
        f'[[paper]]\nrank = {rank}\nslug = "{slug}"\ntitle = "t"\nyear = 2020\ncitations = 1\narxiv = ""\n'
        f'area = "{area}"\npack = "p"\nkind = "{kind}"\n'
    )


def test_validation_rejects_bad_catalogs():
    good = [_entry(i, f"p{i}") for i in range(1, 101)]
    assert len(catalog.parse("\n".join(good))) == 100
    with pytest.raises(ValueError, match="ranks must be exactly 1..100"):
        catalog.parse("\n".join(good[:99]))
    with pytest.raises(ValueError, match="slugs must be unique"):
        catalog.parse("\n".join(good[:99] + [_entry(100, "p1")]))
    with pytest.raises(ValueError, match="area must be one of"):
        catalog.parse("\n".join(good[:99] + [_entry(100, "p100", area="astrology")]))
    with pytest.raises(ValueError, match="kind must be one of"):
        catalog.parse("\n".join(good[:99] + [_entry(100, "p100", kind="poem")]))


def test_unknown_slug_suggests_close_ones():
    with pytest.raises(catalog.UnknownPaper, match="did you mean gat"):
        catalog.get("gta")


def _write(base, slug, scale, passed, stamp="20260101T000000000000Z"):
    folder = base / slug / f"{stamp}-{scale}"
    folder.mkdir(parents=True)
    record = {"slug": slug, "scale": scale, "seeds": [0], "seconds": 1.0, "passed": passed, "claims": []}
    (folder / "result.json").write_text(json.dumps(record))


def test_status_is_derived_from_what_exists_and_passes(tmp_path):
    planned = next(p for p in catalog.papers() if not p.modules)  # a paper no issue has implemented yet
    assert catalog.status(planned, tmp_path) == "planned"
    paper = catalog.Paper(
        rank=4, slug="gat", title="t", year=1, citations=1, arxiv="", area="graphs", pack="p", kind="method",
        modules=("core.data",), experiment="core.experiment", reference=("torch_geometric",),
    )  # fmt: skip
    assert catalog.status(paper, tmp_path) == "implemented"  # has a reference, no parity record yet
    (tmp_path / "gat").mkdir()
    (tmp_path / "gat" / "parity.json").write_text(json.dumps({"ok": False}))
    assert catalog.status(paper, tmp_path) == "implemented"
    (tmp_path / "gat" / "parity.json").write_text(json.dumps({"ok": True}))
    assert catalog.status(paper, tmp_path) == "verified"
    _write(tmp_path, "gat", "quick", passed=False)
    assert catalog.status(paper, tmp_path) == "verified"
    _write(tmp_path, "gat", "quick", passed=True, stamp="20260102T000000000000Z")
    assert catalog.status(paper, tmp_path) == "reproduced-quick"
    _write(tmp_path, "gat", "full", passed=True)
    assert catalog.status(paper, tmp_path) == "reproduced-full"
    missing = catalog.Paper(**{**paper.__dict__, "modules": ("graphs.no_such_module",)})
    assert catalog.status(missing, tmp_path) == "planned"
