"""Bayesian networks: ours (aicanon.graphs.bayesnet*) against pgmpy on the same inputs, one process.

Networks: Asia (Lauritzen & Spiegelhalter 1988) and ALARM (Beinlich et al. 1989, pgmpy's bundled
copy), data drawn with our forward sampler. Each row times one task in both libraries and prints the
ratio ours/pgmpy (below 1: ours faster) and a check that the two agree.

    python benchmarks/bench_bayesian_networks.py [--samples 20000] [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import warnings

import _timing
import numpy as np

from aicanon.experiments.bayesian_networks import asia_network
from aicanon.graphs.bayesnet import BayesianNetwork, maximum_likelihood_cpts
from aicanon.graphs.bayesnet_structure import FamilyScorer, hill_climb, structural_hamming_distance


def _from_pgmpy(model) -> BayesianNetwork:
    names = list(model.nodes())
    parents, cpts = {}, {}
    for cpd in model.get_cpds():
        evidence = list(cpd.variables[1:])
        parents[cpd.variable] = evidence
        table = cpd.get_values().reshape([cpd.cardinality[0]] + [model.get_cardinality(e) for e in evidence])
        table = np.moveaxis(table, 0, -1)
        cpts[cpd.variable] = table / table.sum(axis=-1, keepdims=True)
    return BayesianNetwork(names, [model.get_cardinality(v) for v in names], parents, cpts)


def _to_pgmpy(net: BayesianNetwork):
    from pgmpy.factors.discrete import TabularCPD
    from pgmpy.models import DiscreteBayesianNetwork

    model = DiscreteBayesianNetwork(net.edges)
    model.add_nodes_from(net.names)
    for i, v in enumerate(net.names):
        pa = [net.names[p] for p in net.parents[i]]
        model.add_cpds(
            TabularCPD(
                v,
                net.cardinalities[i],
                net.cpts[i].reshape(-1, net.cardinalities[i]).T,
                evidence=pa or None,
                evidence_card=[net.cardinalities[p] for p in net.parents[i]] or None,
                state_names={u: list(range(net.cardinalities[net.index(u)])) for u in [v, *pa]},
            )
        )
    return model


def _time(ours, pgmpy, repeats: int) -> dict[str, _timing.Timing]:
    """Best of ``repeats`` (no warm-up: numpy has nothing to compile or allocate ahead)."""
    return _timing.time_alternately({"ours": ours, "pgmpy": pgmpy}, repeats, warmup=0)


def _bench(label: str, net: BayesianNetwork, args: argparse.Namespace) -> list[tuple[str, dict, str]]:
    import pandas as pd
    from pgmpy.estimators import BDeu, HillClimbSearch, MaximumLikelihoodEstimator
    from pgmpy.inference import VariableElimination

    rows = []
    data = net.sample(args.samples, np.random.default_rng(0))
    frame = pd.DataFrame(data, columns=net.names)
    states = {v: list(range(c)) for v, c in zip(net.names, net.cardinalities)}
    model = _to_pgmpy(net)

    timings = _time(
        lambda: FamilyScorer(data, net.cardinalities, "bdeu", 1.0).total(net.adjacency()),
        lambda: BDeu(frame, equivalent_sample_size=1.0, state_names=states).score(model),
        args.repeats,
    )
    difference = abs(timings["ours"].result - timings["pgmpy"].result)
    rows.append((f"{label}: BDeu score of the true graph", timings, f"|diff| {difference:.1e}"))

    timings = _time(
        lambda: maximum_likelihood_cpts(data, net),
        lambda: MaximumLikelihoodEstimator(model, frame, state_names=states).get_parameters(),
        args.repeats,
    )
    rows.append((f"{label}: maximum-likelihood CPTs", timings, ""))

    rng = np.random.default_rng(1)
    queries = []
    for _ in range(20):
        order = rng.permutation(net.n_vars)
        evidence = {net.names[i]: int(data[0, i]) for i in order[1:4]}
        queries.append((net.names[order[0]], evidence))
    ve = VariableElimination(model)
    timings = _time(
        lambda: [net.query([q], e) for q, e in queries],
        lambda: [ve.query([q], evidence=e, show_progress=False).values for q, e in queries],
        args.repeats,
    )
    pairs = zip(timings["ours"].result, timings["pgmpy"].result)
    diff = max(float(np.abs(a - b).max()) for a, b in pairs)
    rows.append((f"{label}: 20 VE posterior queries", timings, f"max |diff| {diff:.1e}"))

    n_climb = min(args.samples, 5000)
    sub, sub_frame = data[:n_climb], frame.iloc[:n_climb]
    timings = _time(
        lambda: hill_climb(sub, net.cardinalities, tabu_length=10),
        lambda: HillClimbSearch(sub_frame, state_names=states).estimate(
            scoring_method=BDeu(sub_frame, equivalent_sample_size=1.0, state_names=states),
            tabu_length=10,
            show_progress=False,
        ),
        1,  # seconds per search: one run each
    )
    learned, dag = timings["ours"].result[0], timings["pgmpy"].result
    index = {v: i for i, v in enumerate(net.names)}
    theirs_adj = np.zeros_like(learned)
    for u, v in dag.edges():
        theirs_adj[index[u], index[v]] = True
    true = net.adjacency()
    ours_shd = structural_hamming_distance(learned, true, "skeleton")
    theirs_shd = structural_hamming_distance(theirs_adj, true, "skeleton")
    check = f"skeleton SHD ours {ours_shd}, pgmpy {theirs_shd}"
    rows.append((f"{label}: hill climbing, BDeu, {n_climb} rows", timings, check))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20000)
    args = _timing.parse_common_args(
        parser, repeats=3, device="cpu", device_help="ignored: numpy tables on CPU"
    )
    warnings.simplefilter("ignore")
    from pgmpy.utils import get_example_model

    alarm = _from_pgmpy(get_example_model("alarm"))
    asia = asia_network()
    rows = [row for label, net in (("asia", asia), ("alarm", alarm)) for row in _bench(label, net, args)]
    print(f"best of {args.repeats} (hill climbing: of 1)")
    for name, timings, check in rows:
        _timing.print_comparison(name, timings, "min", note=check, width=45)


if __name__ == "__main__":
    main()
