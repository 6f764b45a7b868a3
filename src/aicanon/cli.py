"""The ``aicanon`` command line (also ``python -m aicanon``).

Exit status of ``reproduce``: 0 when every claim holds, 1 when a claim fails, 2 on bad usage or
missing data.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from aicanon import catalog
from aicanon.core import data as _data
from aicanon.core import results as _results
from aicanon.core.device import check_device_name
from aicanon.core.environment import project_root
from aicanon.core.progress import console as progress_console

app = typer.Typer(add_completion=False, no_args_is_help=True, help="The 100 most-cited AI papers since 2015.")
data_app = typer.Typer(add_completion=False, help="Registered datasets: where they were found, checksums.")
app.add_typer(data_app, name="data")
out = Console()
err = progress_console()

EXIT_CLAIM_FAILED = 1
EXIT_USAGE = 2


def _fail_usage(message: str) -> None:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(EXIT_USAGE)


def _check_writable(folder: Path, option: str) -> None:
    """Fail before a long run, not after it, when results cannot be written under ``folder``."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as error:
        _fail_usage(f"{option} {folder} is not a writable folder ({error.strerror or error})")


def _paper(slug: str) -> catalog.Paper:
    try:
        return catalog.get(slug)
    except catalog.UnknownPaper as error:
        _fail_usage(str(error))
        raise  # unreachable


@app.command("list")
def list_papers(
    area: str | None = typer.Option(None, help=f"only this area: {', '.join(catalog.AREAS)}"),
    status: str | None = typer.Option(None, help=f"only this status: {', '.join(catalog.STATUSES)}"),
) -> None:
    """A table of the 100 papers: rank, slug, title, area, status."""
    if area is not None and area not in catalog.AREAS:
        _fail_usage(f"--area must be one of {', '.join(catalog.AREAS)}; got {area!r}")
    if status is not None and status not in catalog.STATUSES:
        _fail_usage(f"--status must be one of {', '.join(catalog.STATUSES)}; got {status!r}")
    table = Table("rank")
    table.add_column("slug", no_wrap=True)  # slugs are what users type: never wrapped or cut
    for name in ("title", "area"):
        table.add_column(name)
    table.add_column("status", no_wrap=True)
    for paper in catalog.papers():
        paper_status = catalog.status(paper)
        if (area and paper.area != area) or (status and paper_status != status):
            continue
        table.add_row(str(paper.rank), paper.slug, paper.title, paper.area, paper_status)
    out.print(table)


@app.command()
def show(slug: str) -> None:
    """Title, citations, what is implemented where, the claims with the paper's numbers, the last results."""
    paper = _paper(slug)
    out.print(f"[bold]{paper.rank}. {paper.title}[/bold] ({paper.year})")
    out.print(f"slug {paper.slug} · area {paper.area} · kind {paper.kind} · {paper.citations:,} citations")
    if paper.url:
        out.print(f"paper: {paper.url}")
    out.print(f"status: {catalog.status(paper)}")
    out.print(f"reference: {', '.join(paper.reference) or 'none'}")
    if not catalog.is_implemented(paper):
        built = [m for m in paper.modules if catalog.module_exists(m)]
        missing = [m for m in (*paper.modules, paper.experiment) if not catalog.module_exists(m)]
        if built:
            out.print(f"built so far: {', '.join(f'aicanon.{m}' for m in built)}")
        out.print(
            f"not implemented yet: missing {', '.join(f'aicanon.{m}' for m in missing)}"
            if paper.modules
            else "not implemented yet"
        )
        return
    for module in paper.modules:
        out.print(f"module: aicanon.{module}")
    out.print(f"experiment: aicanon.{paper.experiment}  (aicanon reproduce {paper.slug} --quick)")
    claims = Table("metric", "claim", "paper", "source", "quick", "full")
    for c in catalog.load_experiment(paper.slug).CLAIMS:
        sign = "≥" if c.higher_is_better else "≤"
        claims.add_row(
            c.metric,
            c.description,
            "—" if c.paper is None else f"{c.paper:g} {c.unit}",
            c.source,
            "reported" if c.quick is None else f"{sign} {c.quick:g}",
            "reported" if c.full is None else f"{sign} {c.full:g}",
        )
    out.print(claims)
    parity = _results.parity_record(paper.slug)
    if parity:
        out.print(
            f"parity tests: {parity['passed']} passed, {parity['failed']} failed ({parity['date']}, {parity['commit']})"
        )
    for scale in ("quick", "full"):
        run = _results.latest(paper.slug, scale)
        if run:
            _print_claims(run, title=f"last {scale} run: {run['environment'].get('date')} ({run['path']})")


def _print_claims(run: dict, title: str) -> None:
    from aicanon.report import claim_cells

    table = Table("claim", "ours", "paper", "threshold", "ok", title=title)
    for claim in run["claims"]:
        table.add_row(claim["description"], *claim_cells(claim))
    out.print(table)


@app.command()
def reproduce(
    slugs: list[str] = typer.Argument(None, help="paper slugs"),
    all_: bool = typer.Option(False, "--all", help="every implemented paper"),
    quick: bool = typer.Option(False, "--quick", help="CPU-sized run (the default)"),
    full: bool = typer.Option(False, "--full", help="the paper's setting (GPU or cluster)"),
    seed: int | None = typer.Option(None, help="first seed (default: the config's)"),
    seeds: int | None = typer.Option(None, help="number of seeds (default: the config's)"),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N"),
    out_dir: Path | None = typer.Option(None, "--out", help="results folder (default: results/)"),
    as_json: bool = typer.Option(False, "--json", help="print the result JSON on stdout"),
    threads: int | None = typer.Option(
        None,
        help="torch CPU threads (default: the experiment's own setting, else torch's; 1 is far faster on "
        "a busy, shared machine)",
    ),
) -> None:
    """Run experiments, print ours / paper / threshold, write result.json and plots."""
    from aicanon.core.experiment import make_config
    from aicanon.core.experiment import reproduce as run_reproduction

    if quick and full:
        _fail_usage("choose one of --quick and --full")
    if all_ and slugs:
        _fail_usage("give slugs or --all, not both")
    if seeds is not None and seeds < 1:
        _fail_usage(f"--seeds must be >= 1; got {seeds}")
    if seed is not None and not 0 <= seed < 2**63:
        _fail_usage(f"--seed must be in [0, 2**63); got {seed}")
    try:
        check_device_name(device)
    except ValueError as error:
        _fail_usage(f"--device: {error}")
    if threads is not None and threads < 1:
        _fail_usage(f"--threads must be >= 1; got {threads}")
    scale = "full" if full else "quick"
    papers = (
        [p for p in catalog.papers() if catalog.is_implemented(p)]
        if all_
        else [_paper(s) for s in slugs or []]
    )
    if not papers:
        _fail_usage("name at least one paper slug, or --all")
    for paper in papers:
        if not catalog.is_implemented(paper):
            _fail_usage(f"{paper.slug} is not implemented yet (status planned)")
    _check_writable(out_dir if out_dir is not None else _results.results_dir(), "--out")
    if out_dir is not None:
        # Everything a run keeps follows --out: results, finished seeds, cached pre-trained bases.
        os.environ[_results.ENV_RESULTS] = str(out_dir)
    extra = (
        (f" --seed {seed}" if seed is not None else "")
        + (f" --seeds {seeds}" if seeds is not None else "")
        + (f" --threads {threads}" if threads is not None else "")
    )
    reports, failed = [], False
    for paper in papers:
        try:
            module = catalog.load_experiment(paper.slug)
            # --threads overrides the experiment's own thread count (Config.threads); the count used
            # is part of the recorded config and command, since metrics can differ in their last digits.
            cfg = make_config(module, scale, seed=seed, seeds=seeds, device=device, threads=threads)
            # One line per seed here; the experiment's own progress bars (core.progress.track) run below it.
            rep = run_reproduction(
                module,
                cfg,
                slug=paper.slug,
                on_seed=lambda i, n: err.print(f"{paper.slug} ({scale}): seed {cfg.seed + i} ({i + 1}/{n})"),
                # Finished seeds are kept under the results folder: rerunning an interrupted command
                # runs only the seeds still missing.
                resume_dir=out_dir if out_dir is not None else _results.results_dir(),
            )
        except _data.DataUnavailable as error:
            err.print(f"[red]data unavailable:[/red] {error}")
            raise typer.Exit(EXIT_USAGE)
        except ValueError as error:
            _fail_usage(f"{paper.slug}: {error}")
        folder = _results.write(rep, out_dir, command=f"aicanon reproduce {paper.slug} --{scale}{extra}")
        record = json.loads((folder / "result.json").read_text())
        record["path"] = str(folder)
        reports.append(record)
        failed |= not rep.passed
        if not as_json:
            _print_claims(
                record, title=f"{paper.rank}. {paper.title} ({scale}, {rep.seconds:.0f} s) → {folder}"
            )
    if as_json:
        sys.stdout.write(json.dumps(reports[0] if len(reports) == 1 else reports, indent=2) + "\n")
    raise typer.Exit(EXIT_CLAIM_FAILED if failed else 0)


@app.command()
def verify(
    slugs: list[str] = typer.Argument(None, help="paper slugs (default: every implemented paper)"),
) -> None:
    """Run the reference-parity tests and record them in results/<slug>/parity.json."""
    papers = (
        [_paper(s) for s in slugs] if slugs else [p for p in catalog.papers() if catalog.is_implemented(p)]
    )
    tests = project_root() / "tests"
    if not tests.is_dir():
        _fail_usage(f"no tests folder at {tests}: run verify from a checkout of aicanon")
    # One process (no xdist): the parity record is gathered from each test's report in this process.
    args = [
        sys.executable,
        "-m",
        "pytest",
        str(tests),
        "-q",
        "-m",
        "parity",
        "--record-parity",
        "-p",
        "no:xdist",
    ]
    for paper in papers:
        args += ["--paper", paper.slug]
    raise typer.Exit(subprocess.call(args, cwd=project_root()))


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(
    slug: str,
    args: list[str] = typer.Argument(None, help="passed to the benchmark script (e.g. --device cuda)"),
) -> None:
    """Run benchmarks/bench_<slug>.py: ours against the reference library, same inputs, one process."""
    from aicanon.core.device import select_device

    paper = _paper(slug)
    script = project_root() / "benchmarks" / f"bench_{paper.slug.replace('-', '_')}.py"
    if not script.exists():
        _fail_usage(f"{paper.slug} has no benchmark (looked for {script})")
    args = [a for a in (args or []) if a != "--"]
    # The script would fail with a traceback on a device that is not there: say so here instead.
    for i, arg in enumerate(args):
        if arg == "--device" or arg.startswith("--device="):
            value = arg.split("=", 1)[1] if "=" in arg else (args[i + 1] if i + 1 < len(args) else "")
            try:
                select_device(value)
            except ValueError as error:
                _fail_usage(f"--device: {error}")
    raise typer.Exit(subprocess.call([sys.executable, str(script), *args]))


@app.command()
def serve(
    model: Path = typer.Argument(..., help="a transformers-format Llama folder with tokenizer.json"),
    host: str = typer.Option("127.0.0.1", help="interface to listen on (0.0.0.0: every interface)"),
    port: int = typer.Option(8000, help="TCP port"),
    name: str | None = typer.Option(None, help="the model name clients send (default: the folder's name)"),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N"),
) -> None:
    """Serve a model over the OpenAI completions and chat API (``/v1/completions``, ``/v1/chat/completions``)."""
    import uvicorn

    from aicanon.core.device import select_device
    from aicanon.language.local_backend import load_local_language_model
    from aicanon.language.server import create_app

    try:
        check_device_name(device)
    except ValueError as error:
        _fail_usage(str(error))
    if not 0 < port < 65536:
        _fail_usage(f"--port must be in [1, 65535], got {port}")
    try:
        backend = load_local_language_model(model, device=select_device(device))
    except (FileNotFoundError, ValueError, TypeError) as error:
        _fail_usage(f"cannot serve {model}: {error}")
    served = name or model.resolve().name
    err.print(f"serving {served!r} at http://{host}:{port}/v1")
    uvicorn.run(create_app(backend, served), host=host, port=port, log_level="info")


@app.command()
def report(
    path: Path = typer.Option(None, help="where to write (default: RESULTS.md in the checkout)"),
) -> None:
    """Rebuild RESULTS.md from the latest results."""
    from aicanon.report import write

    target = write(path or project_root() / "RESULTS.md")
    out.print(f"wrote {target}")


def _data_table(check: bool) -> tuple[int, dict[str, list[str]]]:
    """Print the registry's files and their state; return the number of corrupt files and, per
    dataset, the files missing everywhere."""
    table = Table("dataset", "file", "found at", "size", "checksum")
    bad = 0
    missing: dict[str, list[str]] = {}
    for dataset, files in _data.registry().items():
        for name, entry in files.items():
            if check:
                path, state = _data.locate(dataset, name)
            else:
                path = next((p for p in _data.candidates(dataset, name) if p.is_file()), None)
                state = "found" if path else "missing"
            size = f"{path.stat().st_size:,}" if path else "—"
            if state == "missing" and not entry.verifiable:
                state = "not staged"  # registered without a hash: known to be absent (see SOURCES.md)
            colour = {"ok": "green", "found": "green", "missing": "yellow", "not staged": "dim"}.get(
                state, "red"
            )
            bad += state in ("corrupt",)
            if state == "missing":
                missing.setdefault(dataset, []).append(name)
            table.add_row(dataset, name, str(path or "—"), size, f"[{colour}]{state}[/{colour}]")
    out.print(table)
    return bad, missing


def _why_missing(missing: dict[str, list[str]]) -> str:
    """Why files are missing, in the terms a user can act on: AICANON_DATA unset, not a folder, or
    which datasets (wholly or partly) are absent from it."""
    setting = os.environ.get(_data.ENV_DATA)
    registry = _data.registry()
    if not setting:
        where = f"{_data.ENV_DATA} is unset (point it at the staged data, e.g. ../shared/data)"
    elif not Path(setting).is_dir():
        where = f"{_data.ENV_DATA}={setting!r} is not a directory"
    else:
        where = f"{_data.ENV_DATA}={setting!r} and the cache {_data.cache_dir()} lack them"
    staged = {d: sum(entry.verifiable for entry in registry[d].values()) for d in missing}
    whole = [d for d, names in missing.items() if len(names) == staged[d]]
    partial = [f"{d} ({len(names)} of {staged[d]} files)" for d, names in missing.items() if d not in whole]
    parts = ([f"absent datasets: {', '.join(whole)}"] if whole else []) + (
        [f"incomplete: {', '.join(partial)}"] if partial else []
    )
    return f"{sum(map(len, missing.values()))} registered files are missing: {where}; " + "; ".join(parts)


@data_app.callback(invoke_without_command=True)
def data_default(ctx: typer.Context) -> None:
    """`aicanon data` alone is `aicanon data status`."""
    if ctx.invoked_subcommand is None:
        _data_table(check=False)


@data_app.command("status")
def data_status() -> None:
    """Each registered file: where it was found and its size (no hashing)."""
    _data_table(check=False)


@data_app.command("verify")
def data_verify() -> None:
    """Each registered file: where it was found and whether its sha256 is ok, missing or corrupt.
    Exits 1 when a file is corrupt or missing (saying why), 0 when every file verifies."""
    bad, missing = _data_table(check=True)
    if missing:
        err.print(f"[red]error:[/red] {_why_missing(missing)}")
    if bad:
        err.print(f"[red]error:[/red] {bad} registered files do not match their sha256")
    raise typer.Exit(1 if bad or missing else 0)


def main() -> None:
    # Some matplotlib wheels ship without the STIX fonts that mathtext (log-scale tick labels) looks
    # for; it falls back to DejaVu Sans and renders fine, but logs one warning per glyph lookup.
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    app()


if __name__ == "__main__":
    main()
