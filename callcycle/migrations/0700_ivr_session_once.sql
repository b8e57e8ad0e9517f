-- A session is recorded once. A commit whose reply was lost (the connection dropped after
-- COMMIT reached the server) is retried, and the retry must find the first record instead of
-- writing a second call, tags and outbox events. One channel runs one session at a time, so
-- the server, the call, the channel and the moment the session began name it.
-- Sessions such retries recorded twice before this: the later copies go (their steps with
-- them); the call records and events they wrote are lifecycle's and stay.
DELETE FROM ivr_sessions later USING ivr_sessions first
 WHERE later.server = first.server AND later.linkedid = first.linkedid AND later.channel = first.channel
   AND later.started_at = first.started_at AND later.id > first.id;
CREATE UNIQUE INDEX ivr_sessions_once ON ivr_sessions (server, linkedid, channel, started_at);
