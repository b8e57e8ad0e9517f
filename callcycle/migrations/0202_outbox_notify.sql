-- Wake the delivery workers from the database itself: one NOTIFY per INSERT statement on
-- the outbox, sent when its transaction commits. Writers (crm_sync.outbox.enqueue, the
-- set-based bulk import) no longer spend a round trip of their own on it.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('callcycle_outbox', 'outbox');
    RETURN NULL;
END $$;

CREATE TRIGGER outbox_events_notify AFTER INSERT ON outbox_events
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
