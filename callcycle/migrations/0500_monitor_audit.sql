-- monitor: every supervisor action (listen, whisper, barge, hang up, pause an agent,
-- pause/resume a campaign), who did it, on what, when, and how it ended. Append-only.
CREATE TABLE monitor_audit (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    subject      text NOT NULL,              -- the token's subject
    role         text NOT NULL,
    action       text NOT NULL,              -- listen | whisper | barge | hangup | agent_pause | ...
    target_kind  text NOT NULL,              -- call | agent | campaign
    target_id    text NOT NULL,
    detail       jsonb NOT NULL DEFAULT '{}',
    outcome      text NOT NULL CHECK (outcome IN ('ok', 'failed')),
    error        text,
    instance     text NOT NULL
);
CREATE INDEX monitor_audit_time ON monitor_audit (at DESC, id DESC);
CREATE INDEX monitor_audit_target ON monitor_audit (target_kind, target_id, id);
