"""bAbI files -> graphs as in GGS-NN Section 5.1: golden conversions, the answers the graphs imply,
batching, and bad input."""

from __future__ import annotations

import pytest
import torch

from aicanon.datasets.babi import (
    DIRECTIONS,
    EDGE_TYPES,
    TASK_FILES,
    BabiExample,
    collate,
    load_babi,
    orient_from_source,
    parse_babi,
)

pytestmark = pytest.mark.paper("ggnn")

N, E, S, W = range(4)


def test_task4_golden_conversion():
    lines = [
        "1 The office is north of the kitchen.",
        "2 The garden is south of the kitchen.",
        "3 What is north of the kitchen?\toffice\t1",
        "1 The kitchen is west of the garden.",
        "2 The hallway is west of the kitchen.",
        "3 What is the garden east of?\tkitchen\t1",
    ]
    first, second = parse_babi(lines, 4)
    assert first.entities == ("kitchen", "office", "garden")
    # "the office is north of the kitchen": going north from the kitchen reaches the office
    assert first.edges == ((0, N, 1), (0, S, 2))
    assert first.annotated == (0,) and first.question_type == N and first.answer == 1
    # a new story starts at sentence 1; "what is the garden east of" = go west from the garden
    assert second.entities == ("garden", "kitchen", "hallway")
    assert second.edges == ((0, W, 1), (1, W, 2))
    assert second.annotated == (0,) and second.question_type == W and second.answer == 1


def test_task15_16_18_19_golden_conversion():
    (q15,) = parse_babi(
        [
            "1 Mice are afraid of wolves.",
            "2 Gertrude is a mouse.",
            "3 What is gertrude afraid of?\twolf\t2 1",
        ],
        15,
    )
    assert q15.entities == ("mouse", "wolf", "gertrude")
    assert q15.edges == ((0, 1, 1), (2, 0, 0))  # (mouse afraid_of wolf), (gertrude is mouse)
    assert q15.annotated == (2,) and q15.answer == 1

    (q16,) = parse_babi(
        ["1 Lily is a frog.", "2 Lily is green.", "3 Greg is a frog.", "4 What color is Greg?\tgreen\t3 1 2"],
        16,
    )
    assert q16.entities == ("lily", "frog", "green", "greg")
    assert q16.edges == ((0, 0, 1), (0, 1, 2), (3, 0, 1))
    assert q16.annotated == (3,) and q16.answer == 2

    q18 = parse_babi(
        [
            "1 The box of chocolates fits inside the chest.",
            "2 The box is bigger than the chest.",
            "3 The box is bigger than the chest.",
            "4 Is the box of chocolates bigger than the box?\tno\t1 2",
            "5 Does the box of chocolates fit in the box?\tyes\t2 1",
        ],
        18,
    )
    assert q18[0].entities == ("box of chocolates", "chest", "box")
    assert q18[0].edges == ((0, 0, 1), (2, 1, 1))  # the repeated statement gives one edge
    assert q18[0].annotated == (0, 2) and q18[0].answer == 0
    # "does A fit in B" is asked as "is B bigger than A"
    assert q18[1].annotated == (2, 0) and q18[1].answer == 1

    lines19 = [
        "1 The office is east of the hallway.",
        "2 The kitchen is north of the office.",
        "3 How do you go from the kitchen to the hallway?\ts,w\t2 1",
    ]
    (q19,) = parse_babi(lines19, 19, orient=False)  # the English phrasing's direction
    assert q19.entities == ("hallway", "office", "kitchen")
    assert q19.edges == ((0, E, 1), (1, N, 2))
    assert q19.annotated == (2, 0) and q19.answer == (S, W)
    # By default task 19 points every edge away from the source (the kitchen), as bAbI's symbolic
    # form does: (v, t, u) becomes (u, opposite(t), v), in the same order.
    (oriented,) = parse_babi(lines19, 19)
    assert oriented.edges == ((1, W, 0), (2, S, 1))
    assert oriented == orient_from_source(q19)
    assert (oriented.entities, oriented.annotated, oriented.answer) == (
        q19.entities,
        q19.annotated,
        q19.answer,
    )


def test_orientation_keeps_edges_already_pointing_away():
    lines = [
        "1 The office is east of the kitchen.",  # kitchen -e-> office: away from the kitchen already
        "2 The kitchen is north of the garden.",  # garden -n-> kitchen: flipped to kitchen -s-> garden
        "3 The hallway is west of the garden.",  # garden -w-> hallway: away already
        "4 How do you go from the kitchen to the hallway?\ts,w\t2 3",
    ]
    (raw,) = parse_babi(lines, 19, orient=False)
    assert raw.entities == ("kitchen", "office", "garden", "hallway")
    assert raw.edges == ((0, E, 1), (2, N, 0), (2, W, 3))
    assert orient_from_source(raw).edges == ((0, E, 1), (0, S, 2), (2, W, 3))
    assert orient_from_source(orient_from_source(raw)) == orient_from_source(raw)  # idempotent


def test_questions_see_only_earlier_statements():
    examples = parse_babi(
        [
            "1 The box fits inside the chest.",
            "2 Is the chest bigger than the box?\tyes\t1",
            "3 The chocolate fits inside the box.",
            "4 Is the chest bigger than the chocolate?\tyes\t1 3",
        ],
        18,
    )
    assert examples[0].entities == ("box", "chest") and len(examples[0].edges) == 1
    assert examples[1].entities == ("box", "chest", "chocolate") and len(examples[1].edges) == 2


def _step(example: BabiExample, node: int, direction: int) -> set[int]:
    """Nodes reached from ``node`` going ``direction``: along edges of that type or against the opposite."""
    opposite = (direction + 2) % 4
    return {t for s, k, t in example.edges if s == node and k == direction} | {
        s for s, k, t in example.edges if t == node and k == opposite
    }


@pytest.mark.parametrize("split", ["train", "test"])
def test_staged_files_convert_and_the_graphs_imply_the_answers(split):
    for task in TASK_FILES:
        examples = load_babi(task, split)
        assert len(examples) == 1000, task
        for example in examples:
            assert all(0 <= s < example.num_nodes and 0 <= t < example.num_nodes for s, _, t in example.edges)
            assert all(0 <= k < len(EDGE_TYPES[task]) for _, k, _ in example.edges)
            if task == 4:  # going the asked direction from the marked node reaches the answer
                assert _step(example, example.annotated[0], example.question_type) == {example.answer}
            elif task == 15:  # marked -is-> species -afraid_of-> answer
                (species,) = {t for s, k, t in example.edges if s == example.annotated[0] and k == 0}
                assert {t for s, k, t in example.edges if s == species and k == 1} == {example.answer}
            elif task == 16:  # the answer is a colour of something of the same species
                (species,) = {t for s, k, t in example.edges if s == example.annotated[0] and k == 0}
                peers = {s for s, k, t in example.edges if t == species and k == 0} - {example.annotated[0]}
                colours = {t for s, k, t in example.edges if s in peers and k == 1}
                assert example.answer in colours
            elif task == 18:  # yes iff "bigger" holds in the transitive closure of the statements
                bigger = {(t, s) for s, k, t in example.edges if k == 0} | {
                    (s, t) for s, k, t in example.edges if k == 1
                }
                closure = set(bigger)
                while True:
                    new = {(a, d) for a, b in closure for c, d in closure if b == c} - closure
                    if not new:
                        break
                    closure |= new
                assert int(tuple(example.annotated) in closure) == example.answer
            else:  # following the directions from the first marked node reaches the second
                here = {example.annotated[0]}
                for direction in example.answer:
                    here = set().union(*(_step(example, node, direction) for node in here))
                assert example.annotated[1] in here


def _undirected(example: BabiExample) -> set[tuple[int, int, int]]:
    """The facts of ``example``, each written from its lower-numbered node."""
    return {(s, k, t) if s < t else (t, (k + 2) % 4, s) for s, k, t in example.edges}


@pytest.mark.parametrize("split", ["train", "test"])
def test_task19_graphs_point_away_from_the_source(split):
    english, oriented = load_babi(19, split, orient=False), load_babi(19, split)
    assert load_babi(19, split, orient=True) == oriented
    flipped = 0
    for raw, example in zip(english, oriented):
        assert (example.entities, example.annotated, example.answer, example.question) == (
            raw.entities,
            raw.annotated,
            raw.answer,
            raw.question,
        )
        assert len(example.edges) == len(raw.edges) == len(set(example.edges))
        assert _undirected(example) == _undirected(raw)  # the same facts
        # Following edges only forwards from the source reaches every node, each edge's target once.
        targets = [t for _, _, t in example.edges]
        assert len(set(targets)) == len(targets) and example.annotated[0] not in targets
        reached, frontier = {example.annotated[0]}, [example.annotated[0]]
        while frontier:
            frontier = [t for s, _, t in example.edges if s in frontier and t not in reached]
            reached.update(frontier)
        assert reached == set(range(example.num_nodes))
        # The answer is the forward walk from the source: each step follows an edge of its type.
        here = example.annotated[0]
        for direction in example.answer:
            (here,) = [t for s, k, t in example.edges if s == here and k == direction]
        assert here == example.annotated[1]
        flipped += sum(a != b for a, b in zip(raw.edges, example.edges))
    # The English phrasing points a good share of the edges towards the source.
    assert 0.2 < flipped / sum(len(e.edges) for e in english) < 0.8


def test_collate_offsets_bits_and_targets():
    examples = load_babi(4, "train")[:3]
    batch = collate(examples, 2)
    sizes = [e.num_nodes for e in examples]
    assert batch.x.shape == (sum(sizes), 2) and batch.num_graphs == 3
    assert batch.batch.tolist() == [g for g, n in enumerate(sizes) for _ in range(n)]
    assert batch.x[:, 1].sum() == 0 and batch.x[:, 0].sum() == 3  # one question bit each; bit 2 padded
    offsets = [0, sizes[0], sizes[0] + sizes[1]]
    assert batch.node_target.tolist() == [o + e.answer for o, e in zip(offsets, examples)]
    assert batch.edge_index.shape == (2, sum(len(e.edges) for e in examples))
    assert bool(
        (batch.batch[batch.edge_index[0]] == batch.batch[batch.edge_index[1]]).all()
    )  # no edge between graphs
    assert batch.class_target is None and batch.sequence_target is None

    sequences = collate(load_babi(19, "test")[:4], 3)
    assert sequences.sequence_target.shape == (4, 3)
    assert sequences.sequence_target[:, -1].tolist() == [len(DIRECTIONS)] * 4  # end-of-sequence class
    assert sequences.x.sum(0).tolist() == [4.0, 4.0, 0.0]
    yes_no = collate(load_babi(18, "test")[:5], 2)
    assert yes_no.class_target.tolist() == [e.answer for e in load_babi(18, "test")[:5]]


def test_bad_input():
    with pytest.raises(ValueError, match="task must be one of \\[4, 15, 16, 18, 19\\].*got 3"):
        load_babi(3)
    with pytest.raises(TypeError, match="task must be an int, got str"):
        load_babi("4")
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'valid'"):
        load_babi(4, "valid")
    with pytest.raises(ValueError, match="variant must be 'en' or 'en-10k', got 'fr'"):
        load_babi(4, "train", "fr")
    with pytest.raises(
        ValueError, match="<lines>:1: not a task-4 statement: 'the office is up of the kitchen.'"
    ):
        parse_babi(["1 The office is up of the kitchen."], 4)
    with pytest.raises(ValueError, match="starts with its sentence number"):
        parse_babi(["The office is north of the kitchen."], 4)
    with pytest.raises(ValueError, match="names 'garden', which no earlier statement mentions"):
        parse_babi(["1 The office is north of the kitchen.", "2 What is north of the garden?\toffice\t1"], 4)
    with pytest.raises(ValueError, match="the answer 'garden' is not an entity of the story"):
        parse_babi(["1 The office is north of the kitchen.", "2 What is north of the kitchen?\tgarden\t1"], 4)
    with pytest.raises(ValueError, match="task 18 answers are yes/no, got 'maybe'"):
        parse_babi(["1 The box fits inside the chest.", "2 Is the chest bigger than the box?\tmaybe\t1"], 18)
    with pytest.raises(TypeError, match="lines must be an iterable of lines, got a single string"):
        parse_babi("1 The office is north of the kitchen.", 4)
    examples = load_babi(18, "test")[:2]
    with pytest.raises(ValueError, match="annotation_features must be >= 2 .* got 1"):
        collate(examples, 1)
    with pytest.raises(ValueError, match="examples must come from one task, got tasks \\[4, 18\\]"):
        collate(examples + load_babi(4, "test")[:1], 2)
    with pytest.raises(ValueError, match="examples must hold at least one BabiExample"):
        collate([], 1)
    with pytest.raises(TypeError, match="annotation_features must be an int"):
        collate(examples, 2.0)
    with pytest.raises(ValueError, match="orient=True is for task 19 \\(path finding\\) only, got task 4"):
        load_babi(4, orient=True)
    with pytest.raises(TypeError, match="orient must be a bool or None, got int"):
        load_babi(19, orient=1)
    with pytest.raises(ValueError, match="example must be a task-19 question .*got task 4"):
        orient_from_source(load_babi(4, "test")[0])
    with pytest.raises(TypeError, match="example must be a BabiExample, got tuple"):
        orient_from_source(())
    both_ways = ["1 The office is east of the hallway.", "2 The hallway is west of the office."]
    ask = "How do you go from the office to the hallway?\tw\t1"
    with pytest.raises(ValueError, match="not a tree \\(2 nodes need 1 edges, got 2\\)"):
        parse_babi([*both_ways, f"3 {ask}"], 19)
    apart = [*both_ways, "3 The kitchen is north of the garden.", f"4 {ask}"]
    with pytest.raises(ValueError, match="does not reach \\['garden', 'kitchen'\\]"):
        parse_babi(apart, 19)
    assert len(parse_babi(apart, 19, orient=False)[0].edges) == 3  # the English direction needs no tree
    assert torch.is_tensor(collate(examples, 2).x)
