-- IVR sessions: one row per call that ran a flow, written when the flow ends, in the same
-- transaction as the call record (lifecycle's calls: disposition = outcome, digits,
-- ivr_path), the tags, the stage change and the outbox events.
CREATE TABLE ivr_sessions (
    id           bigserial PRIMARY KEY,
    -- NULL when the caller's number found no contact (withheld, not a phone number)
    call_id      bigint REFERENCES calls (id) ON DELETE SET NULL,
    contact_id   bigint REFERENCES contacts (id) ON DELETE SET NULL,
    server       text NOT NULL,
    linkedid     text NOT NULL,
    channel      text NOT NULL,
    flow         text NOT NULL,
    flow_version text NOT NULL,          -- sha256 of the flow file the call began with
    direction    text NOT NULL,
    outcome      text NOT NULL,          -- completed, transferred, abandoned_in_ivr, ...
    last_node    text NOT NULL,
    intent       text,
    digits       text NOT NULL DEFAULT '',
    satisfaction smallint,
    transfer_to  text,                   -- queue name or agent dial string
    priority     integer,
    error        text,
    started_at   timestamptz NOT NULL,
    ended_at     timestamptz NOT NULL
);
CREATE INDEX ivr_sessions_linkedid ON ivr_sessions (linkedid);
CREATE INDEX ivr_sessions_contact ON ivr_sessions (contact_id, started_at);
CREATE INDEX ivr_sessions_flow ON ivr_sessions (flow, started_at);

-- Every node visited and every key pressed, in order.
CREATE TABLE ivr_steps (
    session_id bigint NOT NULL REFERENCES ivr_sessions (id) ON DELETE CASCADE,
    seq        integer NOT NULL,
    kind       text NOT NULL,   -- visit | keys | barge | invalid | timeout | refused
    node       text NOT NULL,
    digits     text NOT NULL DEFAULT '',
    at         timestamptz NOT NULL,
    PRIMARY KEY (session_id, seq)
);
