-- The transactional outbox: every change the CRM must hear about is written here in the
-- same transaction as the change itself (crm_sync delivers it). The id is the event's
-- idempotency key and becomes the webhook-id on every delivery attempt.
CREATE TABLE outbox_events (
    id             uuid PRIMARY KEY,
    seq            bigserial UNIQUE NOT NULL,
    event_type     text NOT NULL,
    schema_version integer NOT NULL DEFAULT 1,
    -- Events with the same ordering key are delivered in seq order ("contact:42").
    ordering_key   text,
    payload        jsonb NOT NULL,
    occurred_at    timestamptz NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_events_ordering_key_seq ON outbox_events (ordering_key, seq);
CREATE INDEX outbox_events_type_time ON outbox_events (event_type, occurred_at);
