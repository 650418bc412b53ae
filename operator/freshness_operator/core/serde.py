"""Dataclasses <-> JSON-ready dicts with camelCase keys (the status' wire form). Pure."""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import UTC, datetime
from enum import Enum
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T")


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def key(f: dataclasses.Field[Any]) -> str:
    """A field's key on the wire: ``metadata["wire"]`` when set (``status.wire``), else camelCase."""
    return str(f.metadata.get("wire") or camel(f.name))


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with seconds precision, as Kubernetes writes timestamps."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def to_dict(obj: Any) -> Any:
    """Serialise dataclasses, enums and datetimes recursively; None fields are left out."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if value is not None:
                out[key(f)] = to_dict(value)
        return out
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, datetime):
        return format_time(obj)
    if isinstance(obj, list | tuple):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_dict(cls: type[T], data: Any) -> T:
    """Build a dataclass from its camelCase dict; unknown keys are ignored, missing ones default."""
    return typing.cast(T, _convert(cls, data))


def _convert(tp: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _convert(inner[0], value) if len(inner) == 1 else value
    if origin is list:
        (item,) = typing.get_args(tp)
        return [_convert(item, v) for v in value] if isinstance(value, list) else []
    if origin is dict:
        _, item = typing.get_args(tp)
        return {k: _convert(item, v) for k, v in value.items()} if isinstance(value, dict) else {}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            return tp()
        hints = _hints(tp)
        kwargs = {f.name: _convert(hints[f.name], value[key(f)]) for f in dataclasses.fields(tp) if key(f) in value}
        return tp(**kwargs)
    if tp is datetime:
        return parse_time(value) if isinstance(value, str) else None
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp(value)
    if tp is float and isinstance(value, int | float):
        return float(value)
    return value
