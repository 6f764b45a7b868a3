"""bAbI question answering tasks (Weston et al. 2015, v1.2) as graphs, the way GGS-NN uses them.

The staged files (registry dataset ``babi``: ``en/qa<N>_<name>_{train,test}.txt``, 1000 questions
each; ``en-10k/`` has 10000) hold stories, one sentence per line, numbered from 1 at the start of
each story; a question line is ``ID question<TAB>answer<TAB>supporting fact ids``.

Li et al. (ICLR 2016, Section 5.1) turn every question into a graph: *entities become nodes, binary
relations become typed edges, and the question marks its entities with annotation bits*; the answer is
a node (node selection), a class (graph-level output) or a sequence of classes (GGS-NN). We convert
the English files with one regular expression per sentence template:

=====  =====================================  ===========================  =============================
task   statements -> edges (source, type,      question -> annotation       answer
       target)                                 bits, question type
=====  =====================================  ===========================  =============================
4      "The A is D of the B." -> (B, D, A)    "What is D of the B?" ->     node A (node selection)
       (going D from B reaches A),             bit 1 on B, type D;
       D in {n, e, s, w}                       "What is the A D of?" ->
                                               bit 1 on A, type opposite(D)
15     "X is a Y." -> (X, is, Y);              "What is X afraid of?" ->    node (singular species)
       "Ys are afraid of Zs." -> (Y, afraid,   bit 1 on X
       Z) (species singularised)
16     "X is a Y." -> (X, is, Y);              "What color is X?" ->        node (colour)
       "X is C." -> (X, has_color, C)          bit 1 on X
18     "The A fits inside the B." ->           "Is the A bigger than the    class: no 0, yes 1
       (A, fits_inside, B);                    B?" -> bit 1 on A, bit 2 on  (graph-level output)
       "The A is bigger than the B." ->        B; "Does the A fit in the
       (A, bigger_than, B)                     B?" -> the same question
                                               with A and B exchanged
19     as task 4                               "How do you go from the A    sequence of directions
                                               to the B?" -> bit 1 on A,    n 0, e 1, s 2, w 3
                                               bit 2 on B                   (GGS-NN)
=====  =====================================  ===========================  =============================

Each question is one example: the graph of the statements of its story that precede it, its
entities numbered in order of first mention. What follows the paper's conversion: entity nodes,
one edge type per relation, one annotation bit per question entity (two for tasks 18 and 19),
task 4's question type (the direction to follow from the marked node, one model per type in the
paper's code), and every question evaluated on its own.

Where we differ, and why:

* The paper generated the tasks in bAbI's *symbolic* form with its own scripts and 10 fresh
  datasets; we parse the released English files (the only form staged), so our graphs come from
  the same templates through regular expressions, and seeds resample the training subset instead
  of regenerating the data.
* A graph holds only the entities its story mentions; the paper's code gives every graph of a task
  the same node count (the largest entity id), so unused entities appear as isolated nodes.
* A repeated statement gives one edge (duplicates are merged); relations are facts, and a sum over
  duplicate edges would only count repetitions.
* Task 18's two question forms become one ("does A fit in B" is "is B bigger than A"), so one model
  answers both; we do not know how the paper's symbolic generator phrased them.
* A graph keeps no order of the statements. In task 16 this makes some questions ambiguous: in 64
  of the 1000 test questions (71 training) the asked entity's species has members of two or three
  colours, and the English file's answer depends on which was mentioned when, which the graph does
  not say. A graph model can be right on those only by chance, so it cannot reach 100 % on them.
* Task 15's plural species ("Mice are afraid of wolves") are singularised so that they name the
  same node as "Gertrude is a mouse" and the answer ("wolf").

Task 19's edge direction (:func:`orient_from_source`, on by default for task 19). The paper's data
was bAbI's symbolic form, whose generator (facebookarchive/bAbI-tasks,
``lua/babi/tasks/PathFinding.lua``) writes the path as clauses ``set(locations[i-1], dir,
locations[i])`` and each decoy as ``set(rel_obj, dir, locations[i])``, and whose symbolic output keeps
that argument order: every edge points away from the question's source. The English files render each
clause, at random, as "the X is d of the Y" or as "the Y is opposite(d) of the X", so an edge read off
the phrasing points either way by chance. We re-orient each task-19 graph away from the source (the
node ``annotated[0]``, "from the A"), which restores the symbolic form's clause direction; with the
phrasing's random direction a GGS-NN at the paper's settings learns the task far less well.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from aicanon.core.checks import check_int
from aicanon.core.data import fetch

__all__ = [
    "DIRECTIONS",
    "EDGE_TYPES",
    "OUTPUT_KIND",
    "TASK_FILES",
    "BabiBatch",
    "BabiExample",
    "collate",
    "load_babi",
    "orient_from_source",
    "parse_babi",
]

TASK_FILES = {
    4: "qa4_two-arg-relations",
    15: "qa15_basic-deduction",
    16: "qa16_basic-induction",
    18: "qa18_size-reasoning",
    19: "qa19_path-finding",
}
DIRECTIONS = ("n", "e", "s", "w")
_DIRECTION_WORDS = {"north": 0, "east": 1, "south": 2, "west": 3}
_OPPOSITE = {0: 2, 1: 3, 2: 0, 3: 1}
EDGE_TYPES = {
    4: DIRECTIONS,
    15: ("is", "afraid_of"),
    16: ("is", "has_color"),
    18: ("fits_inside", "bigger_than"),
    19: DIRECTIONS,
}
OUTPUT_KIND = {4: "node_selection", 15: "node_selection", 16: "node_selection", 18: "graph", 19: "sequence"}
NUM_QUESTION_TYPES = {4: 4, 15: 1, 16: 1, 18: 1, 19: 1}
_YES_NO = {"no": 0, "yes": 1}
_SINGULAR = {"mice": "mouse", "wolves": "wolf", "sheep": "sheep", "cats": "cat"}

_W = r"([a-z]+)"
_DIR = r"(north|east|south|west)"
_MULTI = r"([a-z][a-z ]*?)"  # task 18 entities have spaces ("box of chocolates")
_STATEMENTS = {
    4: [(re.compile(rf"^the {_W} is {_DIR} of the {_W}\.$"), "direction")],
    15: [
        (re.compile(rf"^{_W} is an? {_W}\.$"), "is"),
        (re.compile(rf"^{_W} are afraid of {_W}\.$"), "afraid_of"),
    ],
    16: [
        (re.compile(rf"^{_W} is an? {_W}\.$"), "is"),
        (re.compile(rf"^{_W} is {_W}\.$"), "has_color"),
    ],
    18: [
        (re.compile(rf"^the {_MULTI} fits inside the {_MULTI}\.$"), "fits_inside"),
        (re.compile(rf"^the {_MULTI} is bigger than the {_MULTI}\.$"), "bigger_than"),
    ],
}
_STATEMENTS[19] = _STATEMENTS[4]
_QUESTIONS = {
    4: [
        (re.compile(rf"^what is {_DIR} of the {_W}\?$"), "direction_of"),
        (re.compile(rf"^what is the {_W} {_DIR} of\?$"), "of_direction"),
    ],
    15: [(re.compile(rf"^what is {_W} afraid of\?$"), "afraid_of")],
    16: [(re.compile(rf"^what color is {_W}\?$"), "color")],
    18: [
        (re.compile(rf"^is the {_MULTI} bigger than the {_MULTI}\?$"), "bigger"),
        (re.compile(rf"^does the {_MULTI} fit in the {_MULTI}\?$"), "fits"),
    ],
    19: [(re.compile(rf"^how do you go from the {_W} to the {_W}\?$"), "path")],
}


@dataclass(frozen=True)
class BabiExample:
    """One bAbI question as a graph.

    Attributes:
        task: the bAbI task number.
        entities: node names, in order of first mention in the story.
        edges: ``(source, edge type, target)`` node/type ids, without duplicates.
        annotated: the node marked by annotation bit ``i`` is ``annotated[i]``.
        question_type: 0 unless the task has several (task 4: the direction to follow, n e s w).
        answer: the answer node (tasks 4, 15, 16), class (18: no 0, yes 1) or direction sequence (19).
        question: the question's text, for reading.
    """

    task: int
    entities: tuple[str, ...]
    edges: tuple[tuple[int, int, int], ...]
    annotated: tuple[int, ...]
    question_type: int
    answer: int | tuple[int, ...]
    question: str

    @property
    def num_nodes(self) -> int:
        return len(self.entities)


def _singular(word: str) -> str:
    return _SINGULAR.get(word, word.removesuffix("s"))


class _Story:
    """The statements of one story so far: entities and typed edges."""

    def __init__(self) -> None:
        self.entities: dict[str, int] = {}
        self.edges: dict[tuple[int, int, int], None] = {}  # ordered set

    def node(self, name: str) -> int:
        return self.entities.setdefault(name, len(self.entities))

    def add(self, source: str, edge_type: int, target: str) -> None:
        self.edges[(self.node(source), edge_type, self.node(target))] = None


def _statement(task: int, story: _Story, text: str, where: str) -> None:
    for pattern, kind in _STATEMENTS[task]:
        match = pattern.match(text)
        if match is None:
            continue
        if kind == "direction":  # "the A is D of the B": going D from B reaches A
            a, direction, b = match.groups()
            story.add(b, _DIRECTION_WORDS[direction], a)
        elif kind == "afraid_of":
            story.add(
                _singular(match.group(1)), EDGE_TYPES[task].index("afraid_of"), _singular(match.group(2))
            )
        else:
            story.add(match.group(1), EDGE_TYPES[task].index(kind), match.group(2))
        return
    raise ValueError(f"{where}: not a task-{task} statement: {text!r}")


def _question(task: int, story: _Story, text: str, answer: str, where: str) -> BabiExample:
    for pattern, kind in _QUESTIONS[task]:
        match = pattern.match(text)
        if match is None:
            continue
        question_type = 0
        if kind == "direction_of":  # "what is D of the B": follow D from B
            direction, b = match.groups()
            marked, question_type = [b], _DIRECTION_WORDS[direction]
        elif kind == "of_direction":  # "what is the A D of": X with A D of X, i.e. follow opposite(D) from A
            a, direction = match.groups()
            marked, question_type = [a], _OPPOSITE[_DIRECTION_WORDS[direction]]
        elif kind == "fits":  # "does A fit in B" is "is B bigger than A"
            marked = [match.group(2), match.group(1)]
        else:
            marked = list(match.groups())
        for name in marked:
            if name not in story.entities:
                raise ValueError(f"{where}: the question names {name!r}, which no earlier statement mentions")
        annotated = tuple(story.entities[name] for name in marked)
        if task == 18:
            if answer not in _YES_NO:
                raise ValueError(f"{where}: task 18 answers are yes/no, got {answer!r}")
            target: int | tuple[int, ...] = _YES_NO[answer]
        elif task == 19:
            steps = answer.split(",")
            if not steps or any(s not in DIRECTIONS for s in steps):
                raise ValueError(f"{where}: task 19 answers are directions like 's,e', got {answer!r}")
            target = tuple(DIRECTIONS.index(s) for s in steps)
        else:
            if answer not in story.entities:
                raise ValueError(f"{where}: the answer {answer!r} is not an entity of the story")
            target = story.entities[answer]
        return BabiExample(
            task=task,
            entities=tuple(story.entities),
            edges=tuple(story.edges),
            annotated=annotated,
            question_type=question_type,
            answer=target,
            question=text,
        )
    raise ValueError(f"{where}: not a task-{task} question: {text!r}")


def orient_from_source(example: BabiExample) -> BabiExample:
    """``example`` (task 19) with every edge pointing away from the question's source node.

    This reproduces the clause direction of the data the paper trained on: bAbI's symbolic form, in
    which the generator (facebookarchive/bAbI-tasks, ``lua/babi/tasks/PathFinding.lua``) writes the
    path as ``set(locations[i-1], dir, locations[i])`` and each decoy as ``set(rel_obj, dir,
    locations[i])``, so every clause points away from the source, ``locations[1]``. The English files
    phrase each clause at random as "the X is d of the Y" or "the Y is opposite(d) of the X", so the
    direction :func:`parse_babi` reads off the phrasing is random; the fact itself is the same either
    way, since going ``d`` from Y reaches X exactly when going ``opposite(d)`` from X reaches Y.

    The story's graph must be a tree that reaches every node from the source ``annotated[0]`` (the
    generator's stories are: a path and decoys hung off it); each edge ``(u, t, v)`` with ``u`` the
    end nearer the source is kept, and each ``(v, t, u)`` becomes ``(u, opposite(t), v)``. The edges
    keep their order and number; entities, annotation and answer are unchanged.

    Raises:
        ValueError: the example is not task 19, or its graph is not a tree reachable from the source
            (then no direction "away from the source" is defined).
    """
    if not isinstance(example, BabiExample):
        raise TypeError(f"example must be a BabiExample, got {type(example).__name__}")
    if example.task != 19:
        raise ValueError(f"example must be a task-19 question (path finding), got task {example.task}")
    source = example.annotated[0]
    where = f"task-19 question {example.question!r}"
    if len(example.edges) != example.num_nodes - 1:
        raise ValueError(
            f"{where}: cannot orient edges away from the source: the story's graph is not a tree "
            f"({example.num_nodes} nodes need {example.num_nodes - 1} edges, got {len(example.edges)})"
        )
    neighbours: dict[int, list[int]] = {node: [] for node in range(example.num_nodes)}
    for u, _, v in example.edges:
        neighbours[u].append(v)
        neighbours[v].append(u)
    depth = {source: 0}
    frontier = [source]
    while frontier:  # breadth-first from the source, ignoring the phrasing's direction
        following = []
        for node in frontier:
            for other in neighbours[node]:
                if other not in depth:
                    depth[other] = depth[node] + 1
                    following.append(other)
        frontier = following
    if len(depth) != example.num_nodes:
        unreached = sorted(example.entities[n] for n in range(example.num_nodes) if n not in depth)
        raise ValueError(
            f"{where}: cannot orient edges away from the source {example.entities[source]!r}: "
            f"the story's graph does not reach {unreached}"
        )
    # A connected graph with n - 1 edges is a tree, so the ends of every edge differ in depth by one.
    edges = tuple(
        (u, edge_type, v) if depth[u] < depth[v] else (v, _OPPOSITE[edge_type], u)
        for u, edge_type, v in example.edges
    )
    return replace(example, edges=edges)


def parse_babi(
    lines: Iterable[str], task: int, source: str = "<lines>", orient: bool | None = None
) -> list[BabiExample]:
    """Parse bAbI lines of ``task`` (4, 15, 16, 18 or 19) into one :class:`BabiExample` per question.

    ``orient``: apply :func:`orient_from_source` to every question (task 19 only). None means True for
    task 19, the direction of the paper's symbolic data; False keeps the English phrasing's random
    direction.
    """
    check_int("task", task, minimum=None)
    if task not in TASK_FILES:
        raise ValueError(f"task must be one of {sorted(TASK_FILES)} (the tasks GGS-NN converts), got {task}")
    orient = _check_orient(task, orient)
    if isinstance(lines, (str, bytes)):
        raise TypeError("lines must be an iterable of lines, got a single string (use text.splitlines())")
    examples: list[BabiExample] = []
    story = _Story()
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        where = f"{source}:{number}"
        head, _, rest = line.partition(" ")
        if not head.isdigit():
            raise ValueError(f"{where}: a bAbI line starts with its sentence number, got {line!r}")
        if int(head) == 1:
            story = _Story()
        text, *fields = rest.split("\t")
        text = text.strip().lower()
        if fields:
            examples.append(_question(task, story, text, fields[0].strip().lower(), where))
        else:
            _statement(task, story, text, where)
    if orient:
        examples = [orient_from_source(example) for example in examples]
    return examples


def _check_orient(task: int, orient: bool | None) -> bool:
    if orient is not None and not isinstance(orient, bool):
        raise TypeError(f"orient must be a bool or None, got {type(orient).__name__}")
    if orient and task != 19:
        raise ValueError(f"orient=True is for task 19 (path finding) only, got task {task}")
    return task == 19 if orient is None else orient


def load_babi(
    task: int, split: str = "train", variant: str = "en", orient: bool | None = None
) -> list[BabiExample]:
    """The questions of bAbI ``task`` from the staged ``babi/<variant>/qa<task>_..._<split>.txt``.

    Args:
        task: 4, 15, 16, 18 or 19.
        split: ``train`` or ``test``.
        variant: ``en`` (1000 questions per file) or ``en-10k`` (10000).
        orient: task 19's edges pointing away from the source, as in the paper's symbolic data
            (:func:`orient_from_source`). None: True for task 19; False keeps the English phrasing's
            random direction.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if variant not in ("en", "en-10k"):
        raise ValueError(f"variant must be 'en' or 'en-10k', got {variant!r}")
    check_int("task", task, minimum=None)
    if task not in TASK_FILES:
        raise ValueError(f"task must be one of {sorted(TASK_FILES)} (the tasks GGS-NN converts), got {task}")
    orient = _check_orient(task, orient)
    name = f"{variant}/{TASK_FILES[task]}_{split}.txt"
    path = fetch("babi", name)
    with open(path, encoding="utf-8") as handle:
        return parse_babi(handle, task, source=name, orient=orient)


@dataclass
class BabiBatch:
    """Several questions' graphs as one disjoint graph.

    Attributes:
        x: float32 annotations ``[N, annotation_features]`` (bit ``i`` set on ``annotated[i]``).
        edge_index: int64 ``[2, E]``; edge_type: int64 ``[E]``.
        batch: int64 ``[N]``, each node's question.
        num_graphs: the number of questions ``B``.
        node_target: int64 ``[B]``, the answer node's index in the batch (node selection), else None.
        class_target: int64 ``[B]`` (task 18), else None.
        sequence_target: int64 ``[B, L + 1]`` (task 19): the directions then an end-of-sequence class
            ``len(DIRECTIONS)``, as the paper's code appends; else None.
    """

    x: Tensor
    edge_index: Tensor
    edge_type: Tensor
    batch: Tensor
    num_graphs: int
    node_target: Tensor | None
    class_target: Tensor | None
    sequence_target: Tensor | None

    def to(self, device: torch.device | str) -> BabiBatch:
        moved = {k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in self.__dict__.items()}
        return BabiBatch(**moved)


def collate(examples: Sequence[BabiExample], annotation_features: int) -> BabiBatch:
    """Batch ``examples`` (one task) into a :class:`BabiBatch` with ``annotation_features`` bits per node."""
    check_int("annotation_features", annotation_features, minimum=None)
    if not examples:
        raise ValueError("examples must hold at least one BabiExample, got none")
    if not all(isinstance(e, BabiExample) for e in examples):
        raise TypeError("examples must all be BabiExample instances")
    tasks = {e.task for e in examples}
    if len(tasks) != 1:
        raise ValueError(f"examples must come from one task, got tasks {sorted(tasks)}")
    task = tasks.pop()
    needed = max(len(e.annotated) for e in examples)
    check_int("annotation_features", annotation_features, needed, note="bits the questions mark")
    sizes = [e.num_nodes for e in examples]
    offsets = [0]
    for size in sizes[:-1]:
        offsets.append(offsets[-1] + size)
    total = sum(sizes)
    x = torch.zeros(total, annotation_features)
    sources, types, targets, batch = [], [], [], []
    for graph, (example, offset) in enumerate(zip(examples, offsets)):
        for bit, node in enumerate(example.annotated):
            x[offset + node, bit] = 1.0  # Eq. (1) pads these bits with zeros into the state
        for source, edge_type, target in example.edges:
            sources.append(offset + source)
            types.append(edge_type)
            targets.append(offset + target)
        batch.extend([graph] * example.num_nodes)
    node_target = class_target = sequence_target = None
    kind = OUTPUT_KIND[task]
    if kind == "node_selection":
        node_target = torch.tensor([o + e.answer for e, o in zip(examples, offsets)], dtype=torch.long)
    elif kind == "graph":
        class_target = torch.tensor([e.answer for e in examples], dtype=torch.long)
    else:
        lengths = {len(e.answer) for e in examples}
        if len(lengths) != 1:
            raise ValueError(f"task-19 answers in one batch must have one length, got {sorted(lengths)}")
        end = len(DIRECTIONS)
        sequence_target = torch.tensor([list(e.answer) + [end] for e in examples], dtype=torch.long)
    return BabiBatch(
        x=x,
        edge_index=torch.tensor([sources, targets], dtype=torch.long).view(2, -1),
        edge_type=torch.tensor(types, dtype=torch.long),
        batch=torch.tensor(batch, dtype=torch.long),
        num_graphs=len(examples),
        node_target=node_target,
        class_target=class_target,
        sequence_target=sequence_target,
    )
