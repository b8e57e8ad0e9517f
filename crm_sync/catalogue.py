"""The versioned event catalogue: one JSON Schema per (event type, version), in
``crm_sync/schemas/<type>.v<n>.json``; ``common.v1.json`` holds the shared definitions
(contact, task, campaign). A new incompatible shape gets a new version file; additive
fields do not (the schemas allow extra properties)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from crm_sync.errors import InvalidEvent, UnknownEventType

_NAME = re.compile(r"^(?P<type>[a-z_]+\.[a-z_]+)\.v(?P<version>\d+)\.json$")


@dataclass(frozen=True)
class EventSchema:
    event_type: str
    version: int
    schema: dict[str, Any]

    @property
    def title(self) -> str:
        return str(self.schema.get("title", ""))


@dataclass(frozen=True)
class Catalogue:
    schemas: dict[tuple[str, int], EventSchema]
    registry: Registry

    def types(self) -> list[str]:
        return sorted({t for t, _v in self.schemas})

    def get(self, event_type: str, version: int = 1) -> EventSchema:
        try:
            return self.schemas[(event_type, version)]
        except KeyError:
            raise UnknownEventType(f"no schema for {event_type!r} version {version}") from None

    def validate(self, event_type: str, data: Any, version: int = 1) -> None:
        """Raise :class:`InvalidEvent` naming every violation, or UnknownEventType."""
        schema = self.get(event_type, version).schema
        validator = Draft202012Validator(schema, registry=self.registry,
                                         format_checker=Draft202012Validator.FORMAT_CHECKER)
        errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
        if errors:
            problems = ["/".join(str(p) for p in e.absolute_path) + ": " + e.message for e in errors]
            raise InvalidEvent(f"{event_type} v{version}: " + "; ".join(problems))

    def to_json(self) -> list[dict[str, Any]]:
        return [{"type": s.event_type, "version": s.version, "title": s.title, "schema": s.schema}
                for _key, s in sorted(self.schemas.items())]


@cache
def load() -> Catalogue:
    """Read every schema shipped with the package (once per process)."""
    schemas: dict[tuple[str, int], EventSchema] = {}
    resources_: list[tuple[str, Resource]] = []
    for entry in resources.files("crm_sync").joinpath("schemas").iterdir():
        if not entry.name.endswith(".json"):
            continue
        schema = json.loads(entry.read_text())
        Draft202012Validator.check_schema(schema)
        resources_.append((schema["$id"], Resource.from_contents(schema)))
        match = _NAME.match(entry.name)
        if match:
            key = (match["type"], int(match["version"]))
            schemas[key] = EventSchema(key[0], key[1], schema)
    return Catalogue(schemas, Registry().with_resources(resources_))


def validate(event_type: str, data: Any, version: int = 1) -> None:
    """Validate one event's data against the catalogue."""
    load().validate(event_type, data, version)
