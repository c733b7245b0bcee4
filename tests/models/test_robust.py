"""``robust``: RealMLP's robust scaling with smooth clipping, as pytabkit computes it, exported."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from carsearch.models.numeric import Robust
from carsearch.testing.numeric import training_values


def test_robust_centres_scales_by_the_quartiles_and_clips_smoothly() -> None:
    values = np.array([[float(i), 5.0, 1.0] for i in range(5)])
    values[4, 2] = 9.0
    state = Robust().fit(values, {})
    # Quartiles 1 and 3: median 2, scale 1 / 2; a constant column becomes 0; the third
    # column's quartiles meet (1 and 1), so half its range (4) scales it.
    np.testing.assert_allclose(state["median"], [2.0, 5.0, 1.0])
    np.testing.assert_allclose(state["factor"], [0.5, 0.0, 0.25])
    module = Robust().build(state, {})
    encoded = module(torch.tensor([[2.0, 7.0, 1e6], [4.0, 5.0, 5.0]]))
    one = 1 / np.sqrt(1 + 1 / 9)  # a scaled value of 1, smoothly clipped
    expected = [[0.0, 0.0, 3.0], [one, 0.0, one]]
    torch.testing.assert_close(encoded, torch.tensor(expected).float(), rtol=1e-5, atol=1e-5)


def test_robust_agrees_with_pytabkit() -> None:
    pytabkit_models = pytest.importorskip("pytabkit.models.nn_models.models")
    quantile = pytest.importorskip("pytabkit.models.torch_utils").torch_np_quantile
    values = training_values()
    x = torch.from_numpy(values).float()
    # pytabkit's median_center, robust_scale (RobustScaleFactory._fit) and smooth_clip.
    spread = quantile(x, 0.75, dim=-2) - quantile(x, 0.25, dim=-2)
    half_range = 0.5 * (x.max(dim=-2).values - x.min(dim=-2).values)
    spread = torch.where(spread == 0, half_range, spread)
    factors = torch.where(spread == 0, 0.0, 1.0 / (spread + 1e-30))
    centred = x - quantile(x, 0.5, dim=-2, keepdim=True)
    expected = pytabkit_models.smooth_clip_func(centred * factors)
    module = Robust().build(Robust().fit(values, {}), {})
    torch.testing.assert_close(module(x), expected, rtol=1e-5, atol=1e-5)


def test_robust_exports_to_torchscript_and_onnx_with_parity(tmp_path: Path) -> None:
    values = training_values()
    module = Robust().build(Robust().fit(values, {}), {}).eval()
    x = torch.from_numpy(training_values(seed=1)).float() * 10
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module, (x,))
    expected = module(x)
    torch.testing.assert_close(traced(x), expected, rtol=0, atol=1e-6)
    onnxruntime = pytest.importorskip("onnxruntime", reason="pip install 'carsearch[onnx]'")
    path = tmp_path / "robust.onnx"
    torch.onnx.export(
        module, (x,), str(path), input_names=["x"], dynamic_axes={"x": {0: "rows"}}, dynamo=False
    )
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"x": x[:7].numpy()})
    np.testing.assert_allclose(got, expected[:7].detach().numpy(), rtol=0, atol=1e-5)
