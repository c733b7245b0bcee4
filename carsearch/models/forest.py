"""LightGBM boosters compiled into torch modules, so a forest joins ensembles and exports.

Every ensemble member is a torch module traced to TorchScript and exported to ONNX, so a
trained booster becomes one: :func:`compile_booster` reads ``Booster.dump_model()`` into
padded node tables, and :class:`Forest` walks every tree at once, a few gathers per level,
with no data-dependent control flow (tracing unrolls the fixed number of levels). It gives
what ``Booster.predict(X, raw_score=True)`` gives, to the last bit of float64 but for the
order of the sum: thresholds stay float64 (a float32 threshold flips the rows that lie
between its two roundings) and leaf values are summed in float64; only the result is
rounded to float32.

The booster must have been trained on ``X = [codes, numbers]`` as float64, with the first
``n_categorical`` columns declared categorical (``categorical_feature=range(n_categorical)``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

#: LightGBM's ``kZeroThreshold`` (``1e-35f``): its predictor reads values within it of zero
#: as 0.0 (absent from its sparse rows), which nodes of missing type ``Zero`` call missing.
ZERO_BAND = float(np.float32(1e-35))
#: The one line a missing ``lightgbm`` package gives, naming the extra that installs it.
MISSING_LIGHTGBM = (
    "the lightgbm model needs the lightgbm package: pip install 'carsearch[lightgbm]'"
)
#: Missing types and default directions of numeric nodes: each reads its own copy of the
#: numbers, with NaN (and for ``Zero``, zero) already replaced by a value that goes its way.
VARIANTS = (("None", None), ("NaN", True), ("NaN", False), ("Zero", True), ("Zero", False))
#: The buffers of a :class:`Forest`; node fields are ``(trees * width,)``.
TABLES = (
    "roots",
    "column",
    "threshold",
    "category_start",
    "first_child",
    "value",
    "categories",
    "category_limit",
    "weights",
)


class Forest(nn.Module):
    """A compiled LightGBM booster: ``(codes, numbers)`` to raw scores ``(rows, n_outputs)``.

    Node tables hold all trees side by side, each padded to the widest. The current node of
    every (row, tree) moves down one level per step; a node's right child follows its left
    one (``first_child + 1``) and a leaf is its own first child and always goes left, so
    after ``depth`` steps every row sits on a leaf of every tree. To keep a step to a few
    gathers, LightGBM's rules are folded into the inputs once per call, in :meth:`columns`:

    * numeric nodes read one of five copies of the numbers (:data:`VARIANTS`), in which
      NaN (and for missing type ``Zero``, zero) is already a value that goes the node's
      default way (``None`` reads NaN as 0.0, as LightGBM does), so every numeric node
      just sends ``x <= threshold`` left;
    * categorical nodes read a column's category as an offset into their slice of the flat
      membership table ``categories``, out-of-range, negative and NaN categories pointing at
      the slice's last entry, always ``False``: left iff the category is in the node's set.
      Their threshold is ``-inf``, so their comparison is ``False``; numeric nodes look up
      entry 0, also ``False``, as their columns' offsets are 0.

    Node indices are int32: half the memory traffic of int64, where a step is all gathers.
    A step holds a few ``(rows, trees)`` tensors: score large tables in chunks of some
    thousand rows (8192 rows and 300 trees take ~0.1 GB). The tables are buffers:
    ``state_dict()`` carries them, ``.to(device)`` moves them (to one with float64: not MPS),
    and ``Forest(forest.state_dict(), depth=forest.depth, n_outputs=forest.n_outputs)``
    rebuilds the module. Never ``.float()`` it: float32 thresholds would flip decisions.

    Example:
        >>> import torch
        >>> dump = {"num_tree_per_iteration": 1, "max_feature_idx": 1, "tree_info": [
        ...     {"tree_structure": {"split_feature": 1, "threshold": 0.5, "decision_type": "<=",
        ...      "default_left": True, "missing_type": "NaN",
        ...      "left_child": {"leaf_value": -1.0}, "right_child": {"leaf_value": 2.0}}}]}
        >>> forest = compile_booster(dump, n_categorical=1, n_outputs=1)
        >>> forest(torch.tensor([[0], [0], [0]]), torch.tensor([[0.2], [0.9], [float("nan")]]))
        tensor([[-1.],
                [ 2.],
                [-1.]])
    """

    roots: torch.Tensor
    column: torch.Tensor
    threshold: torch.Tensor
    category_start: torch.Tensor
    first_child: torch.Tensor
    value: torch.Tensor
    categories: torch.Tensor
    category_limit: torch.Tensor
    weights: torch.Tensor

    def __init__(self, tables: Mapping[str, torch.Tensor], *, depth: int, n_outputs: int) -> None:
        super().__init__()
        for name in TABLES:
            self.register_buffer(name, tables[name].clone())
        self.depth = depth
        self.n_outputs = n_outputs
        #: A binary booster has one tree per iteration; its first logit is a constant 0.
        self.binary = n_outputs == 2 and self.weights.shape[1] == 1
        #: Without categorical splits a step skips the membership lookup.
        self.has_categories = len(self.categories) > 1

    def forward(self, codes: torch.Tensor, numbers: torch.Tensor) -> torch.Tensor:
        """float32 raw scores of int64 ``codes`` and float ``numbers`` (NaN for missing)."""
        scores = self.raw_scores(codes, numbers)
        if self.binary:
            scores = torch.cat([torch.zeros_like(scores), scores], dim=1)
        return scores.to(torch.float32)

    def raw_scores(self, codes: torch.Tensor, numbers: torch.Tensor) -> torch.Tensor:
        """``(rows, trees per iteration)`` float64: ``Booster.predict(X, raw_score=True)``."""
        values, offsets = self.columns(codes, numbers)
        node = self.roots.expand(values.shape[0], -1)
        for _ in range(self.depth):
            node = self._step(values, offsets, node)
        return _select(self.value, node) @ self.weights

    def columns(
        self, codes: torch.Tensor, numbers: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """What the nodes read: float64 values and int32 category offsets, one column each
        per categorical column (its offset, in both) and per numeric copy (offset 0)."""
        category = codes.to(torch.float64)
        limit = self.category_limit
        inside = (category > -1.0) & (category < limit)  # int() truncates -0.5 to 0
        offsets = torch.where(inside, category.clamp(min=0.0), limit)
        x = numbers.to(torch.float64)
        missing = torch.isnan(x)
        zero = x.abs() <= ZERO_BAND
        known = torch.where(missing | zero, 0.0, x)
        copies = [known]
        for missing_type, default_left in VARIANTS[1:]:
            mask = missing | zero if missing_type == "Zero" else missing
            copies.append(torch.where(mask, -math.inf if default_left else math.inf, known))
        values = torch.cat([offsets, *copies], dim=1)
        numeric = torch.zeros_like(known, dtype=torch.int32).repeat(1, len(VARIANTS))
        return values, torch.cat([offsets.to(torch.int32), numeric], dim=1)

    def _step(
        self, values: torch.Tensor, offsets: torch.Tensor, node: torch.Tensor
    ) -> torch.Tensor:
        """The next node of each (row, tree): one level down, or the same leaf."""
        column = _select(self.column, node)
        go_left = values.gather(1, column) <= _select(self.threshold, node)
        if self.has_categories:
            position = _select(self.category_start, node) + offsets.gather(1, column)
            go_left = go_left | _select(self.categories, position)
        return _select(self.first_child, node) + (~go_left).to(torch.int32)

    def extra_repr(self) -> str:
        trees = len(self.roots)
        width = len(self.column) // max(1, trees)
        return f"trees={trees}, width={width}, depth={self.depth}, n_outputs={self.n_outputs}"


def _select(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``table[index]`` by the fastest gather of each runtime (a step is mostly these).

    PyTorch: ``index_select`` with int32 indices, three times ``table[index]``'s speed.
    ONNX: ``gather`` (GatherElements), which ONNX Runtime runs four times faster than the
    Gather that ``index_select`` becomes; it takes int64 indices only.
    """
    flat = index.reshape(-1)
    if torch.onnx.is_in_onnx_export():
        return table.gather(0, flat.to(torch.long)).reshape(index.shape)
    return table.index_select(0, flat).reshape(index.shape)


def compile_booster(dump: dict[str, Any], *, n_categorical: int, n_outputs: int) -> Forest:
    """The :class:`Forest` of ``booster.dump_model()``, with all its trees.

    Cut the booster first (``dump_model(num_iteration=best)``): every tree dumped is used.

    Args:
        dump: LightGBM's JSON model (``Booster.dump_model()``).
        n_categorical: The leading columns declared categorical in training.
        n_outputs: 1 for regression, 2 for a binary booster (its logits become ``[0, raw]``,
            so softmax gives LightGBM's sigmoid), K for a K-class booster.

    Raises:
        ValueError: The booster does not fit ``n_categorical``/``n_outputs``, or has linear
            leaves (``linear_tree``), which a forest does not compute.
    """
    per_iteration = int(dump["num_tree_per_iteration"])
    if n_outputs != per_iteration and not (n_outputs == 2 and per_iteration == 1):
        raise ValueError(
            f"a booster with {per_iteration} tree(s) per iteration cannot give {n_outputs} outputs"
        )
    n_numeric = int(dump["max_feature_idx"]) + 1 - n_categorical
    trees = [
        _read_tree(tree["tree_structure"], number, n_categorical)
        for number, tree in enumerate(dump["tree_info"])
    ]
    tables = _tables(trees, n_categorical, n_numeric)
    tables["weights"] = _class_weights(len(trees), per_iteration, dump.get("average_output", False))
    depth = max((node["level"] for nodes in trees for node in nodes), default=0)
    return Forest(tables, depth=depth, n_outputs=n_outputs)


def forest_from_text(
    model_text: str, *, n_categorical: int, n_outputs: int, num_iteration: int | None = None
) -> Forest:
    """The :class:`Forest` of a saved LightGBM model (``booster.model_to_string()``).

    A booster loaded from text forgets its ``best_iteration``: save it cut
    (``model_to_string(num_iteration=best)``) or pass ``num_iteration`` here.
    """
    try:
        import lightgbm
    except ImportError as error:
        raise ImportError(MISSING_LIGHTGBM) from error
    dump = lightgbm.Booster(model_str=model_text).dump_model(num_iteration=num_iteration)
    return compile_booster(dump, n_categorical=n_categorical, n_outputs=n_outputs)


def _read_tree(root: dict[str, Any], number: int, n_categorical: int) -> list[dict[str, Any]]:
    """One tree's nodes, each split's two children side by side, with their levels.

    Iterative, not recursive: leaf-wise trees can be deeper than Python's recursion limit.
    """
    nodes: list[dict[str, Any]] = [{}]
    stack = [(root, 0, 0)]
    while stack:
        spec, index, level = stack.pop()
        if "leaf_coeff" in spec:
            raise ValueError(f"tree {number} has linear leaves (linear_tree), not supported")
        if "split_feature" not in spec:
            nodes[index] = {"value": float(spec["leaf_value"]), "level": level}
            continue
        first = len(nodes)
        nodes += [{}, {}]
        nodes[index] = _split(spec, number, n_categorical) | {"first": first, "level": level}
        stack.append((spec["left_child"], first, level + 1))
        stack.append((spec["right_child"], first + 1, level + 1))
    return nodes


def _split(spec: dict[str, Any], number: int, n_categorical: int) -> dict[str, Any]:
    """One split node: its feature, and its threshold or its set of categories."""
    feature = int(spec["split_feature"])
    categorical = spec["decision_type"] == "=="
    if categorical != (feature < n_categorical):
        kind = "categorical" if categorical else "numeric"
        raise ValueError(
            f"tree {number} has a {kind} split on column {feature}, but the first "
            f"{n_categorical} columns should be the categorical ones"
        )
    if categorical:
        members = [int(category) for category in str(spec["threshold"]).split("||")]
        return {"feature": feature, "members": members}
    missing_type = spec["missing_type"]
    default_left = None if missing_type == "None" else bool(spec["default_left"])
    variant = (missing_type, default_left)
    return {"feature": feature, "threshold": float(spec["threshold"]), "variant": variant}


def _tables(
    trees: list[list[dict[str, Any]]], n_categorical: int, n_numeric: int
) -> dict[str, torch.Tensor]:
    """The padded, flattened node tables; padding nodes are 0-valued leaves."""
    n_trees, width = len(trees), max((len(nodes) for nodes in trees), default=1)
    flat = np.arange(n_trees * width, dtype=np.int32).reshape(n_trees, width)
    fields = {
        "column": np.zeros((n_trees, width), dtype=np.int64),
        "threshold": np.full((n_trees, width), np.inf),  # leaves go left, to themselves
        "category_start": np.zeros((n_trees, width), dtype=np.int32),
        "first_child": flat.copy(),
        "value": np.zeros((n_trees, width)),
    }
    limits = _category_limits(trees, n_categorical)
    categories = [False]  # entry 0: where numeric nodes' lookups land
    for tree, nodes in enumerate(trees):
        for index, node in enumerate(nodes):
            at = (tree, index)
            if "value" in node:
                fields["value"][at] = node["value"]
                continue
            fields["first_child"][at] = flat[tree, node["first"]]
            if "members" in node:
                fields["column"][at] = node["feature"]
                fields["threshold"][at] = -np.inf
                fields["category_start"][at] = len(categories)
                members = np.zeros(limits[node["feature"]] + 1, dtype=bool)
                members[node["members"]] = True
                categories += members.tolist()
            else:
                numeric = node["feature"] - n_categorical
                fields["column"][at] = _column(node["variant"], numeric, n_categorical, n_numeric)
                fields["threshold"][at] = node["threshold"]
    tables = {name: torch.from_numpy(array.reshape(-1)) for name, array in fields.items()}
    tables["roots"] = torch.from_numpy(flat[:, 0].copy())
    tables["categories"] = torch.tensor(categories)
    tables["category_limit"] = torch.from_numpy(limits.astype(np.float64))
    return tables


def _category_limits(trees: list[list[dict[str, Any]]], n_categorical: int) -> np.ndarray:
    """Per categorical column, one past the largest category any split names: the length of
    its nodes' slices but the last entry, where every other category looks."""
    limits = np.zeros(n_categorical, dtype=np.int64)
    for node in (node for nodes in trees for node in nodes if "members" in node):
        limits[node["feature"]] = max(limits[node["feature"]], max(node["members"]) + 1)
    return limits


def _column(
    variant: tuple[str, bool | None], numeric: int, n_categorical: int, n_numeric: int
) -> int:
    """Where, in :meth:`Forest.columns`, a numeric node finds its feature's copy."""
    return n_categorical + VARIANTS.index(variant) * n_numeric + numeric


def _class_weights(n_trees: int, per_iteration: int, average: bool) -> torch.Tensor:
    """``(trees, per_iteration)``: tree i adds to column i % per_iteration (LightGBM orders
    trees iteration-major).

    Random-forest boosters (``average_output``) average the iterations, as LightGBM's
    ``predict`` does before its sigmoid/softmax, so the scores stay logits; its
    ``raw_score=True`` is the plain sum, which no probability is made from.
    """
    weights = torch.zeros(n_trees, per_iteration, dtype=torch.float64)
    weights[torch.arange(n_trees), torch.arange(n_trees) % per_iteration] = 1.0
    if average and n_trees:
        weights /= n_trees // per_iteration
    return weights
