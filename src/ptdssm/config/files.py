"""Config files: YAML recipes as overlays, dotted ``key=value`` overrides, and the packaged recipes.

**Overlays.** A YAML config may name another as ``base`` (a path relative to the file, or a packaged recipe:
``lra/listops-s4-ptd.yaml`` or ``listops-s4-ptd``) and give only what differs::

    base: listops-s4-ptd.yaml        # the paper's recipe
    model: {name: s4d, layer: {init: null}}

:func:`load_config` reads the chain of bases and deep-merges each file onto its base (mappings merge key by key,
any other value replaces the base's; a ``null`` in ``model.layer`` unsets the base's option). A cycle, or a base
that cannot be found, raises :class:`ptdssm.errors.ConfigError` naming the files.

**Packaged recipes** live under ``ptdssm/configs/<group>/<task>-<model>.yaml``; :func:`find_config` finds the one
for a task and a model, or falls back to the generic ``configs/default.yaml`` with ``data.task`` and ``model.name``
set.
"""

from __future__ import annotations

import contextlib
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from .layer import DEPRECATED_MODEL_KEYS, deferred_layer_values, deprecation, migrate_model_dict
from .schema import Config, config_from_dict, config_to_dict

__all__ = ["apply_overrides", "available_configs", "deep_merge", "default_config_path", "find_config", "load_config",
           "load_recipe", "parse_override", "read_config_dict"]


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``"optim.lr=3e-3"`` into ``("optim.lr", value)``; the value is read as YAML (``[1, 2]``, ``null``...)."""
    if "=" not in text:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def _modernize_key(key: str, value: Any) -> list[tuple[str, Any]]:
    """``model.d_state`` -> ``model.layer.d_state`` (deprecated spelling, with a warning); others unchanged."""
    parts = key.split(".")
    if len(parts) < 2 or parts[0] != "model" or parts[1] not in DEPRECATED_MODEL_KEYS:
        return [(key, value)]
    deprecation(parts[1])
    if parts[1] != "layer_kwargs":
        return [(".".join(["model", "layer", *parts[1:]]), value)]
    if len(parts) > 2:
        return [(".".join(["model", "layer", *parts[2:]]), value)]
    if not isinstance(value, dict):
        raise ConfigError(f"config key 'model.layer_kwargs' must be a mapping, got {value!r}")
    return [(f"model.layer.{k}", v) for k, v in value.items()]


def apply_overrides(cfg: Config, overrides: dict[str, Any] | list[str]) -> Config:
    """Return a new config with dotted-key overrides applied and validated.

    Args:
        cfg: the base config.
        overrides: ``{"optim.lr": 3e-3}`` or a list of ``"key=value"`` strings (as given to ``--set``). Keys inside
            a free mapping (``model.layer.d_state``, ``data.options.n_train``) may be new; ``model.d_state`` (the
            deprecated flat spelling) is read as ``model.layer.d_state`` with a ``DeprecationWarning``.
    """
    if isinstance(overrides, list):
        overrides = dict(parse_override(o) for o in overrides)
    data = config_to_dict(cfg)
    for key0, value0 in overrides.items():
        for key, value in _modernize_key(key0, value0):
            _set_dotted(data, key, value)
    return config_from_dict(data)


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    if len(parts) < 2 or parts[0] not in data:
        raise ConfigError(f"unknown config key '{key}'; keys look like section.name with section one of: "
                          f"{', '.join(data)}")
    node = data[parts[0]]
    for i, p in enumerate(parts[1:-1], start=1):
        if not isinstance(node, dict) or p not in node:
            raise ConfigError(f"unknown config key '{'.'.join(parts[: i + 1])}'")
        if not isinstance(node[p], dict):
            raise ConfigError(f"config key '{'.'.join(parts[: i + 1])}' is not a mapping")
        node = node[p]
    last = parts[-1]
    in_free_dict = len(parts) > 2  # inside e.g. data.options or model.layer: any key is allowed
    if not in_free_dict and last not in node:
        raise ConfigError(f"unknown config key '{key}'; valid keys in '{parts[0]}': {', '.join(node)}")
    node[last] = value


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """``overlay`` merged onto ``base``: mappings merge recursively, any other overlay value replaces the base's."""
    out = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping of sections, got {type(data).__name__}")
    return data


def _find_base(ref: Any, child: Path) -> Path:
    """The file that ``base: ref`` in ``child`` names: relative to ``child``, else a packaged recipe."""
    if not isinstance(ref, str) or not ref.strip():
        raise ConfigError(f"{child}: config key 'base' must name a config file, got {ref!r}")
    root = _config_root()
    candidates = [child.parent / ref, root / ref, root / f"{ref}.yaml"]
    packaged = available_configs()
    stem = ref[:-5] if ref.endswith(".yaml") else ref
    if stem in packaged:
        candidates.append(packaged[stem])
    for path in candidates:
        if path.is_file():
            return path
    raise ConfigError(f"{child}: config key 'base': no config {ref!r} (looked next to the file and among the "
                      f"packaged configs)")


def read_config_dict(path: str | Path) -> dict[str, Any]:
    """The nested dict a YAML config file resolves to: its ``base`` chain merged, flat model keys migrated.

    Raises:
        FileNotFoundError: no such file.
        ConfigError: invalid YAML, a base that does not exist, or a cycle of bases.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    chain: list[Path] = []
    layers: list[dict[str, Any]] = []
    while True:
        resolved = path.resolve()
        if resolved in chain:
            names = " -> ".join(p.name for p in [*chain, resolved])
            raise ConfigError(f"{chain[0]}: config key 'base' makes a cycle: {names}")
        chain.append(resolved)
        data = _read_yaml(path)
        ref = data.pop("base", None)
        try:
            data["model"] = migrate_model_dict(data["model"]) if "model" in data else None
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        if data["model"] is None:
            del data["model"]
        layers.append(data)
        if ref is None:
            break
        path = _find_base(ref, path)
    merged: dict[str, Any] = {}
    for data in reversed(layers):
        merged = deep_merge(merged, data)
    return merged


def load_config(path: str | Path, overrides: dict[str, Any] | list[str] | None = None) -> Config:
    """Read a YAML config file (and its ``base`` chain), validate it, and apply overrides.

    Raises:
        FileNotFoundError: no such file.
        ConfigError: invalid YAML, missing base, cycle, unknown key or bad value (the message names the key and
            the file).
    """
    data = read_config_dict(path)
    try:
        # with overrides coming, the layer is built (values checked) once, for the final config only
        with deferred_layer_values() if overrides else contextlib.nullcontext():
            cfg = config_from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return apply_overrides(cfg, overrides) if overrides else cfg


def _config_root() -> Path:
    return Path(str(resources.files("ptdssm") / "configs"))


def available_configs() -> dict[str, Path]:
    """Packaged recipes by ``"<task>-<model>"`` name (from ``ptdssm/configs/*/*.yaml``)."""
    root = _config_root()
    return {p.stem: p for p in sorted(root.glob("*/*.yaml"))}


def default_config_path() -> Path:
    """The generic recipe (``ptdssm/configs/default.yaml``) used for tasks without a packaged recipe."""
    return _config_root() / "default.yaml"


def find_config(task: str, model: str) -> Path:
    """The recipe file for ``task`` and ``model`` (e.g. ``fashion-mnist``, ``s5-ptd``): the packaged
    ``<task>-<model>.yaml`` if there is one, else the generic ``configs/default.yaml`` (a small CPU-friendly recipe;
    :func:`load_recipe` sets the task and the model on it). Unknown models and tasks raise :class:`ConfigError`.
    """
    from .layer import check_model_name

    check_model_name(model)  # also imports the module of a "module:name" family
    configs = available_configs()
    if f"{task}-{model}" in configs:
        return configs[f"{task}-{model}"]
    if ":" not in task:  # plug-in tasks (module:task) are imported by the task registry when training starts
        from ..data import get_task

        try:
            get_task(task)
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"no packaged config for task {task!r} and model {model!r}, and {exc} "
                              f"(or pass --config FILE)") from None
    return default_config_path()


def load_recipe(task: str, model: str, overrides: dict[str, Any] | list[str] | None = None) -> Config:
    """The config of :func:`find_config`'s recipe with ``data.task = task`` and ``model.name = model`` set (they only
    change the generic recipe), then ``overrides`` (as :func:`load_config`)."""
    if isinstance(overrides, list):
        overrides = dict(parse_override(o) for o in overrides)
    return load_config(find_config(task, model), {"data.task": task, "model.name": model, **(overrides or {})})
