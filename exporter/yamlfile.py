"""YAML files read strictly: duplicate keys are problems, errors are one line naming the file.

Kept apart from exporter/config.py so that PyYAML is imported only when a file is read.
"""

from __future__ import annotations

from typing import Any

import yaml

from exporter.config import ConfigError


def yaml_problem(exc: yaml.YAMLError) -> str:
    """One line for a YAML error: what and where (PyYAML's own text spans lines)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is not None:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return problem


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that records duplicate mapping keys (PyYAML keeps the last one silently,
    so a second `nodes:` would drop the first list)."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            try:
                key = self.construct_object(key_node, deep=True)
                hash(key)
            except (TypeError, yaml.YAMLError):
                continue
            if key in seen:
                self.duplicates.append(
                    f"duplicate key {key!r} at line {key_node.start_mark.line + 1} "
                    f"(first at line {seen[key] + 1})")
            else:
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def load(path: str, what: str) -> Any:
    """A YAML file's data; ConfigError naming the file (one line per problem) if it cannot
    be had or has duplicate keys."""
    try:
        with open(path, encoding="utf-8") as fh:
            loader = StrictLoader(fh)
            loader.duplicates = []
            try:
                data = loader.get_single_data()
            finally:
                loader.dispose()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {yaml_problem(exc)}") from exc
    if loader.duplicates:
        raise ConfigError([f"{path}: {d}" for d in loader.duplicates])
    return data or {}
