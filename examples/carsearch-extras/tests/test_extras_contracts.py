"""carsearch-extras' plugins keep carsearch's plugin contract (run with the package installed)."""

from __future__ import annotations

import pytest

pytest.importorskip("carsearch_extras", reason="pip install ./examples/carsearch-extras")

from carsearch.testing import (  # noqa: E402 (after the skip)
    EmbeddingRuleContract,
    ModelContract,
    OptimizerContract,
)


class TestResMLP(ModelContract):
    name = "resmlp"


class TestAdamW(OptimizerContract):
    name = "adamw"


class TestSqrt(EmbeddingRuleContract):
    name = "sqrt"
