"""The plug-in routes of the task registry: ``module:name`` and the ``ptdssm.tasks`` entry-point group."""

from __future__ import annotations

import importlib.metadata
import re
import sys
import textwrap

import pytest

from ptdssm.config import DataConfig
from ptdssm.data import available_tasks, build_task, get_task, registry, task_info
from ptdssm.errors import DataError

MODULE = '''
import torch
from ptdssm.data import ArrayDataset, TaskData, TaskInfo, register_task

def info(cfg):
    return TaskInfo(cfg.task, n_classes=2, seq_len=3, d_input=1, description="toy plug-in")

def build(cfg):
    x = torch.arange(12.0).reshape(4, 3, 1)
    ds = ArrayDataset(x, torch.tensor([0, 1, 0, 1]))
    return TaskData(info(cfg), ds, ds, ds)

registered = register_task("{prefix}_registered", info=info, build=build)
register_task("{prefix}:qualified", info=info, build=build)
pair = (info, build)
not_a_task = 42

def register_all():
    register_task("{prefix}_from_callable", info=info, build=build)
'''


@pytest.fixture
def plugin(tmp_path, monkeypatch, request):
    """A module file in tmp_path on sys.path, and a registry copy that the test may change."""
    registry._load()
    monkeypatch.setattr(registry, "_TASKS", dict(registry._TASKS))
    prefix = "plug_" + re.sub(r"\W", "_", request.node.name)
    (tmp_path / f"{prefix}.py").write_text(textwrap.dedent(MODULE.format(prefix=prefix)))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield prefix
    sys.modules.pop(prefix, None)


def test_module_colon_name_routes(plugin):
    m = plugin
    for name in (f"{m}:{m}_registered", f"{m}:registered", f"{m}:qualified", f"{m}:pair"):
        data = build_task(DataConfig(task=name))
        assert data.info.name == name and data.sizes() == {"train": 4, "val": 4, "test": 4}
        assert task_info(DataConfig(task=name)).n_classes == 2
        assert name in available_tasks()
    assert get_task(f"{m}:pair").info is get_task(f"{m}:pair").info  # registered once, then looked up


def test_module_colon_name_errors(plugin):
    m = plugin
    with pytest.raises(DataError, match=rf"task '{m}:not_a_task': module '{m}' .* neither registers"):
        get_task(f"{m}:not_a_task")
    with pytest.raises(DataError, match=r"task 'no_such_module_xyz:t': cannot import module 'no_such_module_xyz'"):
        get_task("no_such_module_xyz:t")
    with pytest.raises(DataError, match=r"expected 'module:name'"):
        get_task(":t")
    with pytest.raises(DataError, match=r"unknown task 'nope'; expected one of: .*'module:name'"):
        get_task("nope")


def test_module_found_in_current_directory(tmp_path, monkeypatch):
    registry._load()
    monkeypatch.setattr(registry, "_TASKS", dict(registry._TASKS))
    (tmp_path / "cwd_plugin_mod.py").write_text(textwrap.dedent(MODULE.format(prefix="cwd")))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    try:
        assert get_task("cwd_plugin_mod:pair").info(DataConfig(task="x")).n_classes == 2
    finally:
        sys.modules.pop("cwd_plugin_mod", None)


def _entry_points(*eps):
    def fake(group=None, **kw):
        assert group == registry.ENTRY_POINT_GROUP
        return [importlib.metadata.EntryPoint(name=n, value=v, group=group) for n, v in eps]

    return fake


def test_entry_points_module_and_callable(plugin, monkeypatch):
    m = plugin
    monkeypatch.setattr(registry, "_loaded", False)
    monkeypatch.setattr(registry.importlib.metadata, "entry_points",
                        _entry_points(("mod", m), ("fn", f"{m}:register_all")))
    names = available_tasks()
    assert f"{m}_registered" in names and f"{m}_from_callable" in names and "ucr" in names
    assert build_task(DataConfig(task=f"{m}_from_callable")).sizes()["train"] == 4


@pytest.mark.parametrize("value, match", [
    ("no_such_plugin_module_xyz", "ModuleNotFoundError"),
    ("{m}:not_a_task", "is neither a module nor a callable"),
    ("{m}:missing_function", "AttributeError"),
])
def test_entry_point_errors_name_the_entry_point(plugin, monkeypatch, value, match):
    monkeypatch.setattr(registry, "_loaded", False)
    monkeypatch.setattr(registry.importlib.metadata, "entry_points", _entry_points(("broken", value.format(m=plugin))))
    with pytest.raises(DataError, match=rf"task plug-in entry point 'broken' = .*failed to load: .*{match}") as e:
        get_task("mnist1d")
    assert "\n" not in str(e.value)
