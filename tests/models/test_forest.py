"""A LightGBM booster compiled into a Forest scores rows exactly as LightGBM does, exported too."""

from __future__ import annotations

import io
import sys
import warnings
from typing import Any

import numpy as np
import pytest
import torch

from carsearch.models.forest import Forest, compile_booster, forest_from_text

lightgbm = pytest.importorskip("lightgbm")

#: ``(codes, numbers)`` of a table.
Table = tuple[np.ndarray, np.ndarray]
#: A multiclass booster, its forest, and the table it was trained on.
Trained = tuple[Any, Forest, np.ndarray, np.ndarray]
CARDINALITY = 30
#: Small groups and little smoothing, so splits on many categories at once happen.
PARAMS = {
    "num_threads": 1,
    "verbose": -1,
    "seed": 0,
    "deterministic": True,
    "num_leaves": 15,
    "min_data_in_leaf": 5,
    "min_data_per_group": 2,
    "cat_smooth": 1.0,
}


def table(n_categorical: int, n_numeric: int, n_rows: int = 400, seed: int = 0) -> Table:
    """Codes of ``CARDINALITY`` categories, float32 numbers with 15% NaN and 15% exact zeros."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, CARDINALITY, size=(n_rows, n_categorical))
    numbers = rng.normal(size=(n_rows, n_numeric)).astype(np.float32)
    numbers[rng.random(numbers.shape) < 0.15] = np.nan
    numbers[rng.random(numbers.shape) < 0.15] = 0.0
    return codes, numbers


def features(codes: np.ndarray, numbers: np.ndarray) -> np.ndarray:
    """LightGBM's matrix, by carsearch's convention: codes, then numbers, as float64."""
    return np.concatenate([codes.astype(np.float64), numbers.astype(np.float64)], axis=1)


def signal(codes: np.ndarray, numbers: np.ndarray) -> np.ndarray:
    """A target that depends on category groups, on missingness and on exact zeros."""
    value = np.zeros(len(codes))
    if codes.shape[1]:
        value += (codes[:, 0] % 3 == 0) + (codes[:, -1] % 5 < 2)
    if numbers.shape[1]:
        value += np.nan_to_num(numbers[:, 0], nan=2.0) + 1.5 * (numbers[:, -1] == 0)
    noise = np.random.default_rng(1).normal(scale=0.3, size=len(codes))
    return np.asarray(value + noise)


def train(
    codes: np.ndarray, numbers: np.ndarray, objective: str, rounds: int = 15, **params: Any
) -> Any:
    """A booster trained the carsearch way, with a target fitting ``objective``."""
    value = signal(codes, numbers)
    if objective == "binary":
        target = (value > np.median(value)).astype(int)
    elif objective == "multiclass":
        target = np.digitize(value, np.quantile(value, [0.25, 0.5, 0.75]))
        params["num_class"] = 4
    else:
        target = (value - value.mean()) / value.std()
    data = lightgbm.Dataset(
        features(codes, numbers), target, categorical_feature=list(range(codes.shape[1]))
    )
    return lightgbm.train({**PARAMS, "objective": objective, **params}, data, rounds)


def compiled(booster: Any, n_categorical: int) -> Forest:
    trees_per_iteration = booster.dump_model()["num_tree_per_iteration"]
    n_outputs = 2 if booster.params["objective"] == "binary" else trees_per_iteration
    return compile_booster(booster.dump_model(), n_categorical=n_categorical, n_outputs=n_outputs)


def lightgbm_raw(booster: Any, codes: np.ndarray, numbers: np.ndarray) -> np.ndarray:
    return np.asarray(booster.predict(features(codes, numbers), raw_score=True)).reshape(
        len(codes), -1
    )


def splits(booster: Any) -> list[dict[str, Any]]:
    """Every split node of every tree of ``booster``."""
    found = []
    stack = [tree["tree_structure"] for tree in booster.dump_model()["tree_info"]]
    while stack:
        node = stack.pop()
        if "split_feature" in node:
            found.append(node)
            stack += [node["left_child"], node["right_child"]]
    return found


def split_kinds(booster: Any) -> set[str]:
    """Which kinds of split the booster holds: each case proves it tests what it says."""
    kinds = {node["missing_type"] for node in splits(booster) if node["decision_type"] == "<="}
    sizes = [len(n["threshold"].split("||")) for n in splits(booster) if n["decision_type"] == "=="]
    if any(size >= 4 for size in sizes):
        kinds.add("many categories")
    if any(size == 1 for size in sizes):
        kinds.add("one category")
    return kinds


def assert_same_scores(forest: Forest, booster: Any, codes: np.ndarray, numbers: Any) -> None:
    """float64 scores equal LightGBM's but for the sum's order; float32 outputs within 1e-5."""
    want = lightgbm_raw(booster, codes, numbers)
    codes_t, numbers_t = torch.from_numpy(codes), torch.from_numpy(numbers)
    np.testing.assert_allclose(
        forest.raw_scores(codes_t, numbers_t).numpy(), want, rtol=0, atol=1e-9
    )
    got = forest(codes_t, numbers_t).numpy()
    assert got.dtype == np.float32 and got.shape == (len(codes), forest.n_outputs)
    if forest.binary:
        assert (got[:, 0] == 0).all()
        got = got[:, 1:]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


CASES = {
    "binary": ("binary", 3, 3, {}, {"many categories", "NaN"}),
    "multiclass": ("multiclass", 3, 3, {}, {"many categories", "NaN"}),
    "regression": ("regression", 3, 3, {}, {"many categories", "NaN"}),
    "zero as missing": ("regression", 2, 3, {"zero_as_missing": True}, {"Zero"}),
    "no missing": ("regression", 2, 3, {"use_missing": False}, {"None"}),
    "one-hot categories": ("binary", 2, 2, {"max_cat_to_onehot": 64}, {"one category"}),
    "no categorical columns": ("multiclass", 0, 4, {}, {"NaN"}),
    "no numeric columns": ("regression", 3, 0, {}, {"many categories"}),
}


@pytest.mark.parametrize("case", CASES)
def test_scores_equal_lightgbm_raw_scores(case: str) -> None:
    objective, n_categorical, n_numeric, params, kinds = CASES[case]
    codes, numbers = table(n_categorical, n_numeric)
    booster = train(codes, numbers, objective, **params)
    assert kinds <= split_kinds(booster)
    assert_same_scores(compiled(booster, n_categorical), booster, codes, numbers)


def probe_rows(booster: Any, n_rows: int = 4000) -> Table:
    """Rows made of every numeric threshold and its float64/float32 neighbours, zeros within
    and beyond LightGBM's zero band, +-0, NaN, +-inf, and unseen or negative categories."""
    thresholds = [n["threshold"] for n in splits(booster) if n["decision_type"] == "<="]
    values = {0.0, -0.0, 1e-36, -1e-36, 1e-35, -1e-35, 1e-34, np.nan, np.inf, -np.inf}
    for threshold in thresholds:
        single = np.float32(threshold)
        values |= {threshold, np.nextafter(threshold, np.inf), np.nextafter(threshold, -np.inf)}
        values |= {float(single), float(np.nextafter(single, np.float32(np.inf)))}
        values.add(float(np.nextafter(single, np.float32(-np.inf))))
    rng = np.random.default_rng(2)
    numbers = rng.choice(np.array(sorted(values)), size=(n_rows, 3))
    codes = rng.integers(-3, CARDINALITY + 10, size=(n_rows, 2))
    return codes, numbers


@pytest.mark.parametrize(
    "params", [{}, {"zero_as_missing": True}, {"use_missing": False}], ids=["NaN", "Zero", "None"]
)
def test_scores_equal_lightgbm_at_thresholds_and_unseen_values(params: dict[str, Any]) -> None:
    codes, numbers = table(2, 3)
    booster = train(codes, numbers, "regression", rounds=20, **params)
    forest = compiled(booster, 2)
    probe_codes, probe_numbers = probe_rows(booster)
    assert_same_scores(forest, booster, probe_codes, probe_numbers)  # float64 numbers
    assert_same_scores(forest, booster, probe_codes, probe_numbers.astype(np.float32))


def test_a_booster_without_splits_gives_its_constant() -> None:
    codes, numbers = table(2, 2)
    booster = train(codes, numbers, "regression", min_data_in_leaf=10_000)
    forest = compiled(booster, 2)
    assert forest.depth == 0 and not splits(booster)
    assert_same_scores(forest, booster, codes, numbers)


def test_a_random_forest_averages_its_trees_as_lightgbm_predicts() -> None:
    codes, numbers = table(2, 3)
    bagging = {"boosting": "rf", "bagging_fraction": 0.5, "bagging_freq": 1}
    booster = train(codes, numbers, "regression", **bagging)
    forest = compiled(booster, 2)
    got = forest.raw_scores(torch.from_numpy(codes), torch.from_numpy(numbers))[:, 0].numpy()
    np.testing.assert_allclose(got, booster.predict(features(codes, numbers)), rtol=0, atol=1e-9)


@pytest.fixture(scope="module")
def multiclass() -> Trained:
    codes, numbers = table(3, 3)
    booster = train(codes, numbers, "multiclass")
    return booster, compiled(booster, 3), codes, numbers


def test_the_traced_forest_scores_any_number_of_rows(multiclass: Trained) -> None:
    booster, forest, codes, numbers = multiclass
    example = (torch.from_numpy(codes[:7]), torch.from_numpy(numbers[:7]))
    saved = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation
        torch.jit.save(torch.jit.trace(forest, example), saved)
        program = torch.jit.load(io.BytesIO(saved.getvalue()))
    got = program(torch.from_numpy(codes), torch.from_numpy(numbers)).numpy()
    np.testing.assert_allclose(got, lightgbm_raw(booster, codes, numbers), rtol=0, atol=1e-5)


def test_the_onnx_forest_scores_any_number_of_rows_in_onnx_runtime(multiclass: Trained) -> None:
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    booster, forest, codes, numbers = multiclass
    example = (torch.from_numpy(codes[:7]), torch.from_numpy(numbers[:7]))
    saved = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter's deprecation
        torch.onnx.export(
            forest,
            example,
            saved,
            input_names=["codes", "numbers"],
            output_names=["scores"],
            dynamic_axes={name: {0: "rows"} for name in ("codes", "numbers", "scores")},
            dynamo=False,
        )
    session = onnxruntime.InferenceSession(saved.getvalue(), providers=["CPUExecutionProvider"])
    (got,) = session.run(["scores"], {"codes": codes, "numbers": numbers})
    np.testing.assert_allclose(got, lightgbm_raw(booster, codes, numbers), rtol=0, atol=1e-5)


def test_the_state_dict_rebuilds_the_forest(multiclass: Trained) -> None:
    booster, forest, codes, numbers = multiclass
    rebuilt = Forest(forest.state_dict(), depth=forest.depth, n_outputs=forest.n_outputs)
    assert_same_scores(rebuilt, booster, codes, numbers)


def test_the_saved_text_compiles_to_the_same_forest(multiclass: Trained) -> None:
    booster, forest, codes, numbers = multiclass
    from_text = forest_from_text(booster.model_to_string(), n_categorical=3, n_outputs=4)
    assert from_text.depth == forest.depth
    for name, table_ in forest.state_dict().items():
        assert torch.equal(from_text.state_dict()[name], table_), name


def test_the_saved_text_is_cut_at_num_iteration(multiclass: Trained) -> None:
    booster, _, codes, numbers = multiclass
    cut = forest_from_text(booster.model_to_string(), n_categorical=3, n_outputs=4, num_iteration=5)
    want = booster.predict(features(codes, numbers), raw_score=True, num_iteration=5)
    got = cut.raw_scores(torch.from_numpy(codes), torch.from_numpy(numbers)).numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


def test_the_text_path_says_how_to_install_lightgbm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lightgbm", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r"pip install 'carsearch\[lightgbm\]'"):
        forest_from_text("tree\n", n_categorical=0, n_outputs=1)


@pytest.mark.parametrize(
    ("n_categorical", "n_outputs", "params", "message"),
    [
        (2, 3, {}, "1 tree.s. per iteration cannot give 3 outputs"),
        (1, 1, {}, "categorical split on column 1"),
        (3, 1, {}, "numeric split on column 2"),
        (2, 1, {"linear_tree": True}, "linear leaves"),
    ],
)
def test_a_booster_that_does_not_fit_is_refused(
    n_categorical: int, n_outputs: int, params: dict[str, Any], message: str
) -> None:
    codes, numbers = table(2, 3)
    booster = train(codes, numbers, "regression", rounds=3, **params)
    with pytest.raises(ValueError, match=message):
        compile_booster(booster.dump_model(), n_categorical=n_categorical, n_outputs=n_outputs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_forest_moves_to_the_gpu_and_scores_the_same(multiclass: Trained) -> None:
    booster, forest, codes, numbers = multiclass
    on_gpu = Forest(forest.state_dict(), depth=forest.depth, n_outputs=4).to("cuda")
    got = on_gpu.raw_scores(torch.from_numpy(codes).cuda(), torch.from_numpy(numbers).cuda())
    want = lightgbm_raw(booster, codes, numbers)
    np.testing.assert_allclose(got.cpu().numpy(), want, rtol=0, atol=1e-9)
