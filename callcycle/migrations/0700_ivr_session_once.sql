-- A session is recorded once. A commit whose reply was lost (the connection dropped after
-- COMMIT reached the server) is retried, and the retry must find the first record instead of
-- writing a second call, tags and outbox events. One channel runs one session at a time, so
-- the server, the call, the channel and the moment the session began name it.
CREATE UNIQUE INDEX ivr_sessions_once ON ivr_sessions (server, linkedid, channel, started_at);
