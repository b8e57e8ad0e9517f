-- The dialer's Redis keys (leases, live figures) carry this database's own namespace, so
-- two deployments sharing one Redis never contend for each other's "campaign 1".
CREATE TABLE dialer_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO dialer_meta (key, value) VALUES ('namespace', gen_random_uuid()::text);
