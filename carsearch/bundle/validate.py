"""Checking a bundle's ``model.json`` before anything is built from it.

JSON is parsed with its nesting bounded (:data:`MAX_DEPTH`), then each field a reader uses
is checked against an explicit rule with bounds: types, positive and bounded sizes and
counts, distinct names, lists of the right lengths. Fields the reader does not use (and
fields a later carsearch adds) are not checked. Every failure is one
:class:`~carsearch.exceptions.BundleError` line naming the file and the field.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, NoReturn

from carsearch.data.schema import CLASSIFICATION, REGRESSION, Schema
from carsearch.exceptions import BundleError

#: Deepest nesting of lists and objects a bundle's JSON may have (model.json needs ~6).
MAX_DEPTH = 64
#: Largest magnitude of an integer model parameter (layer widths, block counts, batch size).
MAX_PARAM = 1 << 20
#: Most parameters a model may have.
MAX_PARAMS = 1000
#: Widest embedding of a categorical column.
MAX_WIDTH = 1 << 16
#: Most ensemble members.
MAX_MEMBERS = 1024
#: Most columns (categorical and numeric each).
MAX_COLUMNS = 100_000
#: Most files a bundle lists.
MAX_FILES = 64
#: Longest text: a name (of a model, column, category or class) or a text parameter.
MAX_TEXT = 1 << 20
TASKS = (CLASSIFICATION, REGRESSION)


def parse_json(data: bytes, file: Path) -> Any:
    """The JSON value of ``data`` (UTF-8), nested at most :data:`MAX_DEPTH` deep.

    Raises:
        BundleError: not UTF-8, malformed JSON, or nested too deeply.
    """
    try:
        value = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise BundleError(f"{file}: not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise BundleError(
            f"{file}: malformed JSON ({error.msg} at line {error.lineno}, column {error.colno})"
        ) from None
    except RecursionError:  # the parser's own guard, far deeper than MAX_DEPTH
        value = too_deep = True  # raised below, out of this handler
    else:
        too_deep = _depth_over(value, MAX_DEPTH)
    if too_deep:
        raise BundleError(f"{file}: JSON nested more than {MAX_DEPTH} levels deep")
    return value


def _depth_over(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists and objects more than ``limit`` deep (no recursion)."""
    level = [value]
    for _ in range(limit):  # after these, ``level`` holds the values at depth limit + 1
        level = [
            item
            for node in level
            if isinstance(node, (list, dict))
            for item in (node.values() if isinstance(node, dict) else node)
        ]
        if not level:
            return False
    return any(isinstance(node, (list, dict)) for node in level)


def check_manifest(record: dict[str, Any], file: Path, version: int) -> None:
    """Check the fields of a parsed ``model.json`` of format ``version`` (1 or 2).

    Raises:
        BundleError: a field is missing or breaks its rule; the message names it.
    """
    _text(_get(record, "model", file), file, "model")
    _params(_get(record, "params", file), file)
    dims = _list(_get(record, "embedding_dims", file), file, "embedding_dims", MAX_COLUMNS)
    for i, dim in enumerate(dims):
        _integer(dim, file, f"embedding_dims[{i}]", 1, MAX_WIDTH)
    _integer(_get(record, "n_members", file), file, "n_members", 1, MAX_MEMBERS)
    _schema(_get(record, "schema", file), file)
    _names(_get(record, "classes", file), file, "classes")
    frequent = _get(record, "most_frequent", file)
    if not isinstance(frequent, dict):
        _malformed(file, "most_frequent", "an object of column names to categories")
    check_names(_get(record, "files", file), file, "files")
    _member_files(record.get("member_files", {}), record, file)
    _decision_weights(record.get("decision_weights"), record["classes"], file)
    if version >= 2:
        if _get(record, "task", file) not in TASKS:
            _malformed(file, "task", f"one of {', '.join(TASKS)}")
        if not isinstance(_get(record, "numeric_state", file), (dict, type(None))):
            _malformed(file, "numeric_state", "an object, or null")
        _target_scale(_get(record, "target_scale", file), file)
    if version >= 3:
        _members(_get(record, "members", file), record["n_members"], file)


def manifest_schema(manifest: dict[str, Any], file: Path) -> Schema:
    """The schema of a checked manifest, checked against the manifest's other fields."""
    try:
        schema = Schema.from_dict(manifest["schema"])
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise BundleError(f"{file}: field 'schema' is malformed ({error!r})") from None
    if list(schema.classes) != manifest["classes"]:
        raise BundleError(f"{file}: 'classes' differs from the schema's classes")
    if manifest.get("task", schema.task) != schema.task:
        raise BundleError(f"{file}: 'task' differs from the schema's task")
    if (schema.task == CLASSIFICATION) != (len(schema.classes) >= 2):
        raise BundleError(f"{file}: a classification has 2 or more classes, a regression none")
    frequent = manifest["most_frequent"]
    if any(frequent.get(column.name) not in column.categories for column in schema.columns):
        raise BundleError(f"{file}: 'most_frequent' needs one known category per column")
    start, texts = 0, manifest.get("member_files", {})
    for part in manifest.get("members") or [manifest]:  # version 3: the first is the top's
        saved = [str(i) in texts for i in range(start, start + part["n_members"])]
        start += part["n_members"]
        if any(saved) and not all(saved):
            raise BundleError(f"{file}: 'member_files' covers part of a configuration's members")
        if not any(saved):  # an estimator's members take the raw codes and numbers
            _check_inputs(part, schema, file)
    return schema


def _check_inputs(part: dict[str, Any], schema: Schema, file: Path) -> None:
    """A configuration's widths and numeric state fit the schema's columns."""
    if len(part["embedding_dims"]) != len(schema.columns):
        raise BundleError(f"{file}: 'embedding_dims' needs one width per schema column")
    if schema.numeric and not (
        isinstance(part.get("numeric_state"), dict)
        and isinstance(part["params"].get("numeric_encoding"), str)
    ):
        raise BundleError(
            f"{file}: numeric columns need a 'numeric_state' and a 'numeric_encoding' param"
        )


def check_names(value: Any, file: Path, field: str) -> None:
    """``value`` is an object whose keys are plain file names (no folders)."""
    if not isinstance(value, dict) or len(value) > MAX_FILES:
        _malformed(file, field, f"an object of at most {MAX_FILES} file names")
    for name in value:
        if not name or name in (".", "..") or len(name) > 255 or any(c in name for c in "/\\\0"):
            _malformed(file, field, f"{name[:100]!r} is not a plain file name")


def _schema(value: Any, file: Path) -> None:
    if not isinstance(value, dict):
        _malformed(file, "schema", "an object")
    columns = _list(_get(value, "columns", file, "schema"), file, "schema.columns", MAX_COLUMNS)
    numeric = _list(value.get("numeric", []), file, "schema.numeric", MAX_COLUMNS)
    for i, column in enumerate(columns):
        field = f"schema.columns[{i}]"
        if not isinstance(column, dict):
            _malformed(file, field, "an object")
        _text(_get(column, "name", file, field), file, f"{field}.name")
        categories = _names(_get(column, "categories", file, field), file, f"{field}.categories")
        if not categories:
            _malformed(file, f"{field}.categories", "at least one category")
    for i, column in enumerate(numeric):
        field = f"schema.numeric[{i}]"
        if not isinstance(column, dict):
            _malformed(file, field, "an object")
        _text(_get(column, "name", file, field), file, f"{field}.name")
        _finite(_get(column, "median", file, field), file, f"{field}.median")
        if not isinstance(_get(column, "missing_indicator", file, field), bool):
            _malformed(file, f"{field}.missing_indicator", "true or false")
    _names([c["name"] for c in [*columns, *numeric]], file, "schema's column names")
    _text(_get(value, "target", file, "schema"), file, "schema.target")
    _names(_get(value, "classes", file, "schema"), file, "schema.classes")
    if value.get("task", CLASSIFICATION) not in TASKS:
        _malformed(file, "schema.task", f"one of {', '.join(TASKS)}")


def _params(value: Any, file: Path) -> None:
    if not isinstance(value, dict) or len(value) > MAX_PARAMS:
        _malformed(file, "params", f"an object of at most {MAX_PARAMS} parameters")
    for name, param in value.items():
        field = f"params.{name[:100]}"
        if isinstance(param, bool) or param is None:
            continue
        if isinstance(param, int):
            _integer(param, file, field, -MAX_PARAM, MAX_PARAM)
        elif isinstance(param, float):
            _finite(param, file, field)
        elif isinstance(param, str):
            _text(param, file, field)
        else:
            _malformed(file, field, "a number, text, true, false or null")


def _member_files(value: Any, record: dict[str, Any], file: Path) -> None:
    """Estimator members' text files: member index to a file that ``files`` lists."""
    if not isinstance(value, dict) or len(value) > record["n_members"]:
        _malformed(file, "member_files", "an object of member indices to file names")
    for index, name in value.items():
        if not (index.isdigit() and int(index) < record["n_members"]):
            _malformed(file, "member_files", f"{index[:20]!r} is not a member's index")
        if not isinstance(name, str) or name not in record["files"]:
            _malformed(file, f"member_files.{index}", "a file that 'files' lists")


def _members(value: Any, n_members: int, file: Path) -> None:
    """A version-3 ensemble's configurations: each a model, params, widths, numeric state,
    a member count and a positive weight; the counts add up to ``n_members``."""
    parts = _list(value, file, "members", MAX_MEMBERS)
    if not parts:
        _malformed(file, "members", "a list of at least one configuration")
    for i, part in enumerate(parts):
        field = f"members[{i}]"
        if not isinstance(part, dict):
            _malformed(file, field, "an object")
        _text(_get(part, "model", file, field), file, f"{field}.model")
        _params(_get(part, "params", file, field), file)
        dims = _list(
            _get(part, "embedding_dims", file, field), file, f"{field}.embedding_dims", MAX_COLUMNS
        )
        for j, dim in enumerate(dims):
            _integer(dim, file, f"{field}.embedding_dims[{j}]", 1, MAX_WIDTH)
        _integer(_get(part, "n_members", file, field), file, f"{field}.n_members", 1, MAX_MEMBERS)
        if _finite(_get(part, "weight", file, field), file, f"{field}.weight") <= 0:
            _malformed(file, f"{field}.weight", "a positive number")
        if not isinstance(_get(part, "numeric_state", file, field), (dict, type(None))):
            _malformed(file, f"{field}.numeric_state", "an object, or null")
    if sum(part["n_members"] for part in parts) != n_members:
        _malformed(file, "members", f"configurations whose n_members add up to {n_members}")


def _decision_weights(value: Any, classes: list[str], file: Path) -> None:
    """Optional (absent or null: plain argmax): one positive finite weight per class."""
    if value is None:
        return
    rule = f"null, or a list of {len(classes)} positive finite numbers (one per class)"
    if not classes or not isinstance(value, list) or len(value) != len(classes):
        _malformed(file, "decision_weights", rule)
    for weight in value:
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            _malformed(file, "decision_weights", rule)
        if not (math.isfinite(weight) and weight > 0):
            _malformed(file, "decision_weights", rule)


def _target_scale(value: Any, file: Path) -> None:
    if not isinstance(value, list) or len(value) != 2:
        _malformed(file, "target_scale", "a list of exactly 2 numbers: the target's mean and std")
    _finite(value[0], file, "target_scale[0]")
    if _finite(value[1], file, "target_scale[1]") <= 0:
        _malformed(file, "target_scale[1]", "a standard deviation above 0")


def _get(record: dict[str, Any], key: str, file: Path, parent: str = "") -> Any:
    if key not in record:
        field = f"{parent}.{key}" if parent else key
        raise BundleError(f"{file}: field {field!r} is missing")
    return record[key]


def _list(value: Any, file: Path, field: str, most: int) -> list[Any]:
    if not isinstance(value, list) or len(value) > most:
        _malformed(file, field, f"a list of at most {most} items")
    return value


def _names(value: Any, file: Path, field: str) -> list[str]:
    """A list of distinct, bounded texts."""
    names = _list(value, file, field, 10**7)
    for name in names:
        _text(name, file, field)
    if len(set(names)) != len(names):
        _malformed(file, field, "distinct names; one is repeated")
    return names


def _text(value: Any, file: Path, field: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        _malformed(file, field, f"text of at most {MAX_TEXT} characters")
    return value


def _integer(value: Any, file: Path, field: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        _malformed(file, field, f"a whole number from {low} to {high}, not {str(value)[:50]}")
    return value


def _finite(value: Any, file: Path, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _malformed(file, field, f"a finite number, not {str(value)[:50]}")
    return float(value)


def _malformed(file: Path, field: str, rule: str) -> NoReturn:
    raise BundleError(f"{file}: field {field!r} is malformed: it must be {rule}")
