import numpy as np
import pytest
import torch

from aicanon.explain import Explanation


def test_values_become_numpy_and_names_are_checked():
    e = Explanation(values=torch.tensor([[0.5, -1.0, 2.0]]), base_value=0.1, feature_names=["a", "b", "c"])
    assert isinstance(e.values, np.ndarray) and e.values.shape == (1, 3)
    with pytest.raises(ValueError, match="feature_names must have one name per feature"):
        Explanation(values=np.zeros(3), feature_names=["a", "b"])
    with pytest.raises(TypeError, match="values must be array-like"):
        Explanation(values=object.__new__(type("Weird", (), {"__array__": lambda self: 1 / 0})))


def test_default_plot_and_custom_plotter():
    fig = Explanation(values=np.array([0.2, -0.4, 0.1]), feature_names=["x", "y", "z"], method="t").plot()
    assert len(fig.axes[0].patches) == 3
    calls = []
    Explanation(values=np.zeros((4, 4)), plotter=lambda exp, ax: calls.append(exp.values.shape)).plot()
    assert calls == [(4, 4)]


def test_package_exports_every_explainer_lazily():
    from aicanon import explain
    from aicanon.explain import lime, shap

    assert explain.KernelExplainer is shap.KernelExplainer
    assert explain.TabularExplainer is lime.TabularExplainer
    assert set(explain.__all__) == {"Explanation"} | set(explain._WHERE)
    for name in explain.__all__:
        assert getattr(explain, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        explain.Nope  # noqa: B018
