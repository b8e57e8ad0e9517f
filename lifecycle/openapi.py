"""The OpenAPI 3 document of the lifecycle API and of POST /crm/events, and the request
validation that uses the same schemas (one source of truth: what the document says is what
the handlers accept)."""

from __future__ import annotations

import functools
from datetime import date, datetime
from typing import Any

from jsonschema import Draft202012Validator

from lifecycle.errors import ValidationFailed
from lifecycle.models import Stage

_STR = {"type": "string", "minLength": 1, "maxLength": 200}
_TAGS = {"type": "array", "items": {"type": "string", "pattern": "^[a-z0-9_:.-]{1,64}$"}, "maxItems": 50}
_PHONES = {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 40}, "maxItems": 10}
_CONTACT_FIELDS = {
    "external_id": {"type": ["string", "null"], "minLength": 1, "maxLength": 200},
    "name": {"type": ["string", "null"], "maxLength": 200},
    "phones": _PHONES,
    "country": {"type": ["string", "null"], "pattern": "^[A-Z]{2}$"},
    "time_zones": {"type": "array", "items": _STR, "maxItems": 10},
    "attributes": {"type": "object"},
    "consent": {"type": "boolean"},
    "renewal_date": {"type": ["string", "null"], "format": "date"},
}


def _when(event_type: str, data_schema: dict[str, Any]) -> dict[str, Any]:
    return {"if": {"properties": {"type": {"const": event_type}}},
            "then": {"properties": {"data": {"type": "object", **data_schema}}}}


_REF = {"contact_id": {"type": "integer"}, "external_id": _STR, "phone": _STR}
_ANY_REF = {"anyOf": [{"required": ["contact_id"]}, {"required": ["external_id"]}, {"required": ["phone"]}]}

SCHEMAS: dict[str, dict[str, Any]] = {
    "ContactCreate": {"type": "object", "additionalProperties": False, "required": ["phones"],
                      "properties": {**_CONTACT_FIELDS, "phones": {**_PHONES, "minItems": 1}, "tags": _TAGS}},
    "ContactUpdate": {"type": "object", "additionalProperties": False, "minProperties": 1,
                      "properties": _CONTACT_FIELDS},
    "TagChange": {"type": "object", "additionalProperties": False, "minProperties": 1,
                  "properties": {"add": _TAGS, "remove": _TAGS}},
    "StageChange": {"type": "object", "additionalProperties": False, "required": ["to", "reason"],
                    "properties": {"to": {"enum": [str(s) for s in Stage]}, "reason": _STR}},
    "Claim": {"type": "object", "additionalProperties": False, "properties": {"agent": _STR}},
    "DncAdd": {"type": "object", "additionalProperties": False, "required": ["phone"],
               "properties": {"phone": _STR, "source": _STR}},
    "ImportRow": {"type": "object", "properties": {
        "external_id": {"type": ["string", "null"]}, "name": {"type": ["string", "null"]},
        "phone": {"type": ["string", "null"]}, "phones": {"type": ["array", "string", "null"]},
        "tags": {"type": ["array", "string", "null"]}, "attributes": {"type": ["object", "string", "null"]},
        "consent": {"type": ["boolean", "string", "null"]}}},
    "CrmEvent": {"type": "object", "required": ["type", "data"], "properties": {
        "type": {"enum": ["lead.upserted", "contact.stage_changed", "purchase.recorded", "complaint.opened",
                          "complaint.resolved", "risk.signal", "dnc.added"]},
        "timestamp": {"type": "string"}, "data": {"type": "object"}},
        "allOf": [
            _when("lead.upserted", {"properties": {**_CONTACT_FIELDS, "tags": _TAGS},
                                    "anyOf": [{"required": ["external_id"]}, {"required": ["phones"]}]}),
            _when("contact.stage_changed", {"properties": {**_REF, "stage": {"enum": [str(s) for s in Stage]},
                                                           "reason": _STR}, "required": ["stage"], **_ANY_REF}),
            _when("purchase.recorded", {"properties": {**_REF, "amount": {"type": "number"}, "ref": _STR,
                                                       "purchased_at": {"type": "string", "format": "date-time"},
                                                       "renewal_date": {"type": "string", "format": "date"}},
                                        **_ANY_REF}),
            _when("complaint.opened", {"properties": {**_REF, "ref": _STR}, **_ANY_REF}),
            _when("complaint.resolved", {"properties": {**_REF, "ref": _STR}, **_ANY_REF}),
            _when("risk.signal", {"properties": {**_REF, "kind": _STR}, **_ANY_REF}),
            _when("dnc.added", {"properties": {"phone": _STR}, "required": ["phone"]}),
        ]},
}

_ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}]
_SEARCH = [{"name": n, "in": "query", "schema": sch} for n, sch in [
    ("phone", {"type": "string"}), ("stage", {"enum": [str(s) for s in Stage]}), ("tag", {"type": "string"}),
    ("min_score", {"type": "integer"}), ("max_score", {"type": "integer"}),
    ("limit", {"type": "integer", "minimum": 1, "maximum": 500}), ("offset", {"type": "integer", "minimum": 0})]]
_TASKS = [{"name": n, "in": "query", "schema": sch} for n, sch in [
    ("due", {"type": "boolean", "description": "only open tasks workable now"}), ("kind", {"type": "string"}),
    ("state", {"enum": ["open", "done", "cancelled"]}), ("contact_id", {"type": "integer"}),
    ("limit", {"type": "integer", "minimum": 1, "maximum": 1000})]]
_RANGE = [{"name": n, "in": "query", "required": True, "schema": {"type": "string", "format": "date-time"}}
          for n in ("from", "to")]
_WEBHOOK = [{"name": n, "in": "header", "required": True, "schema": {"type": "string"}}
            for n in ("webhook-id", "webhook-timestamp", "webhook-signature")]

# (method, path, summary, roles, body schema or content types, parameters)
OPERATIONS: list[tuple[str, str, str, tuple[str, ...], Any, list[dict[str, Any]]]] = [
    ("get", "/contacts", "Search contacts", ("supervisor", "agent"), None, _SEARCH),
    ("post", "/contacts", "Create a contact", ("supervisor", "crm"), "ContactCreate", []),
    ("get", "/contacts/{id}", "A contact with its stage history", ("supervisor", "agent"), None, _ID),
    ("patch", "/contacts/{id}", "Change a contact's fields or phones", ("supervisor", "crm"), "ContactUpdate", _ID),
    ("delete", "/contacts/{id}", "Erase a contact", ("supervisor",), None, _ID),
    ("post", "/contacts/{id}/tags", "Add and remove tags", ("supervisor", "agent", "crm"), "TagChange", _ID),
    ("post", "/contacts/{id}/stage", "Change stage (declared transitions only)", ("supervisor", "crm"),
     "StageChange", _ID),
    ("post", "/contacts/{id}/claim", "Claim a lead from the shared pool", ("supervisor", "agent"), "Claim", _ID),
    ("post", "/contacts/import", "Bulk import (CSV or JSON array); upsert by external_id or phone",
     ("supervisor", "crm"), ("text/csv", "application/json"), []),
    ("post", "/dnc", "Add a number to the do-not-call list", ("supervisor", "crm"), "DncAdd", []),
    ("get", "/tasks", "Follow-up tasks, earliest due first", ("supervisor", "agent"), None, _TASKS),
    ("post", "/tasks/{id}/complete", "Mark a task done", ("supervisor", "agent"), None, _ID),
    ("get", "/kpis", "Stage KPIs over a time range", ("supervisor", "agent"), None, _RANGE),
    ("post", "/crm/events", "Inbound CRM event, signed with Standard Webhooks", (), "CrmEvent", _WEBHOOK),
]
_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}, "detail": {}}}


def _operation(method: str, summary: str, roles: tuple[str, ...], body: Any,
               params: list[dict[str, Any]]) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "parameters": params,
                          "responses": {"200": {"description": "OK"},
                                        "4XX": {"description": "error",
                                                "content": {"application/json": {"schema": _ERROR}}}}}
    if roles:
        op["x-roles"] = ["admin", *roles]
    else:
        op["security"] = []  # the Standard Webhooks signature is the authentication
    if isinstance(body, str):
        op["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}}}
    elif isinstance(body, tuple):
        op["requestBody"] = {"required": True, "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/ImportRow"}}}}}
    return op


@functools.cache
def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document served at /openapi.json."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path, summary, roles, body, params in OPERATIONS:
        paths.setdefault(path, {})[method] = _operation(method, summary, roles, body, params)
    return {"openapi": "3.1.0",
            "info": {"title": "callcycle lifecycle API", "version": "1"},
            "components": {"schemas": SCHEMAS,
                           "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearer": []}],
            "paths": paths}


@functools.cache
def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(SCHEMAS[name], format_checker=Draft202012Validator.FORMAT_CHECKER)


def validate(body: Any, schema: str, prefix: str = "") -> dict[str, Any]:
    """``body`` if it matches component ``schema``, else 422 naming the first bad field."""
    errors = sorted(_validator(schema).iter_errors(body), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        path = list(err.absolute_path)
        if err.validator == "required" and isinstance(err.instance, dict):
            # the error sits on the object; name the property that is missing
            path += [next(p for p in err.validator_value if p not in err.instance)]
        raise ValidationFailed(_field(prefix, path), err.message)
    return body


def _field(prefix: str, path: Any) -> str:
    out = prefix
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def aware_time(value: Any, field: str) -> datetime:
    """An ISO 8601 date-time with a UTC offset, or 422 naming ``field`` (jsonschema's
    "date-time" format checks nothing without rfc3339-validator)."""
    try:
        at = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValidationFailed(field, "an ISO 8601 date-time with offset is required") from None
    if at.tzinfo is None:
        raise ValidationFailed(field, "needs a UTC offset")
    return at


def iso_date(value: Any, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValidationFailed(field, "an ISO 8601 date") from None
