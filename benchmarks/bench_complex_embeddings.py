"""ComplEx filtered evaluation: ours (aicanon.graphs.ranking) against pykeen's RankBasedEvaluator.

Both evaluate the same ComplEx embeddings (ours loaded into pykeen's ``ComplEx`` model) on the same
test triples of a staged benchmark, filtered against train + valid + test, head and tail side. The
table gives triples per second for each, the ratio ours/pykeen of the times (below 1: ours faster)
and the largest difference between the two libraries' MRR and Hits@k (realistic ranks), which must
be zero up to float rounding.

    python benchmarks/bench_complex_embeddings.py [--dataset FB15k-237] [--triples 1000] [--dim 100]
        [--batch-size 256] [--repeats 2] [--threads 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import logging
import os
import warnings
from pathlib import Path

import _timing
import torch

from aicanon.datasets.knowledge_graphs import load_knowledge_graph
from aicanon.graphs.kge import ComplEx
from aicanon.graphs.ranking import KnownTriples, evaluate_link_prediction

STAGED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="FB15k-237", choices=["FB15k-237", "WN18RR"])
    parser.add_argument("--triples", type=int, default=1000, help="test triples evaluated (0: all)")
    parser.add_argument("--dim", type=int, default=100, help="complex rank of the embeddings")
    parser.add_argument("--batch-size", type=int, default=256)
    args = _timing.parse_common_args(parser, repeats=2, threads=2, device="cpu")
    if not os.environ.get("AICANON_DATA") and STAGED.is_dir():
        os.environ["AICANON_DATA"] = str(STAGED)
    warnings.filterwarnings("ignore")
    logging.getLogger("pykeen").setLevel(logging.ERROR)

    from pykeen.evaluation import RankBasedEvaluator
    from pykeen.models import ComplEx as PykeenComplEx
    from pykeen.triples import CoreTriplesFactory

    device = args.device
    graph = load_knowledge_graph(args.dataset)
    test = graph.test if args.triples <= 0 else graph.test[: args.triples]
    ours = ComplEx(
        graph.num_entities,
        graph.num_relations,
        args.dim,
        init_std=0.3,
        generator=torch.Generator().manual_seed(0),
    ).to(device)
    factory = CoreTriplesFactory.create(
        graph.train, num_entities=graph.num_entities, num_relations=graph.num_relations
    )
    theirs = PykeenComplEx(triples_factory=factory, embedding_dim=args.dim, random_seed=0).to(device)
    with torch.no_grad():
        theirs.entity_representations[0]._embeddings.weight.copy_(
            torch.stack([ours.entity_real, ours.entity_imag], -1).reshape(graph.num_entities, -1)
        )
        theirs.relation_representations[0]._embeddings.weight.copy_(
            torch.stack([ours.relation_real, ours.relation_imag], -1).reshape(graph.num_relations, -1)
        )

    def run_ours():
        # Building the filter index is part of the evaluation in both libraries.
        known = KnownTriples.build(
            graph.all_triples(), num_entities=graph.num_entities, num_relations=graph.num_relations
        )
        return evaluate_link_prediction(ours, test, known, batch_size=args.batch_size)

    evaluator = RankBasedEvaluator(filtered=True)

    def run_pykeen():
        result = evaluator.evaluate(
            theirs,
            test,
            additional_filter_triples=[graph.train, graph.valid],
            batch_size=args.batch_size,
            use_tqdm=False,
        )
        return {
            "mrr": result.get_metric("both.realistic.inverse_harmonic_mean_rank"),
            "hits@1": result.get_metric("both.realistic.hits_at_1"),
            "hits@3": result.get_metric("both.realistic.hits_at_3"),
            "hits@10": result.get_metric("both.realistic.hits_at_10"),
        }

    timings = _timing.time_alternately({"ours": run_ours, "pykeen": run_pykeen}, args.repeats, device)
    t_ours, m_ours = timings["ours"].min, timings["ours"].result
    t_theirs, m_theirs = timings["pykeen"].min, timings["pykeen"].result
    difference = max(abs(m_ours[k] - m_theirs[k]) for k in m_theirs)
    n = test.size(0)
    print(
        f"{args.dataset}: {n} test triples x 2 sides, {graph.num_entities} entities, rank {args.dim}, "
        f"batch {args.batch_size}, {args.threads} thread(s), {device}"
    )
    print(f"{'':10} {'seconds':>9} {'triples/s':>10}")
    print(f"{'ours':10} {t_ours:9.3f} {n / t_ours:10.0f}")
    print(f"{'pykeen':10} {t_theirs:9.3f} {n / t_theirs:10.0f}")
    _timing.print_comparison(
        "best time",
        timings,
        "min",
        note=f"max |metric difference| {difference:.2e}   MRR {m_ours['mrr']:.4f}",
        width=10,
    )


if __name__ == "__main__":
    main()
