"""The merged live view every supervisor sees: the entities of every instance.

Each entity is attributed to the instance that published it last (its *origin*). An
instance's ``full`` announcement replaces everything attributed to it; an instance not
heard of for ``peer_timeout`` seconds is gone and so are its entities. Every change that
is a change (see :func:`monitor.models.same`) gets the next sequence number and goes to
``on_change``, which fans it out to the connected clients. No I/O here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from monitor.models import AUDIT_KEEP, KINDS, OWNED_KINDS, Delta, Entity, same


class Board:
    def __init__(self, on_change: Callable[[int, Delta], None]) -> None:
        self.entities: dict[str, dict[str, Entity]] = {kind: {} for kind in KINDS}
        self._origin: dict[tuple[str, str], str] = {}
        self.seq = 0
        self._on_change = on_change

    def get(self, kind: str, eid: str) -> Entity | None:
        return self.entities[kind].get(eid)

    def origin_of(self, kind: str, eid: str) -> str | None:
        return self._origin.get((kind, eid))

    def apply(self, delta: Delta, origin: str) -> bool:
        """Apply one change published by ``origin``; True if clients were told."""
        table = self.entities.get(delta.kind)
        if table is None:
            return False
        key = (delta.kind, delta.id)
        old = table.get(delta.id)
        if delta.data is None:
            # Only the instance the entity belongs to now may remove it: after an ownership
            # hand-over the old owner's late removal must not delete the new owner's entity.
            if old is None or self._origin.get(key, origin) != origin:
                return False
            del table[delta.id]
            self._origin.pop(key, None)
            self._emit(delta)
            return True
        table[delta.id] = delta.data
        if delta.kind in OWNED_KINDS:
            self._origin[key] = origin
        if same(old, delta.data):
            return False
        self._emit(delta)
        if delta.kind == "audit":
            self._trim_audit()
        return True

    def replace_origin(self, origin: str, full: dict[str, dict[str, Entity]]) -> None:
        """``origin`` announced everything it owns: add or update those, drop the rest."""
        for kind in OWNED_KINDS:
            fresh = full.get(kind, {})
            for eid in [e for (k, e), o in self._origin.items() if k == kind and o == origin and e not in fresh]:
                self.apply(Delta(kind, eid, None), origin)
            for eid, data in fresh.items():
                self.apply(Delta(kind, eid, data), origin)

    def forget_origin(self, origin: str) -> int:
        """``origin`` is gone: remove its entities. Returns how many."""
        gone = [key for key, o in self._origin.items() if o == origin]
        for kind, eid in gone:
            self.apply(Delta(kind, eid, None), origin)
        return len(gone)

    def owned_by(self, origin: str) -> dict[str, dict[str, Entity]]:
        out: dict[str, dict[str, Entity]] = {kind: {} for kind in OWNED_KINDS}
        for (kind, eid), o in self._origin.items():
            if o == origin:
                out[kind][eid] = self.entities[kind][eid]
        return out

    def snapshot(self) -> dict[str, Any]:
        return {"seq": self.seq, "entities": {kind: dict(table) for kind, table in self.entities.items()}}

    def _emit(self, delta: Delta) -> None:
        self.seq += 1
        self._on_change(self.seq, delta)

    def _trim_audit(self) -> None:
        table = self.entities["audit"]
        while len(table) > AUDIT_KEEP:
            oldest = min(table, key=lambda k: int(k))
            del table[oldest]
            self._emit(Delta("audit", oldest, None))   # open consoles drop it too
