"""Explaining predictions: every explainer takes a model and inputs and returns an Explanation.

The four methods live in their own modules (``shap``, ``lime``, ``gradcam``, ``influence``); the
names below are re-exported here and imported on first use, so ``import aicanon.explain`` stays
cheap (LIME pulls in scikit-image, SHAP scikit-learn).
"""

from __future__ import annotations

import importlib
from typing import Any

from aicanon.explain.explanation import Explanation

_EXPORTS = {
    "shap": (
        "DeepExplainer",
        "ExactExplainer",
        "KernelExplainer",
        "LinearExplainer",
        "ShapleySamplingExplainer",
    ),
    "lime": ("TabularExplainer", "explain_image", "explain_text", "submodular_pick"),
    "gradcam": ("grad_cam", "guided_backprop", "guided_grad_cam", "vit_reshape_transform"),
    "influence": ("InfluenceFunction",),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [  # noqa: RUF022 - grouped by module, as _EXPORTS
    "Explanation",
    "DeepExplainer",
    "ExactExplainer",
    "KernelExplainer",
    "LinearExplainer",
    "ShapleySamplingExplainer",
    "TabularExplainer",
    "explain_image",
    "explain_text",
    "submodular_pick",
    "grad_cam",
    "guided_backprop",
    "guided_grad_cam",
    "vit_reshape_transform",
    "InfluenceFunction",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'aicanon.explain' has no attribute {name!r}")
    return getattr(importlib.import_module(f"aicanon.explain.{module}"), name)
