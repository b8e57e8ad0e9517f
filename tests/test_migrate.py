import asyncio

import asyncpg
import pytest

from callcycle import migrate
from callcycle.migrate import Migration, MigrationError


async def test_two_instances_starting_together_apply_each_migration_once(db_url):
    extra = [Migration(9001, "probe", "CREATE TABLE probe (id int); INSERT INTO probe VALUES (1);")]
    conns = [await asyncpg.connect(db_url) for _ in range(2)]
    try:
        results = await asyncio.gather(*(migrate.apply(c, migrate.discover() + extra) for c in conns))
        assert sorted(results, key=len) == [[], [9001]]
        assert await conns[0].fetchval("SELECT count(*) FROM probe") == 1
    finally:
        for c in conns:
            await c.close()


@pytest.fixture
async def conn(db_url):
    """A connection of its own (not the pool's: no command timeout)."""
    c = await asyncpg.connect(db_url)
    yield c
    await c.close()


async def test_an_applied_migration_that_changed_stops_start_up(conn):
    edited = [Migration(m.version, m.name, m.sql + "\n-- edited") for m in migrate.discover()]
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await migrate.apply(conn, edited)


async def test_a_migration_longer_than_the_command_timeout_still_applies_and_the_waiter_waits(db_url):
    # the pool's connections have a 60 s command_timeout; a long migration (an index on a big
    # table) or an instance waiting for another's lock must not be cut off by it
    slow = [Migration(9002, "slow", "SELECT pg_sleep(1.5); CREATE TABLE slow_probe (id int);")]
    conns = [await asyncpg.connect(db_url, command_timeout=0.5) for _ in range(2)]
    try:
        results = await asyncio.gather(*(migrate.apply(c, migrate.discover() + slow) for c in conns))
        assert sorted(results, key=len) == [[], [9002]]
    finally:
        for c in conns:
            await c.close()


async def test_the_session_once_index_keeps_the_first_of_sessions_recorded_twice(conn):
    # before 0700 a commit retried after its reply was lost recorded the session again
    once = next(m for m in migrate.discover() if m.name.startswith("ivr_session_once"))
    await conn.execute("DROP INDEX ivr_sessions_once")   # the table as it was before
    insert = """INSERT INTO ivr_sessions (server, linkedid, channel, flow, flow_version, direction, outcome,
                                          last_node, started_at, ended_at)
                VALUES ('main', $1, 'Local/x;1', 'screening', 'v', 'inbound', $2, 'n',
                        '2026-01-05 10:00Z', '2026-01-05 10:01Z')"""
    for linkedid, outcome in (("1.1", "first"), ("1.1", "again"), ("2.1", "other"), ("1.1", "again")):
        await conn.execute(insert, linkedid, outcome)
    await conn.execute(once.sql)
    kept = await conn.fetch("SELECT linkedid, outcome FROM ivr_sessions ORDER BY id")
    assert [tuple(r) for r in kept] == [("1.1", "first"), ("2.1", "other")]
