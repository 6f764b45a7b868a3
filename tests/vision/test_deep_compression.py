"""Deep Compression as SqueezeNet uses it: pruning, k-means sharing (Eq. 1-3), relative indices,
Huffman coding and the size accounting; scikit-learn's k-means as the reference; bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from aicanon.vision.deep_compression import (
    MEGABYTE,
    apply_masks_,
    centroid_gradients,
    deep_compress,
    finetune_centroids_step,
    huffman_code_lengths,
    kmeans_1d,
    linear_centroids,
    magnitude_prune_mask,
    prune_,
    quantize_,
    relative_index_decode,
    relative_index_encode,
    storage_report,
)

pytestmark = pytest.mark.paper("squeezenet")

floats = st.floats(-10, 10, allow_nan=False, width=32)


# --- pruning ------------------------------------------------------------------------------------


def test_magnitude_prune_mask_by_hand():
    weight = torch.tensor([0.1, -0.5, 0.3, -0.05])
    assert magnitude_prune_mask(weight, 0.5).tolist() == [False, True, True, False]
    assert magnitude_prune_mask(weight, 0.0).all()
    assert magnitude_prune_mask(weight, 0.74).tolist() == [False, True, True, False]  # floor(2.96) = 2
    ties = torch.tensor([1.0, 1.0, 1.0, 2.0])
    assert magnitude_prune_mask(ties, 0.5).tolist() == [False, False, True, True]  # earlier first


@settings(max_examples=30, deadline=None)
@given(values=st.lists(floats, min_size=1, max_size=60), sparsity=st.floats(0, 0.999))
def test_pruning_removes_the_exact_count_of_smallest_weights(values, sparsity):
    weight = torch.tensor(values)
    mask = magnitude_prune_mask(weight, sparsity)
    assert int((~mask).sum()) == math.floor(sparsity * len(values))
    if mask.any() and (~mask).any():
        assert weight[mask].abs().min() >= weight[~mask].abs().max()


def test_prune_and_masks_hold_zeros_while_retraining():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.Flatten(), nn.Linear(16, 3))
    masks = prune_(model, {"0": 0.5, "2": 0.75})
    assert int((model[0].weight == 0).sum()) == 36 and int((model[2].weight == 0).sum()) == 36
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    apply_masks_(model, masks)
    assert torch.equal(model[0].weight == 0, ~masks["0"])
    assert torch.equal(model[2].weight == 0, ~masks["2"])


# --- k-means weight sharing ---------------------------------------------------------------------


def test_linear_initialisation_spaces_centroids_between_min_and_max():
    assert linear_centroids(torch.tensor([-1.0, 0.0, 3.0]), 5).tolist() == [-1.0, 0.0, 1.0, 2.0, 3.0]
    assert linear_centroids(torch.tensor([2.0, 4.0]), 1).tolist() == [3.0]


def test_kmeans_by_hand():
    centroids, assignment = kmeans_1d(torch.tensor([0.0, 0.1, 0.2, 10.0, 10.1]), 2)
    assert centroids.tolist() == pytest.approx([0.1, 10.05])
    assert assignment.tolist() == [0, 0, 0, 1, 1]
    # Linear init keeps a centroid near a rare large weight; density (quantile) init does not.
    values = torch.cat([torch.linspace(-0.1, 0.1, 99), torch.tensor([5.0])])
    linear, _ = kmeans_1d(values, 4, init="linear")
    density, _ = kmeans_1d(values, 4, init="density", iterations=0)
    assert linear.max().item() == pytest.approx(5.0)
    assert density.max().item() == pytest.approx(5.0)  # the max quantile is the max itself
    # ...but linear init leaves its middle centroids where no weight is (they stay empty), while
    # density init spends three of four centroids on the dense small weights.
    assert (density < 1).sum() == 3 and (linear < 1).sum() == 1


@settings(max_examples=30, deadline=None)
@given(values=st.lists(floats, min_size=2, max_size=80), k=st.integers(1, 8))
def test_kmeans_fixed_point_properties(values, k):
    x = torch.tensor(values, dtype=torch.float64)
    centroids, assignment = kmeans_1d(x, k)
    assert torch.all(centroids[1:] >= centroids[:-1])  # sorted
    nearest = (x[:, None] - centroids[None, :]).abs().min(dim=1).values
    assert torch.allclose((x - centroids[assignment]).abs(), nearest)  # each weight at its nearest
    for c in range(k):
        members = x[assignment == c]
        if members.numel():
            assert centroids[c].item() == pytest.approx(members.mean().item(), abs=1e-9)
    # Lloyd never increases the within-cluster sum of squares (Eq. 1) from its linear start.
    start = linear_centroids(x, k)
    start_sse = ((x[:, None] - start[None, :]) ** 2).min(dim=1).values.sum()
    assert ((x - centroids[assignment]) ** 2).sum() <= start_sse + 1e-9


@pytest.mark.parity
def test_parity_kmeans_with_scikit_learn_from_the_linear_initialisation():
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(0)
    values = np.concatenate([rng.uniform(-0.5, 0.5, 2000), rng.normal(0, 0.05, 500)])
    for k in (4, 16, 32):
        init = linear_centroids(torch.from_numpy(values), k).numpy().reshape(-1, 1)
        reference = KMeans(k, init=init, n_init=1, max_iter=1000, tol=0, algorithm="lloyd")
        reference.fit(values.reshape(-1, 1))
        centroids, assignment = kmeans_1d(torch.from_numpy(values), k, iterations=1000)
        # No cluster empties on these values (scikit-learn would relocate one; ours keep their place).
        assert np.unique(assignment.numpy()).size == k
        ref_centroids = reference.cluster_centers_.ravel()
        np.testing.assert_allclose(centroids.numpy(), ref_centroids, atol=1e-5)
        np.testing.assert_allclose(
            centroids.numpy()[assignment.numpy()], ref_centroids[reference.labels_], atol=1e-5
        )


def test_quantize_shares_at_most_two_to_the_bits_values():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(8, 5))
    masks = prune_(model, {"0": 0.6})
    layers = quantize_(model, {"0": 3, "2": 2}, masks=masks)
    conv, linear = layers["0"], layers["2"]
    assert conv.sparse and not linear.sparse
    assert torch.equal(model[0].weight, conv.weight()) and torch.equal(model[2].weight, linear.weight())
    assert conv.codebook[0] == 0 and torch.all(conv.codes[~masks["0"]] == 0)
    assert torch.all(conv.codes[masks["0"]] >= 1)  # kept weights never decode to the zero code
    assert model[0].weight.unique().numel() <= 2**3
    assert model[2].weight.unique().numel() <= 2**2
    assert torch.equal(model[0].weight == 0, ~masks["0"])


# --- centroid fine-tuning (Eq. 3) ---------------------------------------------------------------


def test_centroid_gradient_by_hand_and_against_autograd():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.0, 0.5], [0.5, -1.0]]))
    layer = quantize_(model, 2, masks={"0": torch.tensor([[False, True], [True, True]])})["0"]
    # Three clusters for the kept values, linear init at -1, -0.25, 0.5 (codes 1..3; 0 is the zero).
    assert layer.codes.tolist() == [[0, 3], [3, 1]]
    grad = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert centroid_gradients(grad, layer).tolist() == [0.0, 4.0, 0.0, 5.0]  # code 0 (zeros) is fixed
    # Eq. 3 is the chain rule through weight = codebook[codes]: compare with autograd.
    codebook = torch.randn(16, dtype=torch.float64, requires_grad=True)
    layer.codebook, layer.sparse = codebook.detach().clone(), False
    layer.codes = torch.randint(0, 16, (2, 2))
    x = torch.randn(5, 2, dtype=torch.float64)
    weight = codebook[layer.codes]
    loss = torch.tanh(x @ weight.T).pow(2).sum()
    (weight_grad,) = torch.autograd.grad(loss, weight, retain_graph=True)
    (codebook_grad,) = torch.autograd.grad(loss, codebook)
    assert torch.allclose(centroid_gradients(weight_grad, layer), codebook_grad)


def test_finetuning_moves_centroids_keeps_codes_and_zeros():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3))
    x, y = torch.randn(64, 6), torch.randint(0, 3, (64,))
    report = deep_compress(model, 0.5, 2)
    codes = {k: v.codes.clone() for k, v in report.layers.items()}
    zeros = model[0].weight == 0
    losses = []
    for _ in range(30):
        model.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        losses.append(loss.item())
        finetune_centroids_step(model, report.layers, lr=0.5)
    assert losses[-1] < losses[0]
    assert all(torch.equal(codes[k], v.codes) for k, v in report.layers.items())
    assert torch.equal(model[0].weight == 0, zeros)
    assert model[0].weight.unique().numel() <= 4


# --- storage: relative indices, Huffman, the report ---------------------------------------------


def test_relative_indices_by_hand_with_filler_zeros():
    # Section 2 / Figure 2: 3-bit relative indices (gaps up to 8); a gap of 11 needs one filler.
    mask = torch.zeros(20, dtype=torch.bool)
    mask[[1, 4, 15]] = True
    stored, filler = relative_index_encode(mask, 3)
    assert stored.tolist() == [1, 2, 7, 2]
    assert filler.tolist() == [False, False, True, False]
    assert relative_index_decode(stored).tolist() == [1, 4, 12, 15]  # the filler sits at 12
    assert relative_index_decode(stored, filler).tolist() == [1, 4, 15]
    edge = torch.zeros(20, dtype=torch.bool)
    edge[[7, 16]] = True  # gaps of exactly 8 and 9
    stored, filler = relative_index_encode(edge, 3)
    assert stored.tolist() == [7, 7, 0] and filler.tolist() == [False, True, False]


@settings(max_examples=40, deadline=None)
@given(bits=st.lists(st.booleans(), min_size=1, max_size=200), index_bits=st.integers(1, 5))
def test_relative_indices_round_trip(bits, index_bits):
    mask = torch.tensor(bits)
    stored, filler = relative_index_encode(mask, index_bits)
    assert torch.all((stored >= 0) & (stored < 2**index_bits))
    assert torch.equal(relative_index_decode(stored, filler), torch.nonzero(mask).reshape(-1))


def test_huffman_code_lengths_by_hand():
    # The textbook example (CLRS 16.3): a:45 b:13 c:12 d:16 e:9 f:5 -> 1,3,3,3,4,4; 224 bits.
    lengths = huffman_code_lengths([45, 13, 12, 16, 9, 5])
    assert lengths.tolist() == [1, 3, 3, 3, 4, 4]
    assert int((torch.tensor([45, 13, 12, 16, 9, 5]) * lengths).sum()) == 224
    assert huffman_code_lengths([0, 7, 0]).tolist() == [0, 1, 0]
    assert huffman_code_lengths([0, 0]).tolist() == [0, 0]


@settings(max_examples=40, deadline=None)
@given(
    counts=st.lists(st.integers(0, 1000), min_size=2, max_size=40).filter(
        lambda c: sum(x > 0 for x in c) >= 2
    )
)
def test_huffman_is_a_complete_prefix_code_within_one_bit_of_the_entropy(counts):
    c = torch.tensor(counts)
    lengths = huffman_code_lengths(c)
    used = c > 0
    assert torch.all(lengths[used] >= 1) and torch.all(lengths[~used] == 0)
    assert sum(2.0 ** -int(length) for length in lengths[used]) == pytest.approx(1.0)  # Kraft, tight
    p = c[used].double() / c.sum()
    entropy = float(-(p * p.log2()).sum())
    average = float((p * lengths[used]).sum())
    assert entropy - 1e-9 <= average < entropy + 1


def test_storage_report_by_hand():
    model = nn.Sequential(nn.Linear(8, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.9, 0.01, 0.02, 0.8, 0.03, 0.04, 0.05, -0.7]]))
    report = deep_compress(model, 0.5, 2, index_bits=1)
    layer = report.layers["0"]
    # Kept: positions 0, 3, 6, 7 (gaps 1, 3, 3, 1); 1-bit indices span 2, so gaps of 3 need a filler.
    assert (layer.nonzeros, layer.fillers, layer.entries) == (4, 2, 6)
    assert layer.code_bits == 6 * 2 and layer.index_bits_total == 6 * 1
    assert layer.codebook_bits == 4 * 32 and layer.bias_bits == 32 and layer.header_bits == 32
    assert report.stored_bits == 12 + 6 + 128 + 32 + 32
    assert report.original_bits == 9 * 32
    assert report.density == 0.5
    assert report.stored_mb == report.stored_bits / 8 / MEGABYTE
    assert report.huffman_bits <= report.stored_bits


def test_dense_layer_matches_equation_2():
    # Eq. 2: n weights of b bits shared among k values: r = n b / (n log2 k + k b).
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32, bias=False))
    compressed = quantize_(model, 4)
    report = storage_report(model, compressed)
    layer = report.layers["0"]
    n, b, k = 64 * 32, 32, 16
    assert not layer.sparse
    assert n * b / (layer.code_bits + layer.codebook_bits) == pytest.approx(
        n * b / (n * math.log2(k) + k * b)
    )


def test_other_parameters_count_at_32_bits():
    model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
    report = deep_compress(model, 0.5, 3)
    assert report.other_parameters == 8
    assert report.parameters == 20 + 8


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bits, error", [(0, ValueError), (17, ValueError), (2.5, TypeError), (True, TypeError)]
)
def test_rejects_bits_outside_1_to_16(bits, error):
    model = nn.Sequential(nn.Linear(4, 4))
    with pytest.raises(error, match="bits must be"):
        quantize_(model, bits)
    with pytest.raises(error, match="bits must be"):
        deep_compress(model, 0.5, bits)
    with pytest.raises(error, match="index_bits must be"):
        relative_index_encode(torch.ones(3, dtype=torch.bool), bits)


@pytest.mark.parametrize("sparsity, error", [(-0.1, ValueError), (1.0, ValueError), ("0.5", TypeError)])
def test_rejects_sparsity_outside_0_to_1(sparsity, error):
    with pytest.raises(error, match=r"sparsity must be"):
        magnitude_prune_mask(torch.randn(4), sparsity)
    with pytest.raises(error, match=r"sparsity must be"):
        deep_compress(nn.Sequential(nn.Linear(4, 4)), sparsity, 4)


def test_rejects_other_bad_input():
    model = nn.Sequential(nn.Linear(4, 4))
    with pytest.raises(ValueError, match=r"sparsity\['0'\] must be in \[0, 1\).*got 1.5"):
        prune_(model, {"0": 1.5})
    with pytest.raises(ValueError, match="sparsity names layers the model lacks: \\['fc'\\]"):
        prune_(model, {"fc": 0.5})
    with pytest.raises(ValueError, match="not conv/linear layers of model: \\['1'\\]"):
        quantize_(model, 4, layers=["1"])
    with pytest.raises(ValueError, match=r"masks\['0'\] must have shape \(4, 4\), got \(4,\)"):
        quantize_(model, 4, masks={"0": torch.ones(4, dtype=torch.bool)})
    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got dict"):
        deep_compress({}, 0.5, 4)
    with pytest.raises(TypeError, match="weight must be a floating-point tensor, got torch.int64"):
        magnitude_prune_mask(torch.arange(4), 0.5)
    with pytest.raises(TypeError, match="mask must be a bool tensor"):
        relative_index_encode(torch.ones(3), 4)
    with pytest.raises(ValueError, match="k must be >= 1, got 0"):
        linear_centroids(torch.randn(3), 0)
    with pytest.raises(ValueError, match="init must be 'linear' or 'density', got 'random'"):
        kmeans_1d(torch.randn(3), 2, init="random")
    with pytest.raises(ValueError, match="frequencies must be >= 0"):
        huffman_code_lengths([3, -1])
    report = deep_compress(model, 0.5, 2)
    with pytest.raises(ValueError, match=r"weight_grad must have shape \(4, 4\), got \(2, 2\)"):
        centroid_gradients(torch.zeros(2, 2), report.layers["0"])
    with pytest.raises(ValueError, match="lr must be > 0, got 0"):
        finetune_centroids_step(model, report.layers, 0)
