"""The registry: built-ins as entry points, lazy loading, and every error it raises.

Third-party plugins are real modules and real ``.dist-info`` metadata written under
``tmp_path``; only ``importlib.metadata.entry_points`` is monkeypatched to see them alone,
as pluggy's own tests do.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import optuna
import pytest

from carsearch import RunConfig, plugins
from carsearch.cli import build_parser, main
from carsearch.data.table import Table, make_table
from carsearch.exceptions import PluginError
from carsearch.models.base import ModelPlugin
from carsearch.search.study import PLUGINS_ATTR, open_study
from helpers import make_frame

BUILTINS = {
    "models": {"mlp"},
    "embedding_rules": {"textbook", "fastai", "fixed"},
    "optimizers": {"sgd", "adam", "rmsprop"},
    "datasets": {"car_evaluation"},
}
MODEL_SOURCE = """
    from carsearch.models.mlp import EmbeddingMLPPlugin

    class Model(EmbeddingMLPPlugin):
        pass
"""


class FakeSite:
    """Installs plugin packages for one test: modules on ``sys.path`` plus dist-info metadata."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.site, self.meta = root / "site", root / "meta"
        self.site.mkdir()
        self.meta.mkdir()
        self.dists: list[metadata.Distribution] = []
        self.modules: list[str] = []
        monkeypatch.syspath_prepend(str(self.site))
        monkeypatch.setattr(metadata, "entry_points", self.entry_points)

    def module(self, name: str, source: str) -> None:
        (self.site / f"{name}.py").write_text(textwrap.dedent(source))
        self.modules.append(name)

    def dist(self, package: str, version: str, group: str, **names: str) -> None:
        info = self.meta / f"{package}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n"
        )
        lines = [f"[{group}]", *(f"{name} = {value}" for name, value in names.items())]
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        self.dists.append(metadata.PathDistribution(info))

    def entry_points(self, *, group: str) -> metadata.EntryPoints:
        found = [ep for dist in self.dists for ep in dist.entry_points if ep.group == group]
        return metadata.EntryPoints(found)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    fake = FakeSite(tmp_path, monkeypatch)
    yield fake
    for name in fake.modules:
        sys.modules.pop(name, None)


@pytest.mark.parametrize("kind", sorted(BUILTINS))
def test_builtins_are_entry_points_of_the_carsearch_distribution(kind: str) -> None:
    infos = {info.name: info for info in plugins.entries(kind)}
    assert BUILTINS[kind] <= set(infos)
    for name in BUILTINS[kind]:
        assert infos[name].package == "carsearch"
        assert infos[name].value.startswith("carsearch.")
        assert infos[name].group == f"carsearch.{kind}"
        assert plugins.check_loads(infos[name]) is None


def test_listing_imports_nothing_and_loading_imports_only_that_plugin(site: FakeSite) -> None:
    site.module("listed_one", MODEL_SOURCE)
    site.module("listed_two", MODEL_SOURCE)
    site.dist(
        "two-models", "1.2", "carsearch.models", one="listed_one:Model", two="listed_two:Model"
    )

    names = [info.name for info in plugins.entries("models")]
    record = plugins.describe("models", "one")
    plugins.find("models", "two")

    assert names == ["one", "two"]
    assert record == {"name": "one", "package": "two-models", "version": "1.2"}
    assert "listed_one" not in sys.modules and "listed_two" not in sys.modules
    assert isinstance(plugins.load("models", "one"), ModelPlugin)
    assert "listed_one" in sys.modules and "listed_two" not in sys.modules


def test_unknown_name_lists_the_valid_names_and_the_group(site: FakeSite) -> None:
    site.dist("some-rules", "1.0", "carsearch.embedding_rules", b="m:B", a="m:A")
    with pytest.raises(PluginError) as caught:
        plugins.load("embedding_rules", "nope")
    message = str(caught.value)
    assert "unknown embedding rule 'nope'" in message
    assert "valid names: a, b" in message
    assert "'carsearch.embedding_rules'" in message
    assert isinstance(caught.value, LookupError)


def test_unknown_name_when_none_is_installed(site: FakeSite) -> None:
    with pytest.raises(PluginError, match=r"unknown data set 'x'; valid names: none installed"):
        plugins.load("datasets", "x")


def test_unknown_kind_lists_the_kinds() -> None:
    with pytest.raises(PluginError, match="unknown plugin kind 'losses'; kinds are models"):
        plugins.entries("losses")


@pytest.mark.parametrize(
    ("source", "value", "error"),
    [
        ("import not_installed_dependency\n", "broken:Model", "ModuleNotFoundError"),
        ("raise RuntimeError('no GPU driver')\n", "broken:Model", "RuntimeError: no GPU driver"),
        ("def broken(:\n", "broken:Model", "SyntaxError"),
        ("x = 1\n", "broken:Modle", "AttributeError"),
    ],
    ids=["missing-dependency", "raises", "syntax-error", "missing-attribute"],
)
def test_import_failure_names_the_plugin(
    site: FakeSite, source: str, value: str, error: str
) -> None:
    site.module("broken", source)
    site.dist("carsearch-broken", "0.3", "carsearch.models", shiny=value)
    with pytest.raises(PluginError) as caught:
        plugins.load("models", "shiny")
    message = str(caught.value)
    assert f"plugin 'shiny' ({value}, from carsearch-broken 0.3) failed to import" in message
    assert error in message


@pytest.mark.parametrize(
    ("attr", "what"),
    [
        ("Adam", "class Adam"),  # an optimizer plugin registered as a model
        ("function", "a function"),
        ("instance", "a Model"),
    ],
)
def test_wrong_type_names_the_plugin(site: FakeSite, attr: str, what: str) -> None:
    site.module(
        "wrong",
        """
        from carsearch.models.mlp import EmbeddingMLPPlugin
        from carsearch.training.optimizers import Adam

        def function():
            pass

        class Model(EmbeddingMLPPlugin):
            pass

        instance = Model()
        """,
    )
    site.dist("carsearch-wrong", "1.0", "carsearch.models", odd=f"wrong:{attr}")
    with pytest.raises(PluginError) as caught:
        plugins.load("models", "odd")
    assert str(caught.value) == (
        f"plugin 'odd' (wrong:{attr}, from carsearch-wrong 1.0) is {what}, "
        "not a subclass of carsearch.models.base.ModelPlugin or "
        "carsearch.models.base.EstimatorPlugin"
    )


def test_abstract_plugin_names_itself(site: FakeSite) -> None:
    site.module(
        "halfdone",
        """
        from carsearch.models.base import ModelPlugin

        class Model(ModelPlugin):
            def search_space(self, trial):
                return {}
        """,
    )
    site.dist("carsearch-halfdone", "0.1", "carsearch.models", half="halfdone:Model")
    with pytest.raises(PluginError, match=r"plugin 'half' .* cannot be instantiated: TypeError"):
        plugins.load("models", "half")


def test_two_packages_with_one_name_are_an_error(site: FakeSite) -> None:
    site.module("first", MODEL_SOURCE)
    site.module("second", MODEL_SOURCE)
    site.dist("pkg-one", "1.0", "carsearch.models", twin="first:Model", solo="first:Model")
    site.dist("pkg-two", "2.0", "carsearch.models", twin="second:Model")

    with pytest.raises(PluginError) as caught:
        plugins.load("models", "twin")
    assert str(caught.value) == (
        "two plugins named 'twin' in entry-point group 'carsearch.models': "
        "first:Model (from pkg-one 1.0) and second:Model (from pkg-two 2.0); "
        "uninstall one of them"
    )
    # Only the doubled name is unusable; the listing still shows both entries.
    assert isinstance(plugins.load("models", "solo"), ModelPlugin)
    twins = [info for info in plugins.entries("models") if info.name == "twin"]
    assert [info.package for info in twins] == ["pkg-one", "pkg-two"]
    assert all("two plugins named 'twin'" in str(plugins.check_loads(info)) for info in twins)


def test_one_package_seen_twice_is_one_plugin(site: FakeSite) -> None:
    site.module("again", MODEL_SOURCE)
    site.dist("pkg-again", "1.0", "carsearch.models", again="again:Model")
    site.dists.append(site.dists[0])  # the same distribution on two sys.path entries
    assert isinstance(plugins.load("models", "again"), ModelPlugin)


def test_describe_an_unknown_plugin() -> None:
    assert plugins.describe("models", "gone") == {"name": "gone", "package": "?", "version": "?"}


def test_check_selection_records_names_and_versions() -> None:
    config = RunConfig(optimizers=("adam",), embedding_rules=("fastai", "textbook"))
    record = plugins.check_selection(config)
    version = metadata.version("carsearch")
    assert record["embedding_rules"] == [
        {"name": "fastai", "package": "carsearch", "version": version},
        {"name": "textbook", "package": "carsearch", "version": version},
    ]
    assert [entry["name"] for entry in record["datasets"]] == ["car_evaluation"]
    assert "datasets" not in plugins.check_selection(config.replace(data="my.csv"))


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"model": "transformer"}, "unknown model 'transformer'; valid names: .*mlp"),
        ({"optimizers": ("adam", "lion")}, "unknown optimizer 'lion'"),
        ({"embedding_rules": ("log",)}, "unknown embedding rule 'log'"),
        ({"dataset": "iris"}, "unknown data set 'iris'"),
    ],
)
def test_check_selection_fails_on_an_unknown_name(option: dict[str, object], message: str) -> None:
    with pytest.raises(PluginError, match=message):
        plugins.check_selection(RunConfig(**option))  # type: ignore[arg-type]


#: A table for the studies these tests open.
TABLE: Table = make_table(make_frame(), "label", source="generated")


def test_open_study_stores_the_plugins_and_warns_when_they_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'studies.db'}")
    config = RunConfig(data="table.csv", optimizers=("adam",), embedding_rules=("fastai",))
    study = open_study(config, storage=storage, name="cars", table=TABLE)
    recorded = study.user_attrs[PLUGINS_ATTR]
    assert recorded == plugins.check_selection(config)
    assert recorded["models"] == [plugins.describe("models", "mlp")]

    monkeypatch.setattr(
        plugins, "describe", lambda kind, name: {"name": name, "package": "p", "version": "9"}
    )
    resumed = open_study(config, storage=storage, name="cars", table=TABLE)
    assert resumed.user_attrs[PLUGINS_ATTR] == recorded  # the creation record is kept
    assert "study 'cars' was made with plugins" in caplog.text


def test_open_study_with_an_unknown_plugin_creates_no_study(tmp_path: Path) -> None:
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'studies.db'}")
    with pytest.raises(PluginError, match="unknown model 'nope'"):
        open_study(RunConfig(model="nope"), storage=storage, name="cars", table=TABLE)
    assert storage.get_all_studies() == []


def test_plugins_command_lists_every_group(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if not line.startswith(" ")] == list(
        plugins.GROUPS.values()
    )
    version = metadata.version("carsearch")
    assert re.search(
        rf"^  mlp +carsearch {version} +carsearch.models.mlp:EmbeddingMLPPlugin +found$", out, re.M
    )
    assert main(["plugins", "--check"]) == 0
    assert re.search(r"^  mlp +.*EmbeddingMLPPlugin +loads$", capsys.readouterr().out, re.M)


def test_plugins_command_shows_what_fails_and_exits_1(
    site: FakeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    site.module("fine", MODEL_SOURCE)
    site.dist("carsearch-mixed", "0.2", "carsearch.models", good="fine:Model", bad="gone:Model")
    assert main(["plugins"]) == 1  # the missing module is found missing without importing
    assert (
        "FAILS: plugin 'bad' (gone:Model, from carsearch-mixed 0.2) is not importable: no "
        "module named 'gone'" in capsys.readouterr().out
    )
    assert main(["plugins", "--check"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == [
        "carsearch.models",
        "  bad   carsearch-mixed 0.2  gone:Model  FAILS: plugin 'bad' (gone:Model, from "
        "carsearch-mixed 0.2) failed to import: ModuleNotFoundError: No module named 'gone'",
        "  good  carsearch-mixed 0.2  fine:Model  loads",
    ]
    assert lines[3:5] == ["carsearch.embedding_rules", "  (none installed)"]


def test_plugins_command_json(site: FakeSite, capsys: pytest.CaptureFixture[str]) -> None:
    site.module("fine", MODEL_SOURCE)
    site.dist("carsearch-fine", "1.0", "carsearch.models", good="fine:Model")
    assert main(["plugins", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows == [
        {
            "kind": "models",
            "name": "good",
            "value": "fine:Model",
            "package": "carsearch-fine",
            "version": "1.0",
            "group": "carsearch.models",
            "error": None,
        }
    ]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--model", "nope"], "error: unknown model 'nope'; valid names: "),
        (["--optimizers", "adam,lion"], "error: unknown optimizer 'lion'; valid names: "),
        (["--embedding-rules", "fastai,log"], "error: unknown embedding rule 'log'"),
        (["--dataset", "iris"], "error: unknown data set 'iris'"),
    ],
)
def test_run_rejects_an_unknown_plugin_before_reading_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    database = tmp_path / "studies.db"
    data = [] if "--dataset" in flags else ["--data", str(tmp_path / "not-there.csv")]
    assert main(["run", *data, "--storage", f"sqlite:///{database}", *flags]) == 1
    assert capsys.readouterr().err.startswith(message)
    assert not database.exists()


def test_run_option_parses_comma_separated_names() -> None:
    args = build_parser().parse_args(
        ["run", "--optimizers", " adam, sgd ", "--embedding-rules", "fixed", "--model", "mlp"]
    )
    assert (args.optimizers, args.embedding_rules, args.model) == (
        ("adam", "sgd"),
        ("fixed",),
        "mlp",
    )
