"""The Planetoid citation graphs (Cora, CiteSeer, PubMed) from their original ``ind.*`` files.

Yang, Cohen & Salakhutdinov (ICML 2016) released each dataset as eight files, ``ind.<name>.<part>``:

* ``x``, ``y``: features (scipy CSR) and one-hot labels of the labelled training nodes (20 per class);
* ``allx``, ``ally``: features and labels of every node that is not a test node (training nodes first);
* ``tx``, ``ty``: features and labels of the 1000 test nodes, in the order of ``test.index``;
* ``test.index``: one line per test node, its node id in the graph;
* ``graph``: a ``defaultdict(list)`` from node id to the list of its neighbours' ids.

We assemble the graph exactly as the GCN code (Kipf & Welling, ``utils.load_data``) and the GAT code
do, which gives the standard public split used by GAT's Table 2:

* node features: ``allx`` stacked on ``tx``, then the test rows moved to their ids
  (``features[test_index] = features[sorted(test_index)]``), likewise the labels;
* CiteSeer has 15 nodes in the test id range that appear in no file (isolated documents): they get
  all-zero feature rows and, here, the label ``-1`` (the original code gives them an all-zero
  one-hot row; PyG's reader turns that into class 0). No mask selects them;
* train = ``range(len(y))`` (140 on Cora, 120 on CiteSeer), validation =
  ``range(len(y), len(y) + 500)``, test = the 1000 ids of ``test.index``;
* edges: both directions of every adjacency-list entry, self loops removed, duplicates merged.

The files are Python 2 pickles. Unpickling runs code chosen by the file, so we never call
``pickle.load`` on them as they are: a restricted unpickler resolves only the few names these files
contain (numpy arrays and dtypes, a scipy CSR matrix, ``defaultdict`` and ``list``), and the CSR matrix
is rebuilt from its arrays by a stand-in class, so no scipy object is ever constructed from file
data. The files are also checked against their registered sha256 by :func:`aicanon.core.data.fetch`
before being read.

PubMed's ``ind.pubmed.allx`` is not staged (see shared/data/SOURCES.md), so ``load_planetoid("pubmed")``
raises :class:`aicanon.core.DataUnavailable` unless the file has been provided.
"""

from __future__ import annotations

import collections
import io
import pickle
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from aicanon.core.data import DataUnavailable, data_file, fetch

__all__ = ["NAMES", "Planetoid", "load_planetoid", "row_normalize"]

NAMES = ("cora", "citeseer", "pubmed")
_PARTS = ("x", "y", "tx", "ty", "allx", "ally", "graph", "test.index")
_DATASET = "planetoid"


@dataclass
class Planetoid:
    """One Planetoid graph with the standard public split.

    Attributes:
        name: ``cora``, ``citeseer`` or ``pubmed``.
        x: float32 ``[N, F]`` node features (binary bag of words for Cora/CiteSeer, TF-IDF for PubMed;
           row-normalised when loaded with ``normalize_features=True``).
        y: int64 ``[N]`` class ids; ``-1`` for nodes with no label (CiteSeer's isolated test-range nodes).
        edge_index: int64 ``[2, E]``, every undirected edge in both directions, sorted, no duplicates,
           no self loops.
        train_mask, val_mask, test_mask: bool ``[N]``, disjoint.
        num_classes: number of classes.
    """

    name: str
    x: Tensor
    y: Tensor
    edge_index: Tensor
    train_mask: Tensor
    val_mask: Tensor
    test_mask: Tensor
    num_classes: int

    @property
    def num_nodes(self) -> int:
        return int(self.x.size(0))

    @property
    def num_features(self) -> int:
        return int(self.x.size(1))

    @property
    def num_edges(self) -> int:
        """Directed edges (each undirected edge counts twice)."""
        return int(self.edge_index.size(1))

    def to(self, device: torch.device | str) -> Planetoid:
        """A copy with every tensor on ``device``."""
        return Planetoid(
            self.name,
            self.x.to(device),
            self.y.to(device),
            self.edge_index.to(device),
            self.train_mask.to(device),
            self.val_mask.to(device),
            self.test_mask.to(device),
            self.num_classes,
        )


class _CSRState:
    """Stand-in for ``scipy.sparse.csr_matrix`` while unpickling: it only stores the pickled state."""

    def __init__(self, *args: Any) -> None:  # the pickle calls cls.__new__ only; keep a plain object
        self.state: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"csr_matrix state must be a dict, got {type(state).__name__}")
        self.state = state

    def to_dense(self) -> np.ndarray:
        state = self.state
        try:
            shape = tuple(int(s) for s in state["_shape"])
            data, indices, indptr = state["data"], state["indices"], state["indptr"]
        except (KeyError, TypeError, ValueError) as error:
            raise pickle.UnpicklingError(f"csr_matrix state lacks a field: {error}") from error
        for arr in (data, indices, indptr):
            if not isinstance(arr, np.ndarray) or arr.dtype == object:
                raise pickle.UnpicklingError("csr_matrix arrays must be numeric numpy arrays")
        rows, cols = shape
        if indptr.shape != (rows + 1,) or indices.shape != data.shape or int(indptr[-1]) != data.size:
            raise pickle.UnpicklingError("csr_matrix arrays are inconsistent with its shape")
        if indices.size and (indices.min() < 0 or indices.max() >= cols):
            raise pickle.UnpicklingError("csr_matrix column index out of range")
        dense = np.zeros(shape, dtype=np.float32)
        row_of = np.repeat(np.arange(rows), np.diff(indptr))
        # Duplicate (row, col) entries add up, as in scipy's todense().
        np.add.at(dense, (row_of, indices), data.astype(np.float32))
        return dense


def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the names that the Planetoid files use; anything else is refused."""

    _ALLOWED: ClassVar[dict[tuple[str, str], Any]] = {
        ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct(),
        ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct(),
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("scipy.sparse.csr", "csr_matrix"): _CSRState,
        ("scipy.sparse._csr", "csr_matrix"): _CSRState,
        ("collections", "defaultdict"): collections.defaultdict,
        ("__builtin__", "list"): list,
        ("builtins", "list"): list,
    }

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: not a Planetoid data type"
            ) from None


def _unpickle(data: bytes) -> Any:
    return _RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()


def _as_matrix(obj: Any, part: str) -> np.ndarray:
    if isinstance(obj, _CSRState):
        return obj.to_dense()
    if isinstance(obj, np.ndarray) and obj.dtype != object and obj.ndim == 2:
        return obj.astype(np.float32)
    raise pickle.UnpicklingError(f"{part} must hold a 2-D numeric matrix, got {type(obj).__name__}")


def _read_part(name: str, part: str) -> Any:
    filename = f"ind.{name}.{part}"
    path = fetch(_DATASET, filename)  # raises DataUnavailable when missing, unverifiable or corrupt
    try:
        raw = path.read_bytes()
        if part == "test.index":
            return np.array([int(line) for line in raw.decode("ascii").split()], dtype=np.int64)
        obj = _unpickle(raw)
        if part == "graph":
            if not isinstance(obj, dict):
                raise pickle.UnpicklingError(
                    f"graph must be a dict of adjacency lists, got {type(obj).__name__}"
                )
            return obj
        return _as_matrix(obj, part)
    except (
        pickle.UnpicklingError,
        ValueError,
        TypeError,
        EOFError,
        UnicodeDecodeError,
        AttributeError,
    ) as error:
        entry = data_file(_DATASET, filename)
        raise DataUnavailable(
            _DATASET, filename, entry.url, entry.sha256, f"it could not be parsed ({error})"
        ) from error


def row_normalize(x: Tensor) -> Tensor:
    """Divide every row by its sum (rows summing to 0 stay 0): the GCN/GAT feature preprocessing."""
    if not isinstance(x, Tensor) or x.dim() != 2 or not x.is_floating_point():
        got = f"shape {tuple(x.shape)}, dtype {x.dtype}" if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x must be a 2-D floating-point tensor, got {got}")
    total = x.sum(dim=1, keepdim=True)
    return x / torch.where(total == 0, torch.ones_like(total), total)


def _edges_from_adjacency(graph: dict, num_nodes: int) -> Tensor:
    sources, targets = [], []
    for node, neighbours in graph.items():
        if not isinstance(neighbours, list):
            raise pickle.UnpicklingError("graph values must be lists of node ids")
        sources.extend([int(node)] * len(neighbours))
        targets.extend(int(v) for v in neighbours)
    pairs = np.array([sources, targets], dtype=np.int64).reshape(2, -1)
    if pairs.size and (pairs.min() < 0 or pairs.max() >= num_nodes):
        raise pickle.UnpicklingError(f"graph holds node ids outside [0, {num_nodes})")
    # Both directions, as the GCN code's nx.from_dict_of_lists adjacency does; self loops go (the
    # models add their own), duplicates merge (the adjacency is a 0/1 matrix).
    both = np.concatenate([pairs, pairs[::-1]], axis=1)
    both = both[:, both[0] != both[1]]
    keys = np.unique(both[0] * num_nodes + both[1])
    return torch.from_numpy(np.stack([keys // num_nodes, keys % num_nodes]))


def load_planetoid(name: str, normalize_features: bool = False) -> Planetoid:
    """Load ``cora``, ``citeseer`` or ``pubmed`` with the standard public split (see the module docstring).

    ``normalize_features=True`` divides every feature row by its sum, as GCN and GAT preprocess.
    Raises :class:`aicanon.core.DataUnavailable` when a file is missing, corrupt or unparsable.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, one of {NAMES}, got {type(name).__name__}")
    key = name.lower()
    if key not in NAMES:
        raise ValueError(f"name must be one of {NAMES}, got {name!r}")
    # Fetch (verify) every file before parsing any, so a missing file fails fast and names itself.
    for part in _PARTS:
        fetch(_DATASET, f"ind.{key}.{part}")
    parts = {part: _read_part(key, part) for part in _PARTS}
    y, tx, ty, allx, ally = (parts[p] for p in ("y", "tx", "ty", "allx", "ally"))
    graph, test_index = parts["graph"], parts["test.index"]
    sorted_test = np.sort(test_index)
    num_classes = y.shape[1]

    if key == "citeseer":
        # Isolated CiteSeer nodes: ids in the test range with no row in tx/ty get zero rows (GCN code).
        span = int(sorted_test[-1] - sorted_test[0]) + 1
        tx_full = np.zeros((span, tx.shape[1]), dtype=np.float32)
        ty_full = np.zeros((span, ty.shape[1]), dtype=np.float32)
        tx_full[sorted_test - sorted_test[0]] = tx
        ty_full[sorted_test - sorted_test[0]] = ty
        tx, ty = tx_full, ty_full

    features = np.concatenate([allx, tx], axis=0)
    labels_onehot = np.concatenate([ally, ty], axis=0)
    # The test rows come in test.index order; put row r of the sorted test block at node test_index[r].
    features[test_index] = features[sorted_test]
    labels_onehot[test_index] = labels_onehot[sorted_test]
    num_nodes = features.shape[0]
    if len(graph) != num_nodes:
        entry = data_file(_DATASET, f"ind.{key}.graph")
        raise DataUnavailable(
            _DATASET,
            f"ind.{key}.graph",
            entry.url,
            entry.sha256,
            f"it lists {len(graph)} nodes but the feature files hold {num_nodes}",
        )
    labels = labels_onehot.argmax(axis=1).astype(np.int64)
    labels[labels_onehot.sum(axis=1) == 0] = -1

    masks = []
    for index in (np.arange(y.shape[0]), np.arange(y.shape[0], y.shape[0] + 500), test_index):
        mask = np.zeros(num_nodes, dtype=bool)
        mask[index] = True
        masks.append(torch.from_numpy(mask))
    x_tensor = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    if normalize_features:
        x_tensor = row_normalize(x_tensor)
    return Planetoid(
        name=key,
        x=x_tensor,
        y=torch.from_numpy(labels),
        edge_index=_edges_from_adjacency(graph, num_nodes),
        train_mask=masks[0],
        val_mask=masks[1],
        test_mask=masks[2],
        num_classes=int(num_classes),
    )
