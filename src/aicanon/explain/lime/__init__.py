"""LIME and SP-LIME (Ribeiro, Singh & Guestrin, "Why Should I Trust You?": Explaining the Predictions
of Any Classifier, KDD 2016, arXiv 1602.04938).

LIME explains one prediction ``f(x)`` by an interpretable model ``g`` fitted on perturbations of ``x``
drawn in an *interpretable representation* ``x' in {0, 1}^d'`` (a word present or removed, a
superpixel shown or hidden, a feature in the instance's quartile bin or not):

    xi(x) = argmin_{g in G} L(f, g, pi_x) + Omega(g)                                   (Eq. 1)

with ``G`` linear models ``g(z') = w_g . z'``, ``Omega`` a cap of ``K`` non-zero weights, the
locality-weighted square loss

    L(f, g, pi_x) = sum_{z, z' in Z} pi_x(z) (f(z) - g(z'))^2                          (Eq. 2)

and an exponential kernel ``pi_x(z) = exp(-D(x, z)^2 / sigma^2)`` on a distance ``D`` (Section 3.3).
Algorithm 1 (sparse linear explanations): draw ``N`` samples ``z'`` around ``x'``, recover ``z`` and
query ``f(z)``, weigh by ``pi_x(z)``, pick ``K`` features (K-LASSO: the regularisation path of the
lasso) and fit the weights by least squares on them. SP-LIME (Section 4, Algorithm 2) then picks
``B`` instances whose explanations cover the important features (Eq. 3 and 4).

One idea per module; every public name is re-exported here:

* :mod:`~aicanon.explain.lime.kernel`: the kernel ``pi_x`` and the cosine distance (Section 3.3);
* :mod:`~aicanon.explain.lime.surrogate`: Algorithm 1 after sampling: feature selection (``Omega``,
  K-LASSO and the package's alternatives) and the kernel-weighted ridge fit of ``g`` (Eq. 1 and 2);
* :mod:`~aicanon.explain.lime.tabular`, :mod:`~aicanon.explain.lime.text`,
  :mod:`~aicanon.explain.lime.image`: each modality's interpretable representation, sampling and
  distance (Section 3.1), following the authors' ``lime`` package so that the same samples give the
  same explanation;
* :mod:`~aicanon.explain.lime.submodular`: SP-LIME (Section 4, Algorithm 2, Eq. 3 and 4);
* :mod:`~aicanon.explain.lime.plots`: Figure 4's kinds of figure, attached to each explanation;
* ``_checks``: the argument checks the modules share.

Perturbation samples can be passed in (``samples=``), so that an explanation can be reproduced
exactly or compared with another implementation on the same neighbourhood.

Departures from the paper (each explained in the module that makes it):

* the kernel defaults to the package's ``exp(-D^2 / (2 sigma^2))``; ``kernel="paper"`` gives the paper's
  form (:mod:`~aicanon.explain.lime.kernel`);
* the final weights are a ridge fit with ``alpha = 1``, not plain least squares, and ``values`` hold a
  weight for every interpretable feature, zero for the unselected ones
  (:mod:`~aicanon.explain.lime.surrogate`);
* SP-LIME breaks ties in coverage gain by the lowest instance index (the package takes the last)
  (:mod:`~aicanon.explain.lime.submodular`);
* ``num_features`` above the number of interpretable features is an error (the package silently
  returns fewer); it defaults to ``min(10, d)`` for tables and text and to all superpixels for images.
"""

from aicanon.explain.lime.image import SEGMENTATIONS, explain_image, image_samples, segment_image
from aicanon.explain.lime.kernel import KERNELS, cosine_distances, exponential_kernel
from aicanon.explain.lime.submodular import coverage, feature_importance, submodular_pick
from aicanon.explain.lime.surrogate import (
    FEATURE_SELECTIONS,
    Surrogate,
    fit_surrogate,
    select_features,
    weighted_r2,
    weighted_ridge,
)
from aicanon.explain.lime.tabular import DISCRETIZERS, TabularExplainer, TabularSamples
from aicanon.explain.lime.text import explain_text, text_samples

__all__ = [
    "DISCRETIZERS",
    "FEATURE_SELECTIONS",
    "KERNELS",
    "SEGMENTATIONS",
    "Surrogate",
    "TabularExplainer",
    "TabularSamples",
    "cosine_distances",
    "coverage",
    "explain_image",
    "explain_text",
    "exponential_kernel",
    "feature_importance",
    "fit_surrogate",
    "image_samples",
    "segment_image",
    "select_features",
    "submodular_pick",
    "text_samples",
    "weighted_r2",
    "weighted_ridge",
]
