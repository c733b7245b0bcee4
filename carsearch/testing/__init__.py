"""The contract every plugin keeps, as pytest tests that plugin packages reuse.

Subclass one contract class per plugin in your own test module and set ``name`` to the
plugin's entry-point name; pytest then runs every check on the plugin loaded through the
registry, exactly as ``carsearch run`` loads it (so the package must be installed)::

    from carsearch.testing import ModelContract

    class TestResMLP(ModelContract):
        name = "resmlp"

A model family that its own library trains (trees) uses ``EstimatorContract`` instead of
``ModelContract``. carsearch's built-ins pass the same suite (``tests/test_testing.py``).
Checks sample parameters on real Optuna trials (in memory, seeded), replay them with
:class:`optuna.trial.FixedTrial`, and use a tiny generated schema: no files, no network, a
second or two per plugin. Importing this package needs pytest.
"""

from __future__ import annotations

from carsearch.testing.common import (
    SHARED_PARAMS,
    PluginContract,
    SearchSpaceContract,
    param_names,
    random_inputs,
    sample,
    tiny_schema,
)
from carsearch.testing.contracts import (
    DatasetContract,
    EmbeddingRuleContract,
    ModelContract,
    OptimizerContract,
)
from carsearch.testing.estimators import EstimatorContract
from carsearch.testing.numeric import NumericEncoderContract

__all__ = [
    "SHARED_PARAMS",
    "DatasetContract",
    "EmbeddingRuleContract",
    "EstimatorContract",
    "ModelContract",
    "NumericEncoderContract",
    "OptimizerContract",
    "PluginContract",
    "SearchSpaceContract",
    "param_names",
    "random_inputs",
    "sample",
    "tiny_schema",
]
