"""Scatter helpers: golden values, properties against dense references, PyG parity, bad input."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aicanon.graphs import scatter
from aicanon.graphs.scatter import (
    gather_weighted_sum,
    scatter_max,
    scatter_mean,
    scatter_softmax,
    scatter_sum,
)

pytestmark = pytest.mark.paper("gat")

INDEX = torch.tensor([0, 2, 0, 2, 2])
SRC = torch.tensor([1.0, 2.0, 3.0, -4.0, 5.0])


def test_golden_values():
    assert scatter_sum(SRC, INDEX, 4).tolist() == [4.0, 0.0, 3.0, 0.0]
    assert scatter_mean(SRC, INDEX, 4).tolist() == [2.0, 0.0, 1.0, 0.0]
    assert scatter_max(SRC, INDEX, 4).tolist() == [3.0, 0.0, 5.0, 0.0]
    assert scatter_max(SRC, INDEX, 4, fill=-7.0).tolist() == [3.0, -7.0, 5.0, -7.0]
    soft = scatter_softmax(SRC, INDEX, 4)
    e = torch.exp(torch.tensor([1.0, 3.0]))
    assert torch.allclose(soft[[0, 2]], e / e.sum())
    e = torch.exp(torch.tensor([2.0, -4.0, 5.0]))
    assert torch.allclose(soft[[1, 3, 4]], e / e.sum())


def test_trailing_dimensions_are_carried():
    src = torch.arange(10.0).view(5, 2)
    assert scatter_sum(src, INDEX, 3).tolist() == [[4.0, 6.0], [0.0, 0.0], [16.0, 19.0]]


def test_softmax_is_stable_for_huge_scores():
    out = scatter_softmax(torch.tensor([1e4, 1e4 - 1.0, -1e4]), torch.tensor([0, 0, 1]), 2)
    assert torch.isfinite(out).all()
    assert torch.allclose(out, torch.tensor([1 / (1 + torch.e**-1), 1 / (1 + torch.e), 1.0]))


def _dense_softmax(src, index, n):
    out = torch.empty_like(src)
    for group in range(n):
        members = index == group
        if members.any():
            out[members] = torch.softmax(src[members], dim=0)
    return out


graphs = st.integers(1, 12).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.lists(st.integers(0, n - 1), min_size=0, max_size=40),
        st.integers(1, 3),
        st.integers(0, 2**31 - 1),
    )
)


@settings(max_examples=60, deadline=None)
@given(graphs)
def test_softmax_and_sum_match_dense_references(case):
    n, index, width, seed = case
    index = torch.tensor(index, dtype=torch.long)
    src = torch.randn(len(index), width, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    one_hot = (
        torch.nn.functional.one_hot(index, n).to(src.dtype)
        if len(index)
        else torch.zeros(0, n, dtype=src.dtype)
    )
    assert torch.allclose(scatter_sum(src, index, n), one_hot.t() @ src)
    soft = scatter_softmax(src, index, n)
    assert torch.allclose(soft, _dense_softmax(src, index, n))
    sums = scatter_sum(soft, index, n)
    present = torch.bincount(index, minlength=n) > 0
    assert torch.allclose(sums[present], torch.ones_like(sums[present]))
    assert torch.all(sums[~present] == 0)


@pytest.mark.parametrize("chunk", [3, 1 << 16])
def test_gather_weighted_sum_matches_autograd_reference(monkeypatch, chunk):
    monkeypatch.setattr(scatter, "CHUNK_EDGES", chunk)  # 3: many chunks; default: one chunk
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 4, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(17, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    source, target = torch.randint(0, 6, (17,), generator=gen), torch.randint(0, 5, (17,), generator=gen)
    out = gather_weighted_sum(x, weight, source, target, 5)
    expected = scatter_sum(x[source] * weight.unsqueeze(-1), target, 5)
    assert torch.allclose(out, expected)
    assert torch.autograd.gradcheck(lambda a, b: gather_weighted_sum(a, b, source, target, 5), (x, weight))
    scalar_weight = weight[:, 0].detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda a, b: gather_weighted_sum(a, b, source, target, 5), (x, scalar_weight)
    )


def test_softmax_gradients_including_second_order():
    gen = torch.Generator().manual_seed(1)
    src = torch.randn(20, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    index = torch.randint(0, 6, (20,), generator=gen)
    assert torch.autograd.gradcheck(lambda s: scatter_softmax(s, index, 7), (src,))
    assert torch.autograd.gradgradcheck(lambda s: scatter_softmax(s, index, 7), (src,))


def test_empty_input():
    empty = torch.zeros(0, 2)
    index = torch.zeros(0, dtype=torch.long)
    assert scatter_sum(empty, index, 3).tolist() == [[0.0, 0.0]] * 3
    assert scatter_softmax(empty, index, 3).shape == (0, 2)
    out = gather_weighted_sum(torch.ones(3, 2), torch.zeros(0), index, index, 3)
    assert out.tolist() == [[0.0, 0.0]] * 3


@pytest.mark.parity
def test_parity_with_torch_geometric():
    pytest.importorskip("torch_geometric")
    from torch_geometric.utils import scatter as pyg_scatter
    from torch_geometric.utils import softmax as pyg_softmax

    gen = torch.Generator().manual_seed(2)
    src = torch.randn(300, 8, generator=gen, requires_grad=True)
    index = torch.randint(0, 50, (300,), generator=gen)
    ours, reference = scatter_softmax(src, index, 60), pyg_softmax(src, index, num_nodes=60)
    assert torch.allclose(ours, reference, atol=1e-6)
    grad = torch.randn(300, 8, generator=gen)
    (g_ours,) = torch.autograd.grad(ours, src, grad)
    (g_ref,) = torch.autograd.grad(reference, src, grad)
    assert torch.allclose(g_ours, g_ref, atol=1e-5)
    for reduce, ours_fn in (("sum", scatter_sum), ("mean", scatter_mean), ("max", scatter_max)):
        assert torch.allclose(
            ours_fn(src, index, 60), pyg_scatter(src, index, 0, 60, reduce=reduce), atol=1e-6
        )


@pytest.mark.parametrize("fn", [scatter_sum, scatter_mean, scatter_max, scatter_softmax])
def test_bad_input(fn):
    src = torch.randn(4, 2)
    with pytest.raises(ValueError, match="index must be 1-D, got shape"):
        fn(src, torch.zeros(4, 1, dtype=torch.long), 3)
    with pytest.raises(TypeError, match="index must be an int64 or int32 tensor, got torch.float32"):
        fn(src, torch.zeros(4), 3)
    with pytest.raises(ValueError, match=r"one entry per row of src \(4\), got 3"):
        fn(src, torch.zeros(3, dtype=torch.long), 3)
    with pytest.raises(
        ValueError, match=r"index values must lie in \[0, dim_size=3\), got values in \[0, 3\]"
    ):
        fn(src, torch.tensor([0, 1, 2, 3]), 3)
    with pytest.raises(ValueError, match="dim_size must be >= 0, got -1"):
        fn(src, torch.zeros(4, dtype=torch.long), -1)
    with pytest.raises(TypeError, match="src must be a torch.Tensor, got list"):
        fn([1.0, 2.0], torch.zeros(2, dtype=torch.long), 3)


def test_gather_weighted_sum_bad_input():
    x, index = torch.randn(4, 2, 3), torch.tensor([0, 1, 2])
    with pytest.raises(ValueError, match=r"weight must have shape \[E, \*x.shape\[1:k\]\]"):
        gather_weighted_sum(x, torch.ones(3, 5), index, index, 4)
    with pytest.raises(ValueError, match="source and target must be 1-D with one entry per weight row"):
        gather_weighted_sum(x, torch.ones(3, 2), index, index[:2], 4)
    with pytest.raises(ValueError, match="index values must lie in"):
        gather_weighted_sum(x, torch.ones(3, 2), torch.tensor([0, 1, 9]), index, 4)
    with pytest.raises(TypeError, match="scatter_softmax: src must be a floating-point tensor"):
        scatter_softmax(torch.ones(3, dtype=torch.long), index, 4)
