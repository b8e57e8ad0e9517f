-- Predictive dialer: campaigns, their leads, every attempt (one row per originate, keyed by
-- the attempt id the originate carries), refusals by the compliance gate, and per-number
-- facts the regulations need (last abandoned call, last answering-machine verdict).

CREATE TABLE dialer_campaigns (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL,
    mode         text NOT NULL CHECK (mode IN ('preview', 'progressive', 'predictive', 'power', 'agentless')),
    state        text NOT NULL DEFAULT 'draft'
                 CHECK (state IN ('draft', 'running', 'paused', 'stopped', 'finished')),
    settings     jsonb NOT NULL,
    -- Fencing: the highest lease token granted. Whoever wins the Redis lease raises it, and
    -- every write of the dialing loop checks it under a row lock, so a leader whose lease
    -- expired (paused process, partition) can neither dial nor record once another took over.
    lease_token  bigint NOT NULL DEFAULT 0,
    lease_holder text,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    started_at   timestamptz,
    ended_at     timestamptz
);
CREATE INDEX dialer_campaigns_active ON dialer_campaigns (state) WHERE state IN ('running', 'paused');

CREATE TABLE dialer_leads (
    id                bigserial PRIMARY KEY,
    campaign_id       bigint NOT NULL REFERENCES dialer_campaigns (id) ON DELETE CASCADE,
    contact_id        bigint NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    phone             text NOT NULL,
    source            text NOT NULL,          -- segment, task, contact, callback
    task_id           bigint,                 -- the cadence task this lead works
    priority          integer NOT NULL DEFAULT 0,
    state             text NOT NULL DEFAULT 'ready' CHECK (state IN ('ready', 'dialing', 'done')),
    next_at           timestamptz NOT NULL,   -- not dialed before
    approved_by       text,                   -- preview mode: the agent who chose to dial it
    attempts          integer NOT NULL DEFAULT 0,
    attempts_day      integer NOT NULL DEFAULT 0,
    attempts_day_date date,                   -- the callee's local day attempts_day counts
    last_disposition  text,
    final_disposition text,
    final_reason      text,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    UNIQUE (campaign_id, contact_id)
);
CREATE INDEX dialer_leads_hopper ON dialer_leads (campaign_id, priority DESC, next_at, id) WHERE state = 'ready';
CREATE INDEX dialer_leads_state ON dialer_leads (campaign_id, state);

CREATE TABLE dialer_attempts (
    id            text PRIMARY KEY,           -- the attempt id: ActionID and CALLCYCLE_ATTEMPT_ID
    campaign_id   bigint NOT NULL REFERENCES dialer_campaigns (id) ON DELETE CASCADE,
    lead_id       bigint NOT NULL REFERENCES dialer_leads (id) ON DELETE CASCADE,
    contact_id    bigint NOT NULL,
    phone         text NOT NULL,
    lease_token   bigint NOT NULL,            -- the token of the leader that dialed it
    holder        text NOT NULL,
    state         text NOT NULL,
    disposition   text,
    allowed_by    jsonb NOT NULL,             -- the compliance gate's record: rule versions, values
    dial_string   text NOT NULL,
    linkedid      text,
    agent         text,
    amd_result    text,
    digits        text,
    safe_harbour  text,
    detail        jsonb NOT NULL DEFAULT '{}',
    call_id       bigint,                     -- the lifecycle call record
    created_at    timestamptz NOT NULL,
    dialed_at     timestamptz,
    answered_at   timestamptz,
    connected_at  timestamptz,
    ended_at      timestamptz,
    ring_seconds  integer NOT NULL DEFAULT 0,
    talk_seconds  integer NOT NULL DEFAULT 0
);
-- One live call per number, whatever the campaign: never ring a person twice at once.
CREATE UNIQUE INDEX dialer_attempts_live_phone ON dialer_attempts (phone) WHERE ended_at IS NULL;
CREATE INDEX dialer_attempts_live ON dialer_attempts (campaign_id) WHERE ended_at IS NULL;
CREATE INDEX dialer_attempts_campaign ON dialer_attempts (campaign_id, created_at);
CREATE INDEX dialer_attempts_lead ON dialer_attempts (lead_id);

-- Dials the gate refused, and why (the same record shape as allowed_by).
CREATE TABLE dialer_refusals (
    id          bigserial PRIMARY KEY,
    campaign_id bigint NOT NULL REFERENCES dialer_campaigns (id) ON DELETE CASCADE,
    lead_id     bigint NOT NULL REFERENCES dialer_leads (id) ON DELETE CASCADE,
    phone       text NOT NULL,
    rule        text NOT NULL,
    retry_at    timestamptz,
    record      jsonb NOT NULL,
    at          timestamptz NOT NULL
);
CREATE INDEX dialer_refusals_campaign ON dialer_refusals (campaign_id, at);

-- Per-number facts across campaigns (Ofcom: 72 h after an abandoned call; a number an
-- answering machine answered is not called again the same day without a guaranteed agent).
CREATE TABLE dialer_numbers (
    phone             text PRIMARY KEY,
    last_abandoned_at timestamptz,
    machine_at        timestamptz,
    updated_at        timestamptz NOT NULL
);
