-- crm_sync: webhook endpoints, one delivery row per (event, endpoint), every attempt, and
-- dead letters. Delivery states: pending -> in_flight -> delivered | retry_wait | dead
-- (see crm_sync/machine.py). A delivery is due when due_at <= now: for in_flight rows
-- due_at is the end of the claim's lease, so a killed worker's rows are claimed again.
CREATE TABLE webhook_endpoints (
    id                   bigserial PRIMARY KEY,
    url                  text NOT NULL,
    description          text NOT NULL DEFAULT '',
    -- Empty: every event type.
    event_types          text[] NOT NULL DEFAULT '{}',
    state                text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'disabled')),
    disabled_reason      text,
    allow_full_phone     boolean NOT NULL DEFAULT false,
    -- Kept in clear: HMAC needs the key itself. Never returned after create/rotate.
    secret               text NOT NULL,
    previous_secret      text,
    previous_secret_until timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
    id            bigserial PRIMARY KEY,
    event_id      uuid NOT NULL REFERENCES outbox_events (id),
    endpoint_id   bigint NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    -- Copied from the event: deliveries of one key to one endpoint go out in id order.
    ordering_key  text,
    state         text NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'in_flight', 'retry_wait', 'delivered', 'dead')),
    attempts      integer NOT NULL DEFAULT 0,
    -- '-infinity': due at once, whatever clock the workers run on.
    due_at        timestamptz NOT NULL DEFAULT '-infinity',
    -- Set by each claim; a result is recorded only by the holder of the current lease.
    lease         uuid,
    last_status   integer,
    last_error    text,
    replayed      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz
);
-- Claim scan: only unfinished rows, in due order.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (due_at, id)
    WHERE state IN ('pending', 'in_flight', 'retry_wait');
-- "Is an earlier delivery of this key to this endpoint unfinished?" in one index probe.
CREATE INDEX webhook_deliveries_unfinished_key ON webhook_deliveries (endpoint_id, ordering_key, id)
    WHERE state IN ('pending', 'in_flight', 'retry_wait');
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);
-- A queue table: rows churn through states, so vacuum and analyze it much sooner than the
-- defaults (stale statistics during a backlog make the claim plan scan instead of probe).
ALTER TABLE webhook_deliveries SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.01);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);

CREATE TABLE webhook_attempts (
    id             bigserial PRIMARY KEY,
    delivery_id    bigint NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt        integer NOT NULL,
    started_at     timestamptz NOT NULL,
    latency_ms     integer NOT NULL,
    status         integer,
    outcome        text NOT NULL,
    error          text,
    response_body  text
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id);

CREATE TABLE webhook_dead_letters (
    delivery_id  bigint PRIMARY KEY REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    event_id     uuid NOT NULL,
    endpoint_id  bigint NOT NULL,
    attempts     integer NOT NULL,
    last_status  integer,
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_dead_letters_time ON webhook_dead_letters (created_at);

-- Fan-out in the transaction that writes the event: code that calls outbox.enqueue knows
-- nothing of endpoints, and a rolled-back change leaves neither event nor delivery.
CREATE FUNCTION webhook_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_deliveries (event_id, endpoint_id, ordering_key)
    SELECT NEW.id, e.id, NEW.ordering_key
      FROM webhook_endpoints e
     WHERE e.state = 'active'
       AND (cardinality(e.event_types) = 0 OR NEW.event_type = ANY (e.event_types))
     ORDER BY e.id;
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_events_fan_out AFTER INSERT ON outbox_events
    FOR EACH ROW EXECUTE FUNCTION webhook_fan_out();
