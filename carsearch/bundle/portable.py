"""The model for runtimes without carsearch: a TorchScript program and an ONNX file.

Each is written only after it agrees with the PyTorch model on the test rows (largest
absolute difference of class probabilities, or of predictions divided by the target's
standard deviation, at most :data:`TOLERANCE`); the returned record,
stored in the bundle's manifest, says whether it did, by how much, or why it was skipped.
Both take int64 category codes ``(rows, categorical columns)`` and float32 numbers ``(rows,
numeric columns)``, NaN for a missing value, and do all preprocessing inside (median
imputation, the numeric encoder): they return class probabilities ``(rows, classes)``, or
predictions ``(rows,)`` in the target's units.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

logger = logging.getLogger("carsearch")

TOLERANCE = 1e-5
INPUTS = ("codes", "numbers")
#: The model's two inputs for one call: ``(codes, numbers)``.
Example = tuple[torch.Tensor, torch.Tensor]
#: Rows the exporters trace with; the parity checks then run every test row. A tracer keeps
#: every intermediate tensor until it is done: traced on hpc's 866 test rows, two LightGBM
#: members (700 and 300 trees of depth 25) took 0.7 GB for TorchScript and 0.4 GB more for
#: ONNX, which a few rows do not.
TRACE_ROWS = 16


def traced_rows(example: Example) -> Example:
    """The first :data:`TRACE_ROWS` rows of ``example``: what the exporters trace."""
    codes, numbers = example
    return codes[:TRACE_ROWS], numbers[:TRACE_ROWS]


def save_torchscript(
    model: nn.Module, example: Example, file: Path, *, scale: float = 1.0
) -> dict[str, Any]:
    """Trace ``model`` on a few rows of ``example`` (test rows), check the saved program on
    all of them, keep it if it agrees.

    Tracing, not scripting: it works for any plugin's model built from tensor operations.
    A model that fails to trace is recorded; a file that cannot be written (a full disk)
    raises ``OSError``.
    """
    record: dict[str, Any] = {"file": None, "tolerance": TOLERANCE, "rows": len(example[0])}
    saved = io.BytesIO()
    try:
        with _quiet():
            traced = torch.jit.trace(model, traced_rows(example), check_trace=False)
            torch.jit.save(traced, saved)
            program = torch.jit.load(io.BytesIO(saved.getvalue()), map_location="cpu")
        with torch.inference_mode():
            got = program(*example).numpy()
    except Exception as error:  # a plugin's model may fail to trace in any way
        return {**record, "reason": f"tracing failed: {type(error).__name__}: {error}"[:500]}
    return _keep_if_close(record, saved.getvalue(), file, got, _reference(model, example), scale)


def save_onnx(
    model: nn.Module,
    example: Example,
    file: Path,
    *,
    output: str = "probabilities",
    scale: float = 1.0,
) -> dict[str, Any]:
    """Export ``model`` to ONNX, run it in ONNX Runtime on ``example``, keep it if it agrees.

    Skipped, with the reason recorded, when the ``onnx`` extra is not installed.
    """
    record: dict[str, Any] = {"file": None, "tolerance": TOLERANCE, "rows": len(example[0])}
    missing = [name for name in ("onnx", "onnxruntime", "onnxscript") if not _importable(name)]
    if missing:
        reason = f"{', '.join(missing)} not installed; pip install 'carsearch[onnx]'"
        logger.info("no ONNX file: %s", reason)
        return {**record, "reason": reason}
    import onnxruntime

    try:
        record["exporter"], saved = _export_onnx(model, example, output)
        session = onnxruntime.InferenceSession(saved, providers=["CPUExecutionProvider"])
        feeds = {name: tensor.numpy() for name, tensor in zip(INPUTS, example, strict=True)}
        got = session.run([output], feeds)[0]
    except Exception as error:  # the exporter fails on unsupported operators in many ways
        logger.warning("no ONNX file: the export failed: %s", error)
        return {**record, "reason": f"export failed: {type(error).__name__}: {error}"[:500]}
    record["onnxruntime_version"] = onnxruntime.__version__
    return _keep_if_close(record, saved, file, got, _reference(model, example), scale)


def _export_onnx(model: nn.Module, example: Example, output: str) -> tuple[str, bytes]:
    """One self-contained ONNX model that takes any number of rows, and its exporter.

    The TorchScript-based exporter first: here it takes 0.15 s where the torch.export-based
    one takes 2-4 s (most of it rebuilding its operator registry on every call), which every
    ``carsearch run`` would pay. It is deprecated; where it fails or is gone, the other runs.
    The parity check judges the model either way.
    """
    options: dict[str, Any] = {"input_names": list(INPUTS), "output_names": [output]}
    rows = {name: {0: "rows"} for name in (*INPUTS, output)}
    with _quiet():
        try:
            saved = io.BytesIO()
            torch.onnx.export(
                model,
                traced_rows(example),
                saved,  # type: ignore[arg-type]  # a file object, as this exporter takes
                dynamic_axes=rows,
                dynamo=False,
                **options,
            )
            return "torchscript", saved.getvalue()
        except Exception as error:  # removed in a later torch, or an unsupported operator
            logger.debug("TorchScript-based ONNX export failed (%s); trying torch.export", error)
        program = torch.onnx.export(
            model,
            traced_rows(example),
            None,
            dynamic_shapes={name: {0: torch.export.Dim.DYNAMIC} for name in INPUTS},
            dynamo=True,
            external_data=False,
            verbose=False,
            **options,
        )
        assert program is not None  # the dynamo exporter returns the program it made
        return "dynamo", program.model_proto.SerializeToString()


def _keep_if_close(
    record: dict[str, Any],
    saved: bytes,
    file: Path,
    got: np.ndarray,
    want: np.ndarray,
    scale: float = 1.0,
) -> dict[str, Any]:
    """Write ``saved`` to ``file`` if ``got`` is within :data:`TOLERANCE` of ``want``, in
    units of ``scale`` (1 for probabilities; a regression target's standard deviation)."""
    diff = float(np.abs(got - want).max()) / scale if want.size else 0.0
    record = {**record, "max_abs_diff": diff, "passed": diff <= TOLERANCE}
    if scale != 1.0:
        record["diff_unit"] = f"target standard deviation ({scale:.6g})"
    if not record["passed"]:
        logger.warning("no %s: it differs from PyTorch by %.3g", file.name, diff)
        return {**record, "reason": f"parity check failed: max abs diff {diff:.3g} > {TOLERANCE}"}
    file.write_bytes(saved)
    return {**record, "file": file.name}


def _reference(model: nn.Module, example: Example) -> np.ndarray:
    with torch.inference_mode():
        result: np.ndarray = model(*example).numpy()
    return result


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a module set to None in sys.modules
        return False


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' deprecation notices and INFO/WARNING logs (the library's own
    messages say what matters)."""
    torch_onnx = logging.getLogger("torch.onnx")
    level = torch_onnx.level
    torch_onnx.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            # Deprecation notices, and tracer warnings about shape checks in plugin code.
            warnings.simplefilter("ignore")
            yield
    finally:
        torch_onnx.setLevel(level)
