import numpy as np
import pytest

from lstmkit.data.scaling import StandardScaler
from lstmkit.data.windows import chronological_split, forecast_windows, lm_windows


def test_forecast_windows_align_inputs_and_targets():
    series = np.arange(10.0)
    X, Y = forecast_windows(series, series, window=3, horizon=2)
    assert X.shape == (6, 3, 1) and Y.shape == (6, 2)
    assert X[0, :, 0].tolist() == [0, 1, 2] and Y[0].tolist() == [3, 4]
    assert X[-1, :, 0].tolist() == [5, 6, 7] and Y[-1].tolist() == [8, 9]


def test_forecast_windows_multivariate_and_too_short():
    values = np.stack([np.arange(6.0), -np.arange(6.0)], axis=1)
    X, Y = forecast_windows(values, values[:, 1], window=4)
    assert X.shape == (2, 4, 2) and Y[:, 0].tolist() == [-4, -5]
    with pytest.raises(ValueError, match="too short"):
        forecast_windows(values, values[:, 0], window=6)


def test_lm_windows_shift_by_one():
    X, Y = lm_windows(np.arange(11), seq_len=5)
    assert X.tolist() == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    assert Y.tolist() == [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]]


def test_chronological_split_keeps_both_parts():
    assert chronological_split(100, 0.2) == 80
    assert chronological_split(3, 0.01) == 2


def test_scaler_fit_on_train_only_and_inverse():
    train = np.array([[1.0, 10.0], [3.0, 10.0]])
    sc = StandardScaler().fit(train)
    z = sc.transform(np.array([[5.0, 10.0]]))
    assert z.tolist() == [[3.0, 0.0]]                 # std of a constant column is taken as 1
    assert sc.inverse_transform(z[:, 0], column=0).tolist() == [5.0]
    back = StandardScaler.from_dict(sc.to_dict())
    assert np.allclose(back.transform(train), sc.transform(train))
