"""LightGBM, gradient-boosted trees, as a model family (built-in model ``lightgbm``).

Trained by LightGBM itself on the row's raw values: categorical columns as LightGBM's native
categories (carsearch's codes), numbers with NaN where missing, which LightGBM sends down
the side each split learned. One thread per trial, as every carsearch worker trains. The
model is kept as LightGBM's own text format; :mod:`carsearch.models.forest` compiles it to a
torch module of the same raw scores, so trees join networks in ensembles and exports.

The space is the usual one for boosting (leaves, learning rate, minimum rows per leaf,
feature and row subsampling, L1/L2), in ranges common in the literature and in LightGBM's
parameter-tuning guide; one epoch is :attr:`LightGBMPlugin.rounds_per_epoch` rounds.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from optuna.trial import BaseTrial
from torch import nn

from carsearch.exceptions import TrainingError
from carsearch.models.base import EpochWatch, EstimatorPlugin, Rows, SearchContext
from carsearch.models.forest import MISSING_LIGHTGBM, forest_from_text

try:
    import lightgbm
except ImportError as error:  # the plugin fails to load, in one line naming the extra
    raise ImportError(MISSING_LIGHTGBM) from error


def features(rows: Rows) -> np.ndarray:
    """What LightGBM trains on: the codes (its categorical features, first), then numbers."""
    return np.concatenate([rows.codes.astype(np.float64), rows.numbers.astype(np.float64)], 1)


class LightGBMPlugin(EstimatorPlugin):
    """LightGBM's space, every parameter prefixed ``lgbm_``; one refit by default (members
    of one configuration differ only in their bagging seed; ``--refit-seeds`` asks for more)."""

    refit_members: ClassVar[int] = 1
    #: 25 rounds an epoch: the first pruning rung (2 epochs) is then 50 rounds, where a 0.01
    #: learning rate has begun to learn (at 20 rounds, on hpc, every trial below about 0.05
    #: was pruned), early stopping's patience of 5 epochs is 125 rounds, and
    #: ``--max-epochs 40`` allows 1,000.
    rounds_per_epoch: ClassVar[int] = 25

    def search_space(self, trial: BaseTrial, context: SearchContext) -> dict[str, Any]:
        most_rows = _most_rows_per_leaf(context)
        suggest_int, suggest_float = trial.suggest_int, trial.suggest_float
        params: dict[str, Any] = {
            "lgbm_num_leaves": suggest_int("lgbm_num_leaves", 4, 256, log=True),
            "lgbm_learning_rate": suggest_float("lgbm_learning_rate", 0.01, 0.3, log=True),
            "lgbm_min_data_in_leaf": suggest_int("lgbm_min_data_in_leaf", 1, most_rows, log=True),
            "lgbm_feature_fraction": suggest_float("lgbm_feature_fraction", 0.4, 1.0),
            "lgbm_bagging_fraction": suggest_float("lgbm_bagging_fraction", 0.5, 1.0),
            "lgbm_lambda_l1": suggest_float("lgbm_lambda_l1", 1e-8, 10.0, log=True),
            "lgbm_lambda_l2": suggest_float("lgbm_lambda_l2", 1e-8, 10.0, log=True),
        }
        if context.n_categorical:
            params["lgbm_cat_smooth"] = trial.suggest_float("lgbm_cat_smooth", 1.0, 50.0, log=True)
        return params

    def first_params(self, context: SearchContext) -> dict[str, Any]:
        """LightGBM's own defaults (lambdas at the space's floor, not 0): tuned trials then
        only add to what a user running LightGBM as it comes would get."""
        return {
            "lgbm_num_leaves": 31,
            "lgbm_learning_rate": 0.1,
            "lgbm_min_data_in_leaf": min(20, _most_rows_per_leaf(context)),
            "lgbm_feature_fraction": 1.0,
            "lgbm_bagging_fraction": 1.0,
            "lgbm_lambda_l1": 1e-8,
            "lgbm_lambda_l2": 1e-8,
            "lgbm_cat_smooth": 10.0,
        }

    def fit(
        self,
        train: Rows,
        val: Rows | None,
        params: dict[str, Any],
        *,
        n_outputs: int,
        n_epochs: int,
        seed: int,
        on_epoch: EpochWatch | None = None,
    ) -> str:
        n_categorical = train.codes.shape[1]
        dataset = lightgbm.Dataset(
            features(train),
            label=train.targets,
            weight=train.weights,
            categorical_feature=list(range(n_categorical)),
            params={"verbosity": -1, "max_bin": 255},
        )
        callbacks: list[Any] = []
        if val is not None and on_epoch is not None:
            callbacks.append(_EpochCallback(val, n_outputs, self.rounds_per_epoch, on_epoch))
        try:
            booster = lightgbm.train(
                booster_params(params, n_outputs, seed),
                dataset,
                num_boost_round=n_epochs * self.rounds_per_epoch,
                callbacks=callbacks,
            )
        except lightgbm.basic.LightGBMError as error:  # fails this trial, not the search
            raise TrainingError(f"LightGBM failed: {str(error).strip()[:300]}") from error
        text: str = booster.model_to_string(num_iteration=-1)
        return text

    def cut(self, text: str, n_epochs: int) -> str:
        booster = lightgbm.Booster(model_str=text)
        cut: str = booster.model_to_string(num_iteration=n_epochs * self.rounds_per_epoch)
        return cut

    def load(self, text: str, *, n_categorical: int, n_outputs: int) -> nn.Module:
        _check_header(text)
        try:
            forest: nn.Module = forest_from_text(
                _without_tree_sizes(text), n_categorical=n_categorical, n_outputs=n_outputs
            )
        except lightgbm.basic.LightGBMError as error:
            raise ValueError(f"not a LightGBM model: {error}") from None
        return forest


#: The header lines LightGBM's text model starts with, which its parser requires (it prints
#: a "[LightGBM] [Fatal]" line to stderr on a text without them, before raising).
HEADER_KEYS = ("version", "num_class", "num_tree_per_iteration", "label_index", "max_feature_idx")


def _check_header(text: str) -> None:
    """Refuse, in one line, a text that is not a LightGBM model, before LightGBM reads it.

    Raises:
        ValueError: it does not start with ``tree`` and the :data:`HEADER_KEYS` lines.
    """
    lines = text[:4096].splitlines()
    keys = {line.partition("=")[0] for line in lines[1:]}
    missing = [key for key in HEADER_KEYS if key not in keys]
    if not lines or lines[0] != "tree" or missing:
        raise ValueError(f"not a LightGBM model: no 'tree' header with {', '.join(HEADER_KEYS)}")


def _without_tree_sizes(text: str) -> str:
    """``text`` without its ``tree_sizes=`` header line.

    LightGBM 4.7 trusts those sizes to cut the text into trees: on a truncated or edited
    file it reads past the end of the text (printing what memory holds), then aborts the
    process. Without them it parses the trees one after the other and fails in Python.
    """
    head, sep, rest = text.partition("\ntree_sizes=")
    if not sep:
        return text
    return head + "\n" + rest.partition("\n")[2]


def _most_rows_per_leaf(context: SearchContext) -> int:
    """The space's largest ``min_data_in_leaf``: a tenth of the training rows, 2 to 100."""
    return max(2, min(100, context.n_train // 10))


def booster_params(params: dict[str, Any], n_outputs: int, seed: int) -> dict[str, Any]:
    """LightGBM's parameters for a trial's ``params``: the objective of ``n_outputs`` (more
    than two classes, two, or one standardized value with the searched ``loss``), one
    thread, deterministic, quiet."""
    if n_outputs > 2:
        objective: dict[str, Any] = {"objective": "multiclass", "num_class": n_outputs}
    elif n_outputs == 2:
        objective = {"objective": "binary"}
    else:
        objective = {"objective": "huber" if params.get("loss") == "huber" else "regression"}
    return {
        **objective,
        "num_leaves": int(params["lgbm_num_leaves"]),
        "learning_rate": float(params["lgbm_learning_rate"]),
        "min_data_in_leaf": int(params["lgbm_min_data_in_leaf"]),
        "feature_fraction": float(params["lgbm_feature_fraction"]),
        "bagging_fraction": float(params["lgbm_bagging_fraction"]),
        "bagging_freq": 1,
        "lambda_l1": float(params["lgbm_lambda_l1"]),
        "lambda_l2": float(params["lgbm_lambda_l2"]),
        "cat_smooth": float(params.get("lgbm_cat_smooth", 10.0)),
        "min_data_per_group": int(params["lgbm_min_data_in_leaf"]),
        "num_threads": 1,
        "seed": seed,
        "deterministic": True,
        "force_col_wise": True,
        "verbosity": -1,
    }


class _EpochCallback:
    """After every ``rounds`` boosting rounds: the raw validation outputs so far (summed
    round by round, so each epoch predicts only its own trees) go to ``watch``, which may
    prune (raising ``optuna.TrialPruned``) or stop early."""

    order = 30  # after LightGBM's own callbacks

    def __init__(self, val: Rows, n_outputs: int, rounds: int, watch: EpochWatch) -> None:
        self.watch, self.rounds, self.n_outputs = watch, rounds, n_outputs
        self.features = features(val)
        self.raw = np.zeros((len(val), n_outputs), dtype=np.float64)

    def __call__(self, env: Any) -> None:
        done = env.iteration + 1
        if done % self.rounds:
            return
        part = env.model.predict(
            self.features, start_iteration=done - self.rounds, num_iteration=self.rounds,
            raw_score=True,
        )  # fmt: skip
        if self.n_outputs == 2:  # binary: one logit, of the second class
            self.raw[:, 1] += part
        else:
            self.raw += part.reshape(len(self.raw), -1)
        if self.watch(done // self.rounds, self.raw.astype(np.float32)):
            raise lightgbm.callback.EarlyStopException(env.iteration, [])
