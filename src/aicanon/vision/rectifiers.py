"""PReLU and the rectifier-aware ("He" / "MSRA") initialisation.

He, Zhang, Ren and Sun, *Delving Deep into Rectifiers: Surpassing Human-Level Performance on
ImageNet Classification*, ICCV 2015 (arXiv:1502.01852).

**Parametric ReLU (Section 2.1).** For the input ``y_i`` of the nonlinearity on channel ``i``,

    f(y_i) = y_i          if y_i > 0
    f(y_i) = a_i y_i      if y_i <= 0                                   (Eq. 1)

that is ``f(y_i) = max(0, y_i) + a_i min(0, y_i)``. The coefficient ``a_i`` is learned by
back-propagation with the chain rule:

    dE/da_i = sum_{y_i} dE/df(y_i) * df(y_i)/da_i                       (Eq. 2)
    df(y_i)/da_i = 0 if y_i > 0, y_i if y_i <= 0                         (Eq. 3)

where the sum runs over every position of channel ``i`` (all spatial positions and all samples
of the mini-batch). In the *channel-shared* variant one ``a`` serves every channel of a layer and
its gradient also sums over the channels (Eq. 4). The paper initialises every ``a_i`` to 0.25 and
does **not** apply weight decay to it (decay would push ``a_i`` to zero, i.e. back to ReLU);
:func:`param_groups` builds optimiser groups that honour this.

**Initialisation (Section 2.2).** For a layer ``y_l = W_l x_l + b_l`` with ``n_l = k^2 c``
inputs per response (``k`` the kernel size, ``c`` the input channels; a fully connected layer has
``k = 1``), the variance of the responses through ``L`` rectified layers is

    Var[y_L] = Var[y_1] * prod_{l=2}^{L} (1/2 n_l Var[w_l])              (Eq. 9)

so the forward signal neither explodes nor vanishes when

    1/2 n_l Var[w_l] = 1  for all l                                      (Eq. 10)

i.e. a zero-mean Gaussian with std ``sqrt(2 / n_l)``; biases start at 0. The backward pass gives
the same condition with ``n̂_l = k^2 d`` (``d`` the output channels, the "fan-out"):

    1/2 n̂_l Var[w_l] = 1  for all l                                     (Eq. 14)

For PReLU with coefficient ``a`` (its initial value) the factor ``1/2`` becomes ``(1 + a^2)/2``:

    1/2 (1 + a^2) n_l Var[w_l] = 1                                       (Eq. 15)

so :func:`he_init_` draws ``N(0, 2 / ((1 + a^2) n))`` with ``n`` the fan-in (Eq. 10/15) or the
fan-out (Eq. 14). ``a = 0`` is ReLU and ``a = 1`` the linear case.

**The "Xavier" comparison (Section 2.2, "Comparisons with 'Xavier' Initialization").** The paper
compares against the linear-case derivation of Glorot and Bengio as the paper implements it:
``n_l Var[w_l] = 1``, a zero-mean Gaussian with std ``sqrt(1 / n_l)``. After ``L`` rectified
layers the signal's std is then ``1/sqrt(2)^L`` of what the He initialisation gives, which is why
a 30-layer ReLU net stalls with it (Figure 3). :func:`xavier_init_` implements that (``mode="fan_in"``, the default)
and, for completeness, Glorot and Bengio's own normal form ``std = sqrt(2 / (fan_in + fan_out))``
(``mode="fan_avg"``, equal to ``torch.nn.init.xavier_normal_``).

Departures from the paper, and why:

* ``he_init_`` and ``xavier_init_`` initialise ``nn.Linear`` and ``nn.Conv1d/2d/3d`` layers (found
  recursively in a module) and leave every other parameter alone; transposed convolutions are
  skipped, because their weight layout ``[in, out, k...]`` would swap fan-in and fan-out.
* The paper's Eq. 10 strictly needs ``n_1 Var[w_1] = 1`` in the first layer (its input is not
  rectified); like the paper ("the factor 1/2 does not matter if it just exists on one layer") we
  use Eq. 10 for every layer.
* The derivative of Eq. 1 at exactly ``y_i = 0`` is taken as ``a_i`` (w.r.t. the input) and
  ``y_i = 0`` (w.r.t. ``a_i``), following the ``y_i <= 0`` branch of Eq. 1/3, which is also what
  ``torch.nn.PReLU`` does.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from aicanon.core.checks import check_float, check_int

__all__ = ["PReLU", "fans", "he_init_", "he_std", "param_groups", "xavier_init_", "xavier_std"]

_FAN_MODES = ("fan_in", "fan_out")
_XAVIER_MODES = ("fan_in", "fan_out", "fan_avg")
_INIT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


class PReLU(nn.Module):
    """Parametric ReLU, Eq. 1: ``f(y_i) = max(0, y_i) + a_i min(0, y_i)``.

    Args:
        num_parameters: 1 for the channel-shared variant (one ``a`` per layer), or the number of
            channels ``C`` for the channel-wise variant (one ``a_i`` per channel). Channels are
            dimension 1 of the input (``[N, C, ...]``), as in ``torch.nn.PReLU``.
        init: the initial value of every coefficient; the paper uses 0.25 (Section 2.1).

    The coefficients are the parameter ``weight`` of shape ``[num_parameters]`` (the same name and
    shape as ``torch.nn.PReLU``, so state dicts load into either). The forward is Eq. 1 and the
    backward Eq. 2/3, both from PyTorch's fused ``prelu`` kernel (see ``forward``).
    """

    def __init__(self, num_parameters: int = 1, init: float = 0.25) -> None:
        super().__init__()
        check_int("num_parameters", num_parameters, note="1 = channel-shared")
        check_float("init", init, finite=True)
        self.num_parameters = num_parameters
        self.init = float(init)
        self.weight = nn.Parameter(torch.full((num_parameters,), float(init)))

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not isinstance(input, torch.Tensor):
            raise TypeError(f"input must be a torch.Tensor, got {type(input).__name__}")
        if not input.is_floating_point():
            raise TypeError(f"input must be a floating-point tensor, got dtype {input.dtype}")
        # Channel-wise (Eq. 1 with one a_i per channel): channels are dim 1 of [N, C, ...]. Checked
        # here (shape only, no data read) so the message names the argument and the shape.
        if self.num_parameters > 1 and (input.dim() < 2 or input.shape[1] != self.num_parameters):
            raise ValueError(
                f"input must have {self.num_parameters} channels in dim 1 ([N, C, ...]) for a "
                f"channel-wise PReLU, got shape {tuple(input.shape)}"
            )
        weight = self.weight if self.weight.dtype == input.dtype else self.weight.to(input.dtype)
        # Eq. 1 through PyTorch's fused prelu kernel: one pass forward and one backward, where the
        # same formula as torch.where(y > 0, y, a * y) took three kernels forward and more backward
        # (2.4-3.1x slower than torch.nn.PReLU, benchmarks/bench_prelu_he_init.py). Its backward
        # is Eq. 2/3: d f / d a_i = y_i on the y_i <= 0 branch, summed over every position of
        # channel i (and over all channels when one a is shared, Eq. 4); d f / d y_i is a_i there
        # and 1 above (tested against hand-computed gradients in tests/vision/test_rectifiers.py).
        return F.prelu(input, weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}, init={self.init}"


def fans(tensor: torch.Tensor) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight ``[out, in, k...]``: ``n_l = k^2 c`` and ``n̂_l = k^2 d``."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"tensor must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dim() < 2:
        raise ValueError(
            f"tensor must have >= 2 dims ([out, in, k...]) to define fan-in/fan-out, got shape "
            f"{tuple(tensor.shape)}"
        )
    receptive = math.prod(tensor.shape[2:]) if tensor.dim() > 2 else 1
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def he_std(fan: int, negative_slope: float = 0.0) -> float:
    """``sqrt(2 / ((1 + a^2) n))``: the std that satisfies Eq. 10 / 14 / 15 for ``n = fan``."""
    negative_slope = float(check_float("negative_slope", negative_slope, 0, finite=True, note="0 = ReLU"))
    check_int("fan", fan)
    # Written as gain / sqrt(n), with gain = sqrt(2 / (1 + a^2)), to round exactly as
    # torch.nn.init.kaiming_normal_ does (so the two draw identical tensors).
    return math.sqrt(2.0 / (1 + negative_slope**2)) / math.sqrt(fan)


def xavier_std(fan_in: int, fan_out: int, mode: str = "fan_in") -> float:
    """The std of the "Xavier" comparison: ``sqrt(1/n)`` (``fan_in``/``fan_out``) or Glorot's
    ``sqrt(2 / (fan_in + fan_out))`` (``fan_avg``)."""
    if mode not in _XAVIER_MODES:
        raise ValueError(f"mode must be one of {_XAVIER_MODES}, got {mode!r}")
    check_int("fan_in", fan_in)
    check_int("fan_out", fan_out)
    if mode == "fan_avg":
        return math.sqrt(2.0 / float(fan_in + fan_out))
    # Section 2.2: n_l Var[w_l] = 1 (the linear case); written as 1 / sqrt(n) like
    # kaiming_normal_(nonlinearity="linear") so the two agree bit for bit.
    return 1.0 / math.sqrt(fan_in if mode == "fan_in" else fan_out)


def _check_generator(generator: torch.Generator | None) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")


def _init_layers(module: nn.Module) -> list[nn.Module]:
    layers = [m for m in module.modules() if isinstance(m, _INIT_LAYERS)]
    if not layers:
        raise ValueError(
            f"module_or_tensor must be a tensor or a module holding nn.Linear / nn.Conv1d/2d/3d "
            f"layers, got a {type(module).__name__} with none"
        )
    return layers


def _apply_init(
    module_or_tensor: nn.Module | torch.Tensor,
    std_of: Callable[[torch.Tensor], float],
    generator: torch.Generator | None,
) -> nn.Module | torch.Tensor:
    if isinstance(module_or_tensor, torch.Tensor):
        tensor = module_or_tensor
        if not tensor.is_floating_point():
            raise TypeError(f"module_or_tensor must be floating point, got dtype {tensor.dtype}")
        std = std_of(tensor)
        with torch.no_grad():
            tensor.normal_(0.0, std, generator=generator)
        return tensor
    if not isinstance(module_or_tensor, nn.Module):
        raise TypeError(
            f"module_or_tensor must be an nn.Module or a torch.Tensor, got {type(module_or_tensor).__name__}"
        )
    # In module order, so a fixed generator state gives a fixed network.
    for layer in _init_layers(module_or_tensor):
        std = std_of(layer.weight)
        with torch.no_grad():
            layer.weight.normal_(0.0, std, generator=generator)
            if layer.bias is not None:
                layer.bias.zero_()  # Section 2.2: biases are initialised to 0
    return module_or_tensor


def he_init_(
    module_or_tensor: nn.Module | torch.Tensor,
    mode: str = "fan_in",
    negative_slope: float = 0.0,
    generator: torch.Generator | None = None,
) -> nn.Module | torch.Tensor:
    """Fill weights from ``N(0, 2 / ((1 + a^2) n))`` in place (Eq. 10, 14, 15) and return them.

    Args:
        module_or_tensor: a weight tensor ``[out, in, k...]``, or a module: every ``nn.Linear`` and
            ``nn.Conv1d/2d/3d`` in it (recursively) gets its weight drawn and its bias set to 0.
        mode: ``"fan_in"`` (``n = k^2 c``, the forward condition Eq. 10) or ``"fan_out"``
            (``n = k^2 d``, the backward condition Eq. 14).
        negative_slope: ``a``, the slope of the rectifier after the layer (0 for ReLU, the initial
            PReLU coefficient for PReLU, Eq. 15); must be >= 0.
        generator: the random generator to draw from (the global one when None).

    Equal to ``torch.nn.init.kaiming_normal_(w, a, mode, nonlinearity="leaky_relu")`` drawn from the
    same generator state.
    """
    if mode not in _FAN_MODES:
        raise ValueError(f"mode must be one of {_FAN_MODES}, got {mode!r}")
    slope = float(check_float("negative_slope", negative_slope, 0, finite=True, note="0 = ReLU"))
    _check_generator(generator)

    def std_of(weight: torch.Tensor) -> float:
        fan_in, fan_out = fans(weight)
        return he_std(fan_in if mode == "fan_in" else fan_out, slope)

    return _apply_init(module_or_tensor, std_of, generator)


def xavier_init_(
    module_or_tensor: nn.Module | torch.Tensor,
    mode: str = "fan_in",
    generator: torch.Generator | None = None,
) -> nn.Module | torch.Tensor:
    """The "Xavier" initialisation the paper compares against (Section 2.2, Figures 2 and 3).

    ``mode="fan_in"`` (default) is the paper's form, ``std = sqrt(1 / n_l)`` with ``n_l = k^2 c``
    (``n_l Var[w_l] = 1``, the linear-case forward condition); ``"fan_out"`` uses ``k^2 d``;
    ``"fan_avg"`` is Glorot and Bengio's normal form ``sqrt(2 / (fan_in + fan_out))``. Biases of
    modules are set to 0, as for :func:`he_init_`.
    """
    if mode not in _XAVIER_MODES:
        raise ValueError(f"mode must be one of {_XAVIER_MODES}, got {mode!r}")
    _check_generator(generator)

    def std_of(weight: torch.Tensor) -> float:
        fan_in, fan_out = fans(weight)
        return xavier_std(fan_in, fan_out, mode)

    return _apply_init(module_or_tensor, std_of, generator)


def param_groups(model: nn.Module, weight_decay: float, decay_biases: bool = True) -> list[dict[str, object]]:
    """Optimiser parameter groups with no weight decay on PReLU coefficients (Section 2.1).

    Returns ``[{"params": decayed, "weight_decay": weight_decay}, {"params": exempt,
    "weight_decay": 0.0}]`` (an empty group is left out). ``exempt`` holds every PReLU coefficient
    (ours and ``torch.nn.PReLU``'s) and, when ``decay_biases`` is False, every parameter of a
    ``Linear``/``Conv`` layer named ``bias``. The paper only says ``a_i`` is not decayed; biases are
    decayed by default because the paper says nothing to the contrary.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    check_float("weight_decay", weight_decay, 0, finite=True)
    exempt_ids: set[int] = set()
    for module in model.modules():
        if isinstance(module, (PReLU, nn.PReLU)):
            exempt_ids.add(id(module.weight))
        elif not decay_biases and isinstance(module, _INIT_LAYERS) and module.bias is not None:
            exempt_ids.add(id(module.bias))
    decayed: list[nn.Parameter] = []
    exempt: list[nn.Parameter] = []
    for parameter in model.parameters():  # already free of duplicates (shared parameters)
        if not parameter.requires_grad:
            continue
        (exempt if id(parameter) in exempt_ids else decayed).append(parameter)
    groups: list[dict[str, object]] = []
    if decayed:
        groups.append({"params": decayed, "weight_decay": float(weight_decay)})
    if exempt:
        groups.append({"params": exempt, "weight_decay": 0.0})
    return groups
