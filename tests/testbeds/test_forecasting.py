"""The ETT forecasting protocol: splits, scaling, windows, decoder input, training with early stopping."""

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from aicanon.datasets.ett import load_ett
from aicanon.testbeds.forecasting import (
    ForecastProtocol,
    decoder_input,
    evaluate_forecaster,
    load_forecast_data,
    train_forecaster,
)


@pytest.fixture(scope="module")
def etth1():
    return load_forecast_data("ETTh1", "M")


def test_scaling_uses_the_training_split_only(etth1):
    raw = load_ett("ETTh1").values
    assert etth1.values.shape == (14400, 7) and etth1.marks.shape == (14400, 4)
    np.testing.assert_allclose(etth1.mean, raw[:8640].mean(axis=0))
    np.testing.assert_allclose(etth1.values[:8640].mean(0).numpy(), 0.0, atol=1e-5)
    np.testing.assert_allclose(etth1.values[:8640].std(0).numpy(), 1.0, atol=1e-4)


def test_univariate_and_ms_features_put_the_target_last():
    univariate = load_forecast_data("ETTh1", "S")
    assert univariate.values.shape == (14400, 1) and univariate.columns == ("OT",) and univariate.targets == 1
    ms = load_forecast_data("ETTh1", "MS", target="HUFL")
    assert ms.columns[-1] == "HUFL" and ms.targets == 1 and ms.channels == 7


def test_windows_of_each_split(etth1):
    train = etth1.starts("train", 96, 24)
    val = etth1.starts("val", 96, 24)
    test = etth1.starts("test", 96, 24)
    assert (int(train[0]), int(train[-1])) == (0, 8640 - 120)
    # The first validation target is row 8640, its input looks back into the training split.
    assert (int(val[0]) + 96, int(val[-1]) + 120) == (8640, 11520)
    assert (int(test[0]) + 96, int(test[-1]) + 120) == (11520, 14400)
    assert len(etth1.starts("test", 96, 24, stride=10)) == len(test[::10])
    x, x_marks, y, y_marks = etth1.batch(test[:2], 96, 48, 24)
    assert x.shape == (2, 96, 7) and y.shape == (2, 72, 7) and y_marks.shape == (2, 72, 4)
    assert torch.equal(y[:, :48], x[:, 48:])  # the start token is the input's last 48 steps
    assert torch.equal(y[0, 48:], etth1.values[11520:11544])
    with pytest.raises(ValueError, match="split 'val' holds no window"):
        etth1.starts("val", 96, 3000)


def test_decoder_input_is_the_start_token_then_zeros():
    y = torch.randn(2, 10, 3)
    out = decoder_input(y, 6, 4)
    assert torch.equal(out[:, :6], y[:, :6]) and (out[:, 6:] == 0).all()


class Persistence(nn.Module):
    """Repeats the last observed value (no parameters to train)."""

    def forward(self, x, x_marks, decoder, decoder_marks):
        return x[:, -1:].expand(-1, 24, -1)


class LinearForecaster(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(96, 24)

    def forward(self, x, x_marks, decoder, decoder_marks):
        return self.linear(x.transpose(1, 2)).transpose(1, 2)


def test_evaluate_computes_mse_and_mae_on_the_scaled_series(etth1):
    protocol = ForecastProtocol(eval_stride=50)
    mse, mae = evaluate_forecaster(Persistence(), etth1, "test", protocol)
    starts = etth1.starts("test", 96, 24, 50)
    x, _, y, _ = etth1.batch(starts, 96, 48, 24)
    error = x[:, -1:] - y[:, -24:]
    assert np.isclose(mse, float(error.square().mean()), rtol=1e-5)
    assert np.isclose(mae, float(error.abs().mean()), rtol=1e-5)


def test_training_beats_persistence_and_keeps_the_best_validation_model(etth1):
    torch.manual_seed(0)
    protocol = ForecastProtocol(train_stride=8, eval_stride=8, epochs=3, learning_rate=1e-3)
    outcome = train_forecaster(
        LinearForecaster(), etth1, protocol, generator=torch.Generator().manual_seed(0)
    )
    persistence, _ = evaluate_forecaster(Persistence(), etth1, "test", protocol)
    assert outcome["test_mse"] < persistence
    assert outcome["val_mse"] == min(outcome["curves"]["val_mse"])
    assert outcome["epochs"] == 3 and outcome["steps"] == 3 * (len(etth1.starts("train", 96, 24, 8)) // 32)


def test_early_stopping_stops_after_patience_epochs_without_improvement(etth1):
    class Frozen(LinearForecaster):
        def forward(self, x, *rest):
            return super().forward(x, *rest).detach().requires_grad_()  # never learns

    protocol = ForecastProtocol(train_stride=32, eval_stride=32, epochs=10, patience=2, max_steps_per_epoch=2)
    outcome = train_forecaster(Frozen(), etth1, protocol)
    assert outcome["epochs"] == 3  # the first sets the best; two more without improvement stop it


def test_protocol_and_model_errors(etth1):
    with pytest.raises(ValueError, match="label_len must be in \\[0, 96\\] \\(at most seq_len\\), got 100"):
        ForecastProtocol(label_len=100).check_protocol()
    with pytest.raises(ValueError, match="dataset must be one of"):
        dataclasses.replace(ForecastProtocol(), dataset="ETTm1").check_protocol()

    class Wrong(nn.Module):
        def forward(self, x, *rest):
            return x[:, :5]

    with pytest.raises(ValueError, match="the model must return \\[B, >= 24, 7\\], got"):
        evaluate_forecaster(Wrong(), etth1, "val", ForecastProtocol(eval_stride=100))
