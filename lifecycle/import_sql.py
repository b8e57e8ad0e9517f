"""Set-based SQL of the bulk import: one batch is COPYed into a temporary staging table,
then matched, checked, inserted/updated and announced to the CRM (outbox rows built with
INSERT ... SELECT) in a handful of statements inside the batch's transaction."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg


COLUMNS = ("row_no", "external_id", "name", "phones", "country", "time_zones", "tags", "attributes", "consent")

_CREATE = """
CREATE TEMP TABLE IF NOT EXISTS import_stage (  -- attributes as JSON text: COPY is binary
    row_no int, external_id text, name text, phones text[], country text, time_zones text[], tags text[],
    attributes text, consent boolean, contact_id bigint, is_new boolean NOT NULL DEFAULT false,
    changed text[], error_field text, error text)"""

_STEPS = [
    # Match: external id first, then the first phone.
    """UPDATE import_stage s SET contact_id = c.id FROM contacts c
       WHERE s.external_id IS NOT NULL AND c.external_id = s.external_id""",
    """UPDATE import_stage s SET contact_id = p.contact_id FROM contact_phones p
       WHERE s.contact_id IS NULL AND p.phone = s.phones[1]""",
    # The same contact twice in one batch: the last row wins, earlier ones are reported.
    """WITH keyed AS (
         SELECT row_no, k, max(row_no) OVER (PARTITION BY k) AS last FROM (
           SELECT row_no, 'x:' || external_id AS k FROM import_stage WHERE external_id IS NOT NULL
           UNION ALL SELECT row_no, 'c:' || contact_id FROM import_stage WHERE contact_id IS NOT NULL
           UNION ALL SELECT row_no, 'p:' || unnest(phones) FROM import_stage) q)
       UPDATE import_stage s SET error_field = 'row', error = 'same contact as row ' || keyed.last || ', which wins'
       FROM keyed WHERE keyed.row_no = s.row_no AND keyed.last > s.row_no""",
    # A number that belongs to another contact, or an external id that would be overwritten.
    """UPDATE import_stage s SET error_field = 'phones', error = 'a number already belongs to another contact'
       FROM contact_phones p WHERE s.error IS NULL AND p.phone = ANY(s.phones)
         AND p.contact_id IS DISTINCT FROM s.contact_id""",
    """UPDATE import_stage s SET error_field = 'external_id',
              error = 'the phone belongs to a contact with another external_id'
       FROM contacts c WHERE s.error IS NULL AND c.id = s.contact_id AND s.external_id IS NOT NULL
         AND c.external_id IS NOT NULL AND c.external_id <> s.external_id""",
    """UPDATE import_stage SET contact_id = nextval(pg_get_serial_sequence('contacts', 'id')), is_new = true
       WHERE contact_id IS NULL AND error IS NULL""",
]

_REF = """jsonb_build_object('id', c.id, 'external_id', c.external_id, 'stage', c.stage, 'phone',
            (SELECT phone FROM contact_phones WHERE contact_id = c.id ORDER BY position, phone LIMIT 1))"""

_UPDATE = [
    # What would change, worked out before anything is written (for contact.updated).
    """UPDATE import_stage s SET changed = array_remove(ARRAY[
         CASE WHEN s.name IS NOT NULL AND s.name IS DISTINCT FROM c.name THEN 'name' END,
         CASE WHEN s.external_id IS NOT NULL AND c.external_id IS NULL THEN 'external_id' END,
         CASE WHEN NOT c.attributes @> s.attributes::jsonb THEN 'attributes' END,
         CASE WHEN NOT c.tags @> s.tags THEN 'tags' END,
         CASE WHEN s.consent IS NOT NULL AND s.consent <> c.consent THEN 'consent' END,
         CASE WHEN EXISTS (SELECT 1 FROM unnest(s.phones) AS n(phone) WHERE NOT EXISTS (
                SELECT 1 FROM contact_phones p WHERE p.phone = n.phone)) THEN 'phones' END], NULL)
       FROM contacts c WHERE c.id = s.contact_id AND NOT s.is_new AND s.error IS NULL""",
    # Imported numbers are added after the contact's own, never replace them.
    """INSERT INTO contact_phones (phone, contact_id, position)
       SELECT n.phone, s.contact_id, 1000 + n.i FROM import_stage s, unnest(s.phones) WITH ORDINALITY AS n(phone, i)
       WHERE cardinality(s.changed) > 0 ON CONFLICT (phone) DO NOTHING""",
    """UPDATE contacts c SET name = COALESCE(s.name, c.name), external_id = COALESCE(c.external_id, s.external_id),
              attributes = c.attributes || s.attributes::jsonb,
              tags = c.tags || ARRAY(SELECT t FROM unnest(s.tags) AS t WHERE t <> ALL (c.tags)),
              consent = COALESCE(s.consent, c.consent), updated_at = $1
       FROM import_stage s WHERE c.id = s.contact_id AND cardinality(s.changed) > 0""",
    f"""INSERT INTO outbox_events (id, event_type, schema_version, ordering_key, payload, occurred_at)
        SELECT gen_random_uuid(), 'contact.updated', 1, 'contact:' || c.id,
               jsonb_build_object('contact', {_REF}, 'changed', to_jsonb(s.changed)), $1
        FROM import_stage s JOIN contacts c ON c.id = s.contact_id
        WHERE cardinality(s.changed) > 0 ORDER BY s.row_no""",
]

_INSERT = [
    """INSERT INTO contacts (id, external_id, name, country, time_zones, attributes, stage, tags, consent,
                             do_not_call, created_at, updated_at)
       SELECT contact_id, external_id, name, country, time_zones, attributes::jsonb, $2, tags, COALESCE(consent, true),
              EXISTS (SELECT 1 FROM dnc_numbers d WHERE d.phone = ANY(s.phones)), $1, $1
       FROM import_stage s WHERE is_new ORDER BY row_no""",
    """INSERT INTO contact_phones (phone, contact_id, position)
       SELECT n.phone, s.contact_id, n.i - 1 FROM import_stage s, unnest(s.phones) WITH ORDINALITY AS n(phone, i)
       WHERE s.is_new""",
    """INSERT INTO stage_history (contact_id, from_stage, to_stage, reason, cause, at)
       SELECT contact_id, NULL, $2, 'created', 'import', $1 FROM import_stage WHERE is_new""",
    f"""INSERT INTO outbox_events (id, event_type, schema_version, ordering_key, payload, occurred_at)
        SELECT gen_random_uuid(), 'contact.created', 1, 'contact:' || c.id,
               jsonb_build_object('contact', {_REF}, 'source', 'import'), $1
        FROM import_stage s JOIN contacts c ON c.id = s.contact_id WHERE s.is_new ORDER BY s.row_no""",
]


def _args(sql: str, *values: Any) -> tuple[Any, ...]:
    """The leading ``values`` a statement uses ($1, $2): asyncpg wants exactly those."""
    used = max((int(n) for n in re.findall(r"\$(\d)", sql)), default=0)
    return values[:used]


async def write_batch(conn: asyncpg.Connection, rows: Sequence[tuple[Any, ...]], initial_stage: str,
                      now: datetime) -> tuple[int, int, list[tuple[int, str, str]]]:
    """Upsert one batch in the caller's transaction: (inserted, updated, [(row, field, reason)])."""
    await conn.execute(_CREATE)
    await conn.execute("TRUNCATE import_stage")
    await conn.copy_records_to_table("import_stage", records=rows, columns=COLUMNS)
    for step in _STEPS:
        await conn.execute(step)
    await conn.execute("ANALYZE import_stage")  # fresh statistics: the planner joins, not loops
    for step in (*_UPDATE, *_INSERT):
        await conn.execute(step, *_args(step, now, initial_stage))
    inserted, changed = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE is_new), count(*) FILTER (WHERE cardinality(changed) > 0) FROM import_stage")
    errors = await conn.fetch("SELECT row_no, error_field, error FROM import_stage WHERE error IS NOT NULL")
    return inserted, changed, [(r["row_no"], r["error_field"], r["error"]) for r in errors]
