"""Explaining predictions: every explainer takes a model and inputs and returns an Explanation."""

from aicanon.explain.explanation import Explanation

__all__ = ["Explanation"]
