"""Deep Compression (Han, Mao and Dally, ICLR 2016) as SqueezeNet applies it (Iandola et al. 2016, Section 4).

Three stages, applied per layer to the weights of every ``nn.Conv2d`` and ``nn.Linear`` (biases stay
32-bit floats):

1. **Magnitude pruning** (Han et al. Section 2): the smallest-magnitude weights of a layer are set
   to zero, ``sparsity`` being the fraction removed (per layer, a float or a mapping layer -> float);
   the network is then retrained with the pruned weights held at zero (:func:`apply_masks_` after
   each optimiser step). The survivors are stored in a sparse format with **relative indices**: each
   entry stores its distance to the previous one in ``index_bits`` bits; when a gap exceeds
   ``2**index_bits`` a *filler zero* entry is inserted (Section 2, Figure 2).
2. **Weight sharing by k-means** (Section 3): the surviving weights of a layer are clustered into
   ``k = 2**bits`` shared values (one code, value 0.0, is kept for the pruned and filler entries of
   a sparse layer, so it has ``2**bits - 1`` clusters), minimising the within-cluster sum of squares

       argmin_C  sum_{i=1..k} sum_{w in c_i} |w - c_i|^2                       (Eq. 1)

   from the **linear initialisation** (centroids evenly spaced between the layer's min and max
   weight, Section 3.2, which keeps the rare large weights represented). Each weight is then stored
   as a ``bits``-bit index into the layer's codebook of 32-bit floats; the compression rate of a
   dense layer of ``n`` weights of ``b`` bits is

       r = n b / (n log2(k) + k b)                                               (Eq. 2)

   **Centroid fine-tuning** (Section 3.3): the gradient of each shared value is the sum of the
   gradients of the weights that share it,

       dL/dC_k = sum_{i,j} dL/dW_ij 1(I_ij = k)                                  (Eq. 3)

   (:func:`centroid_gradients`, :func:`finetune_centroids_step`).
3. **Huffman coding** (Section 4) of the weight indices and of the relative sparse indices, whose
   distributions are far from uniform: :func:`huffman_code_lengths` gives the optimal prefix code's
   lengths, and the report counts the coded bits.

:func:`deep_compress` runs stages 1 and 2 on a model in place (its weights become the shared
values) and returns a :class:`CompressionReport`: per layer the codebook, the codes and the
storage in bits with and without Huffman coding; in total, the stored model's size in MB
(``2**20`` bytes: the paper's "4.8 MB" for SqueezeNet's 1,248,424 32-bit parameters is 4.76 MiB,
5.0 million bytes).

SqueezeNet (Section 4, Table 2): 33 % of the weights kept ("33% sparsity"; the released 660 KB
8-bit model, songhan/SqueezeNet-Deep-Compression, matches a density of about 1/3 with 4-bit
relative indices, 8-bit codes, 32-bit codebooks and biases) with 8-bit sharing gives 0.66 MB and
with 6-bit sharing 0.47 MB, at the uncompressed model's 57.5 % top-1 on ImageNet.

Departures from Han et al., and why:

* Pruning removes an exact fraction of each layer by magnitude (ties broken by position), where
  Han et al. threshold at a multiple of the layer's weight standard deviation: SqueezeNet's paper
  states its result as a sparsity, so the sparsity is the parameter. One-shot pruning followed by
  retraining; Han et al. iterate prune-retrain several times.
* ``index_bits`` defaults to 4, the released compressed SqueezeNet's format; Han et al. use 8 bits
  for conv layers and 5 for fc layers of AlexNet/VGG.
* The sparse format stores a flat relative index over the weight tensor in C order (PyTorch's and
  Caffe's layout, as the released decoder reads it), not CSC column pointers; the per-layer header
  is one 32-bit count of entries.
* Huffman code tables are not counted in the size (Han et al. do not count them either; at most
  ``2**bits`` lengths per layer).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from aicanon.core.checks import check_float, check_int

__all__ = [
    "MEGABYTE",
    "CompressionReport",
    "LayerCompression",
    "apply_masks_",
    "apply_shared_weights_",
    "centroid_gradients",
    "compressible_layers",
    "deep_compress",
    "finetune_centroids_step",
    "huffman_code_lengths",
    "kmeans_1d",
    "linear_centroids",
    "magnitude_prune_mask",
    "prune_",
    "quantize_",
    "relative_index_decode",
    "relative_index_encode",
    "storage_report",
]

MEGABYTE = 2**20
"""Bytes per MB in the reports: the paper's 4.8 MB for 1,248,424 32-bit weights is 4.76 * 2**20 bytes."""
FLOAT_BITS = 32


# --- input checks -------------------------------------------------------------------------------


def _check_sparsity(sparsity: object, name: str = "sparsity") -> float:
    note = "the fraction of weights removed"
    return float(check_float(name, sparsity, 0, 1, max_inclusive=False, note=note))


def _check_bits(bits: object, name: str = "bits") -> int:
    return check_int(name, bits, 1, 16)


def _check_float_tensor(x: object, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
    return x


def _check_model(model: object) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return model


# --- stage 1: pruning ---------------------------------------------------------------------------


def compressible_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The layers Deep Compression prunes and quantises: every ``nn.Conv2d`` and ``nn.Linear``."""
    _check_model(model)
    return {name: m for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}


def magnitude_prune_mask(weight: Tensor, sparsity: float) -> Tensor:
    """Boolean mask keeping all but the ``floor(sparsity * n)`` smallest-magnitude weights (Section 2).

    Ties are broken by position (the earlier weight is pruned first), so the count is exact.
    """
    _check_float_tensor(weight, "weight")
    sparsity = _check_sparsity(sparsity)
    flat = weight.detach().reshape(-1)
    pruned = math.floor(sparsity * flat.numel())
    mask = torch.ones(flat.numel(), dtype=torch.bool, device=weight.device)
    if pruned:
        order = torch.sort(flat.abs(), stable=True).indices
        mask[order[:pruned]] = False
    return mask.reshape(weight.shape)


def _per_layer(value: float | Mapping[str, float], layers: Iterable[str], name: str) -> dict[str, float]:
    layers = list(layers)
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - set(layers))
        if unknown:
            raise ValueError(f"{name} names layers the model lacks: {unknown}; layers: {layers}")
        return {k: _check_sparsity(v, f"{name}[{k!r}]") for k, v in value.items()}
    value = _check_sparsity(value, name)
    return {k: value for k in layers}


def prune_(
    model: nn.Module, sparsity: float | Mapping[str, float], layers: Iterable[str] | None = None
) -> dict[str, Tensor]:
    """Zero the smallest weights of each layer in place; return the masks (layer name -> bool mask).

    ``sparsity`` is one fraction for every layer or a mapping layer name -> fraction (layers not in
    it are left whole); ``layers`` restricts the layers considered (default: all conv and linear).
    """
    available = compressible_layers(model)
    names = list(available) if layers is None else list(layers)
    missing = [n for n in names if n not in available]
    if missing:
        raise ValueError(f"layers names modules that are not conv/linear layers of model: {missing}")
    fractions = _per_layer(sparsity, names, "sparsity")
    masks = {}
    with torch.no_grad():
        for name, fraction in fractions.items():
            weight = available[name].weight
            masks[name] = magnitude_prune_mask(weight, fraction)
            weight.mul_(masks[name])
    return masks


def apply_masks_(model: nn.Module, masks: Mapping[str, Tensor]) -> None:
    """Hold pruned weights at zero (call after each optimiser step while retraining, Section 2)."""
    available = compressible_layers(model)
    with torch.no_grad():
        for name, mask in masks.items():
            if name not in available:
                raise ValueError(f"masks names {name!r}, not a conv/linear layer of model")
            available[name].weight.mul_(mask)


# --- stage 2: weight sharing --------------------------------------------------------------------


def linear_centroids(values: Tensor, k: int) -> Tensor:
    """``k`` centroids evenly spaced over ``[min(values), max(values)]`` (Section 3.2, linear init)."""
    _check_float_tensor(values, "values")
    check_int("k", k)
    if values.numel() == 0:
        raise ValueError("values must hold at least one weight, got an empty tensor")
    low, high = values.min(), values.max()
    if k == 1:
        return ((low + high) / 2).reshape(1).to(values.dtype)
    return torch.linspace(float(low), float(high), k, dtype=values.dtype, device=values.device)


def _assign(values: Tensor, centroids: Tensor) -> Tensor:
    """Index of the nearest centroid (``centroids`` sorted ascending): boundaries are the midpoints."""
    boundaries = (centroids[1:] + centroids[:-1]) / 2
    return torch.bucketize(values, boundaries)


def kmeans_1d(values: Tensor, k: int, iterations: int = 100, init: str = "linear") -> tuple[Tensor, Tensor]:
    """Lloyd's k-means on scalars (Eq. 1); returns ``(centroids [k], assignments like values)``.

    ``init="linear"`` spaces the centroids evenly between min and max (Han et al.'s choice);
    ``"density"`` puts them at evenly spaced quantiles (Han et al.'s Figure 4 comparison). A
    cluster that loses all its members keeps its centroid. Deterministic.
    """
    _check_float_tensor(values, "values")
    if init not in ("linear", "density"):
        raise ValueError(f"init must be 'linear' or 'density', got {init!r}")
    check_int("iterations", iterations, 0)
    flat = values.detach().reshape(-1).double()
    if init == "linear":
        centroids = linear_centroids(flat, k)
    else:
        check_int("k", k)
        if flat.numel() == 0:
            raise ValueError("values must hold at least one weight, got an empty tensor")
        centroids = torch.quantile(flat, torch.linspace(0, 1, k, dtype=flat.dtype, device=flat.device))
    assignments = _assign(flat, centroids)
    for _ in range(iterations):
        sums = torch.zeros(k, dtype=flat.dtype, device=flat.device).index_add_(0, assignments, flat)
        counts = torch.bincount(assignments, minlength=k)
        centroids = torch.where(counts > 0, sums / counts.clamp(min=1), centroids)
        centroids, order = torch.sort(centroids)
        new = _assign(flat, centroids)
        if torch.equal(new, assignments) and torch.equal(order, torch.arange(k, device=order.device)):
            break
        assignments = new
    return centroids.to(values.dtype), assignments.reshape(values.shape)


@dataclass
class LayerCompression:
    """One layer's stored form: ``weight = codebook[codes]`` and its storage in bits."""

    name: str
    shape: tuple[int, ...]
    bits: int
    codebook: Tensor
    """``[2**bits]`` shared values (32-bit floats). A sparse layer's code 0 is 0.0 (pruned, fillers)."""
    codes: Tensor
    """int64 codes shaped like the weight."""
    sparse: bool
    """Stored with relative indices (the layer was pruned) or densely (every weight has a code)."""
    bias: int = 0
    """Bias parameters, stored as 32-bit floats."""
    nonzeros: int = 0
    fillers: int = 0
    """Filler-zero entries inserted where a gap exceeded ``2**index_bits`` (Section 2)."""
    index_bits: int = 0
    code_bits: int = 0
    index_bits_total: int = 0
    codebook_bits: int = 0
    bias_bits: int = 0
    header_bits: int = 0
    huffman_code_bits: int = 0
    huffman_index_bits: int = 0

    @property
    def parameters(self) -> int:
        return math.prod(self.shape)

    @property
    def entries(self) -> int:
        """Stored entries: the nonzeros plus fillers (sparse), or every weight (dense)."""
        return self.nonzeros + self.fillers if self.sparse else self.parameters

    @property
    def density(self) -> float:
        return self.nonzeros / self.parameters

    @property
    def total_bits(self) -> int:
        return self.code_bits + self.index_bits_total + self.codebook_bits + self.bias_bits + self.header_bits

    @property
    def huffman_total_bits(self) -> int:
        return (
            self.huffman_code_bits
            + self.huffman_index_bits
            + self.codebook_bits
            + self.bias_bits
            + self.header_bits
        )

    def weight(self) -> Tensor:
        """The decoded weight, ``codebook[codes]``."""
        return self.codebook[self.codes]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "shape": list(self.shape), "bits": self.bits, "sparse": self.sparse,
            "parameters": self.parameters, "nonzeros": self.nonzeros, "fillers": self.fillers,
            "density": self.density, "bits_stored": self.total_bits, "bits_huffman": self.huffman_total_bits,
        }  # fmt: skip


def quantize_(
    model: nn.Module,
    bits: int | Mapping[str, int],
    masks: Mapping[str, Tensor] | None = None,
    layers: Iterable[str] | None = None,
    iterations: int = 100,
) -> dict[str, LayerCompression]:
    """Share each layer's weights among ``2**bits`` values by k-means (Section 3); weights change in place.

    A layer with a mask in ``masks`` (or with zero weights) is sparse: its zeros get code 0 (value
    0.0) and its nonzeros ``2**bits - 1`` clusters. ``bits`` is one width or a mapping layer -> width.
    """
    available = compressible_layers(model)
    names = list(available) if layers is None else list(layers)
    missing = [n for n in names if n not in available]
    if missing:
        raise ValueError(f"layers names modules that are not conv/linear layers of model: {missing}")
    if isinstance(bits, Mapping):
        unknown = sorted(set(bits) - set(names))
        if unknown:
            raise ValueError(f"bits names layers the model lacks: {unknown}")
        widths = {k: _check_bits(v, f"bits[{k!r}]") for k, v in bits.items()}
    else:
        widths = {k: _check_bits(bits) for k in names}
    masks = dict(masks or {})
    out: dict[str, LayerCompression] = {}
    with torch.no_grad():
        for name, width in widths.items():
            weight = available[name].weight
            mask = masks.get(name)
            if mask is None:
                mask = weight != 0
            mask = mask.to(device=weight.device, dtype=torch.bool)
            if mask.shape != weight.shape:
                raise ValueError(
                    f"masks[{name!r}] must have shape {tuple(weight.shape)}, got {tuple(mask.shape)}"
                )
            sparse = not bool(mask.all())
            k = 2**width
            codebook = torch.zeros(k, dtype=weight.dtype, device=weight.device)
            codes = torch.zeros(weight.shape, dtype=torch.long, device=weight.device)
            values = weight[mask]
            if values.numel():
                clusters = k - 1 if sparse else k
                if clusters >= 1:
                    centroids, assignment = kmeans_1d(values, clusters, iterations)
                    offset = 1 if sparse else 0  # code 0 is the zero of a sparse layer
                    codebook[offset:] = centroids
                    codes[mask] = assignment + offset
            weight.copy_(codebook[codes])
            bias = available[name].bias
            out[name] = LayerCompression(
                name=name, shape=tuple(weight.shape), bits=width, codebook=codebook, codes=codes,
                sparse=sparse, bias=0 if bias is None else bias.numel(), nonzeros=int(mask.sum()),
            )  # fmt: skip
    return out


def centroid_gradients(weight_grad: Tensor, layer: LayerCompression) -> Tensor:
    """Eq. 3: ``dL/dC_k`` is the sum of the gradients of the weights with code ``k``.

    A sparse layer's code 0 (the pruned zeros) gets gradient 0: it stays 0.0.
    """
    _check_float_tensor(weight_grad, "weight_grad")
    if tuple(weight_grad.shape) != layer.shape:
        raise ValueError(f"weight_grad must have shape {layer.shape}, got {tuple(weight_grad.shape)}")
    grad = torch.zeros_like(layer.codebook).index_add_(
        0, layer.codes.reshape(-1), weight_grad.reshape(-1).to(layer.codebook.dtype)
    )
    if layer.sparse:
        grad[0] = 0
    return grad


def apply_shared_weights_(model: nn.Module, compressed: Mapping[str, LayerCompression]) -> None:
    """Write ``codebook[codes]`` into each compressed layer's weight."""
    available = compressible_layers(model)
    with torch.no_grad():
        for name, layer in compressed.items():
            if name not in available:
                raise ValueError(f"compressed names {name!r}, not a conv/linear layer of model")
            available[name].weight.copy_(layer.weight())


def finetune_centroids_step(model: nn.Module, compressed: Mapping[str, LayerCompression], lr: float) -> None:
    """One SGD step on the shared values (Section 3.3) from the gradients already in ``weight.grad``.

    Each codebook moves by ``-lr * dL/dC`` (Eq. 3) and the weights are rewritten from it; codes and
    the pruned zeros do not change. Call after ``loss.backward()``; biases and layers not in
    ``compressed`` are the caller's optimiser's business.
    """
    check_float("lr", lr, 0, min_inclusive=False)
    available = compressible_layers(model)
    with torch.no_grad():
        for name, layer in compressed.items():
            if name not in available:
                raise ValueError(f"compressed names {name!r}, not a conv/linear layer of model")
            grad = available[name].weight.grad
            if grad is None:
                continue
            layer.codebook.sub_(lr * centroid_gradients(grad, layer))
    apply_shared_weights_(model, compressed)


# --- storage: relative indices and Huffman coding -----------------------------------------------


def relative_index_encode(mask: Tensor, index_bits: int) -> tuple[Tensor, Tensor]:
    """Relative indices of the nonzeros of a flattened ``mask`` (Section 2, Figure 2).

    Returns ``(stored, filler)``: entry ``i`` stores ``gap_i - 1`` in ``index_bits`` bits, where
    ``gap_i`` is its distance from the previous entry (from position -1 for the first), and
    ``filler[i]`` marks the zero entries inserted every ``2**index_bits`` positions when a gap is
    longer than that. Trailing zeros need no entries.
    """
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
        raise TypeError(f"mask must be a bool tensor, got {getattr(mask, 'dtype', type(mask).__name__)}")
    index_bits = _check_bits(index_bits, "index_bits")
    span = 2**index_bits
    positions = torch.nonzero(mask.reshape(-1)).reshape(-1).cpu()
    previous = torch.cat([torch.tensor([-1]), positions[:-1]])
    gaps = positions - previous
    fillers = (gaps - 1) // span  # a gap of g needs ceil(g / span) - 1 fillers
    counts = fillers + 1
    stored = torch.full((int(counts.sum()),), span - 1, dtype=torch.long)
    filler = torch.ones(int(counts.sum()), dtype=torch.bool)
    last = torch.cumsum(counts, 0) - 1  # each real entry is the last of its group
    stored[last] = gaps - fillers * span - 1
    filler[last] = False
    return stored, filler


def relative_index_decode(stored: Tensor, filler: Tensor | None = None) -> Tensor:
    """Positions of the real (non-filler) entries from stored relative indices (inverse of encode)."""
    if not isinstance(stored, Tensor) or stored.dtype not in (torch.int64, torch.int32, torch.uint8):
        raise TypeError(
            f"stored must be an integer tensor, got {getattr(stored, 'dtype', type(stored).__name__)}"
        )
    positions = torch.cumsum(stored.long() + 1, 0) - 1
    return positions if filler is None else positions[~filler]


def huffman_code_lengths(frequencies: Tensor | Iterable[int]) -> Tensor:
    """Code length of each symbol in an optimal binary prefix code (Huffman, 1952).

    Symbols of frequency 0 get length 0; a single used symbol gets length 1.
    """
    counts = torch.as_tensor(list(frequencies) if not isinstance(frequencies, Tensor) else frequencies)
    if counts.dim() != 1 or counts.is_floating_point() and not torch.all(counts == counts.round()):
        raise ValueError(f"frequencies must be a 1-D sequence of counts, got shape {tuple(counts.shape)}")
    if torch.any(counts < 0):
        raise ValueError("frequencies must be >= 0, got a negative count")
    lengths = torch.zeros(counts.numel(), dtype=torch.long)
    used = [(int(c), i) for i, c in enumerate(counts.tolist()) if c > 0]
    if len(used) == 1:
        lengths[used[0][1]] = 1
        return lengths
    # Heap of (weight, tie-breaker, symbols in the subtree); merging two subtrees deepens each symbol.
    heap = [(c, i, [i]) for c, i in used]
    heapq.heapify(heap)
    tie = len(counts)
    while len(heap) > 1:
        c1, _, s1 = heapq.heappop(heap)
        c2, _, s2 = heapq.heappop(heap)
        for s in s1 + s2:
            lengths[s] += 1
        heapq.heappush(heap, (c1 + c2, tie, s1 + s2))
        tie += 1
    return lengths


def _huffman_bits(symbols: Tensor, num_symbols: int) -> int:
    counts = torch.bincount(symbols.reshape(-1).cpu(), minlength=num_symbols)
    return int((counts * huffman_code_lengths(counts)).sum())


@dataclass
class CompressionReport:
    """The stored model: per-layer :class:`LayerCompression` and totals (sizes in MB = 2**20 bytes)."""

    layers: dict[str, LayerCompression]
    parameters: int
    """All parameters of the model (weights, biases, anything else)."""
    other_parameters: int = 0
    """Parameters outside the compressed layers, stored as 32-bit floats."""
    index_bits: int = 4
    notes: list[str] = field(default_factory=list)

    @property
    def original_bits(self) -> int:
        return self.parameters * FLOAT_BITS

    @property
    def stored_bits(self) -> int:
        """Codes, relative indices, codebooks, biases, headers and uncompressed parameters."""
        return sum(layer.total_bits for layer in self.layers.values()) + self.other_parameters * FLOAT_BITS

    @property
    def huffman_bits(self) -> int:
        """As :attr:`stored_bits` with codes and relative indices Huffman-coded (Section 4)."""
        return (
            sum(layer.huffman_total_bits for layer in self.layers.values())
            + self.other_parameters * FLOAT_BITS
        )

    @property
    def original_mb(self) -> float:
        return self.original_bits / 8 / MEGABYTE

    @property
    def stored_mb(self) -> float:
        return self.stored_bits / 8 / MEGABYTE

    @property
    def huffman_mb(self) -> float:
        return self.huffman_bits / 8 / MEGABYTE

    @property
    def compression_ratio(self) -> float:
        return self.original_bits / self.stored_bits

    @property
    def huffman_compression_ratio(self) -> float:
        return self.original_bits / self.huffman_bits

    @property
    def density(self) -> float:
        """Kept weights over all weights of the compressed layers."""
        total = sum(layer.parameters for layer in self.layers.values())
        return sum(layer.nonzeros for layer in self.layers.values()) / max(total, 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "parameters": self.parameters,
            "index_bits": self.index_bits,
            "density": self.density,
            "original_mb": self.original_mb,
            "stored_mb": self.stored_mb,
            "huffman_mb": self.huffman_mb,
            "compression_ratio": self.compression_ratio,
            "huffman_compression_ratio": self.huffman_compression_ratio,
            "layers": [layer.to_dict() for layer in self.layers.values()],
        }


def storage_report(
    model: nn.Module, compressed: Mapping[str, LayerCompression], index_bits: int = 4
) -> CompressionReport:
    """Size accounting of the stored model (Section 2's sparse format, Section 3's codes, Section 4).

    Per compressed layer: ``bits`` per stored entry, ``index_bits`` per entry of a sparse layer
    (fillers included), a codebook of ``2**bits`` 32-bit floats, 32-bit biases and a 32-bit entry
    count. Everything else in the model counts 32 bits per parameter.
    """
    _check_model(model)
    index_bits = _check_bits(index_bits, "index_bits")
    available = compressible_layers(model)
    covered = 0
    for name, layer in compressed.items():
        if name not in available:
            raise ValueError(f"compressed names {name!r}, not a conv/linear layer of model")
        mask = layer.codes != 0 if layer.sparse else torch.ones(layer.shape, dtype=torch.bool)
        layer.nonzeros = int(mask.sum())
        layer.index_bits = index_bits if layer.sparse else 0
        if layer.sparse:
            stored, filler = relative_index_encode(mask.cpu(), index_bits)
            layer.fillers = int(filler.sum())
            entry_codes = torch.zeros(stored.numel(), dtype=torch.long)
            entry_codes[~filler] = layer.codes.reshape(-1).cpu()[mask.reshape(-1).cpu()]
            layer.index_bits_total = stored.numel() * index_bits
            layer.huffman_index_bits = _huffman_bits(stored, 2**index_bits)
        else:
            layer.fillers = 0
            entry_codes = layer.codes.reshape(-1).cpu()
            layer.index_bits_total = layer.huffman_index_bits = 0
        layer.code_bits = entry_codes.numel() * layer.bits
        layer.huffman_code_bits = _huffman_bits(entry_codes, 2**layer.bits)
        layer.codebook_bits = 2**layer.bits * FLOAT_BITS
        layer.bias_bits = layer.bias * FLOAT_BITS
        layer.header_bits = FLOAT_BITS
        covered += layer.parameters + layer.bias
    parameters = sum(p.numel() for p in model.parameters())
    return CompressionReport(
        layers=dict(compressed), parameters=parameters, other_parameters=parameters - covered,
        index_bits=index_bits,
    )  # fmt: skip


def deep_compress(
    model: nn.Module,
    sparsity: float | Mapping[str, float],
    bits: int | Mapping[str, int],
    index_bits: int = 4,
    iterations: int = 100,
    masks: Mapping[str, Tensor] | None = None,
) -> CompressionReport:
    """Prune (unless ``masks`` are given: then those are kept) and share weights in place; report sizes.

    ``sparsity`` is the fraction of each conv/linear layer's weights removed (SqueezeNet: 0.67,
    i.e. 33 % kept), ``bits`` the width of the shared-weight codes (SqueezeNet: 8 or 6),
    ``index_bits`` that of the relative indices. Retraining between the stages (Section 2) and
    centroid fine-tuning (Section 3.3) are left to the caller: prune with :func:`prune_`, retrain
    with :func:`apply_masks_`, then call this with the masks; fine-tune with
    :func:`finetune_centroids_step`.
    """
    _check_model(model)
    index_bits = _check_bits(index_bits, "index_bits")
    _per_layer(sparsity, compressible_layers(model), "sparsity")  # checked even when masks are given
    if masks is None:
        masks = prune_(model, sparsity)
    else:
        apply_masks_(model, masks)
    compressed = quantize_(model, bits, masks=masks, iterations=iterations)
    return storage_report(model, compressed, index_bits)
