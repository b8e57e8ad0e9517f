-- Lifecycle records: contacts and their phones, stage history, calls, follow-up tasks,
-- purchases, complaints, the do-not-call list and the inbound CRM events already seen.

CREATE TABLE contacts (
    id           bigserial PRIMARY KEY,
    external_id  text UNIQUE,
    name         text,
    country      text,
    -- Candidate IANA zones of the number (several for e.g. US numbers that moved); the
    -- dialer calls only when it is daytime in all of them. Overridable by the API.
    time_zones   text[] NOT NULL DEFAULT '{}',
    attributes   jsonb NOT NULL DEFAULT '{}',
    stage        text NOT NULL DEFAULT 'acquisition',
    score        integer NOT NULL DEFAULT 0,
    score_at     timestamptz,
    tags         text[] NOT NULL DEFAULT '{}',
    owner_agent  text,
    claimed_at   timestamptz,
    last_touch_at timestamptz,
    consent      boolean NOT NULL DEFAULT true,
    do_not_call  boolean NOT NULL DEFAULT false,
    renewal_date date,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX contacts_stage_score ON contacts (stage, score DESC);
CREATE INDEX contacts_tags ON contacts USING gin (tags);
CREATE INDEX contacts_owner ON contacts (owner_agent, claimed_at) WHERE owner_agent IS NOT NULL;

-- A phone number belongs to at most one contact (E.164, so one spelling per number).
CREATE TABLE contact_phones (
    phone      text PRIMARY KEY,
    contact_id bigint NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    position   integer NOT NULL DEFAULT 0
);
CREATE INDEX contact_phones_contact ON contact_phones (contact_id, position);

CREATE TABLE stage_history (
    id         bigserial PRIMARY KEY,
    contact_id bigint NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    from_stage text,            -- NULL: the contact was created in to_stage
    to_stage   text NOT NULL,
    reason     text NOT NULL,
    cause      text NOT NULL,   -- "api", "call:17", "crm:stage_changed", "rule:qualified"
    at         timestamptz NOT NULL
);
CREATE INDEX stage_history_contact ON stage_history (contact_id, at);
CREATE INDEX stage_history_at ON stage_history (at, to_stage);

CREATE TABLE calls (
    id           bigserial PRIMARY KEY,
    contact_id   bigint NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    stage        text NOT NULL,  -- the contact's stage when the call was made (KPIs)
    direction    text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    campaign_id  text,
    attempt_id   text,
    disposition  text NOT NULL,
    intent       text,
    digits       text,
    ivr_path     text[] NOT NULL DEFAULT '{}',
    satisfaction smallint CHECK (satisfaction BETWEEN 1 AND 5),
    talk_seconds integer NOT NULL DEFAULT 0,
    ring_seconds integer NOT NULL DEFAULT 0,
    agent        text,
    started_at   timestamptz NOT NULL,
    ended_at     timestamptz NOT NULL
);
CREATE INDEX calls_contact ON calls (contact_id, started_at);
CREATE INDEX calls_started ON calls (started_at, stage);

CREATE TABLE tasks (
    id           bigserial PRIMARY KEY,
    contact_id   bigint NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    kind         text NOT NULL,
    not_before   timestamptz NOT NULL,  -- workable from
    due_at       timestamptz NOT NULL,  -- to be done by
    reason       text NOT NULL,
    rule         text NOT NULL,         -- the cadence that created it
    state        text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'done', 'cancelled')),
    due_emitted  boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL,
    closed_at    timestamptz,
    -- A cadence fired twice for the same moment creates its task once.
    UNIQUE (contact_id, rule, due_at)
);
CREATE INDEX tasks_open_due ON tasks (not_before, due_at) WHERE state = 'open';

CREATE TABLE purchases (
    id           bigserial PRIMARY KEY,
    contact_id   bigint NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    external_ref text,
    amount       numeric(14, 2),
    purchased_at timestamptz NOT NULL,
    renewal_date date
);
CREATE INDEX purchases_contact ON purchases (contact_id, purchased_at);

CREATE TABLE complaints (
    id           bigserial PRIMARY KEY,
    contact_id   bigint NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    external_ref text,
    opened_at    timestamptz NOT NULL,
    resolved_at  timestamptz
);
CREATE INDEX complaints_open ON complaints (contact_id) WHERE resolved_at IS NULL;

CREATE TABLE dnc_numbers (
    phone    text PRIMARY KEY,
    source   text NOT NULL,
    added_at timestamptz NOT NULL
);

-- Inbound CRM webhooks already processed, by webhook-id (Standard Webhooks idempotency).
CREATE TABLE crm_inbound_events (
    webhook_id  text PRIMARY KEY,
    event_type  text NOT NULL,
    received_at timestamptz NOT NULL
);
