-- A contact's version, moved by every UPDATE of its row: a writer that read the row without
-- locking it (an IVR session's one-statement commit, lifecycle.writeback.write_back's
-- ``expect``) commits only if the row is still at the version it read. Changes kept in other
-- tables also update the row (a new phone list moves updated_at), so they move it too.
ALTER TABLE contacts ADD COLUMN version bigint NOT NULL DEFAULT 0;

CREATE FUNCTION contacts_next_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := OLD.version + 1;
    RETURN NEW;
END $$;

CREATE TRIGGER contacts_version BEFORE UPDATE ON contacts
    FOR EACH ROW EXECUTE FUNCTION contacts_next_version();

-- Aborts the statement that calls it, with serialization_failure (40001), unless ``ok``: how
-- one unlocked statement undoes all its parts when the row it expected has changed.
CREATE FUNCTION callcycle_expect(ok boolean, what text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF NOT ok THEN
        RAISE EXCEPTION '%', what USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN true;
END $$;
