"""Bulk import: good and bad rows, idempotent re-runs, progress, and 100,000 rows."""

import json
import time

from lifecycle.importer import run_import
from tests.conftest import auth

CSV = """external_id,name,phone,tags,attributes,consent,plan
crm-1,Ann,(415) 555-0101,high_intent;vip,"{""needs"": ""payroll""}",yes,gold
crm-2,Bob,not-a-phone,,,,
crm-3,Cy,+1 415 555 0103,,{broken,,
crm-4,Di,+14155550104,,,maybe,
,Ed,+44 20 7946 0000,,,,
crm-1,Ann Again,(415) 555-0101,,,,
crm-6,Flo,,,,,
"""


async def test_a_file_with_good_and_bad_rows_imports_the_good_and_reports_the_bad(client, db_pool):
    resp = await client.post("/contacts/import", data=CSV, headers={**auth("supervisor"), "Content-Type": "text/csv"})
    report = await resp.json()
    assert resp.status == 200, report
    assert [(e["row"], e["field"]) for e in report["errors"]] == [
        (1, "row"), (2, "phones[0]"), (3, "attributes"), (4, "consent"), (7, "phone")]
    assert report["inserted"] == 2 and report["failed"] == 5 and report["total"] == 7
    ann = await db_pool.fetchrow("SELECT id, name, tags, attributes FROM contacts WHERE external_id = 'crm-1'")
    assert ann["name"] == "Ann Again"  # the last row of a contact wins
    events = await db_pool.fetch("SELECT payload FROM outbox_events WHERE event_type = 'contact.created' ORDER BY seq")
    assert [e["payload"]["contact"]["phone"] for e in events] == ["+442079460000", "+14155550101"]
    assert all(e["payload"]["source"] == "import" for e in events)
    # The same file again: nothing new, nothing announced twice.
    again = await (await client.post("/contacts/import", data=CSV,
                                     headers={**auth("crm"), "Content-Type": "text/csv"})).json()
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, 2)
    assert await db_pool.fetchval("SELECT count(*) FROM outbox_events") == 2


async def test_json_import_updates_by_phone_and_announces_what_changed(client, db_pool):
    await client.post("/contacts", json={"phones": ["+14155550101"], "name": "Ann"}, headers=auth("supervisor"))
    rows = [{"phone": "415-555-0101", "external_id": "crm-1", "tags": ["vip"], "attributes": {"plan": "gold"}},
            {"phone": 12345}]
    resp = await client.post("/contacts/import", json=rows, headers={**auth("supervisor"),
                                                                     "Accept": "application/x-ndjson"})
    lines = [json.loads(line) for line in (await resp.text()).splitlines()]
    assert lines[0] == {"done": 2, "total": 2}
    report = lines[-1]["report"]
    assert report["updated"] == 1 and [e["row"] for e in report["errors"]] == [2]
    [ev] = await db_pool.fetch("SELECT payload FROM outbox_events WHERE event_type = 'contact.updated'")
    assert sorted(ev["payload"]["changed"]) == ["attributes", "external_id", "tags"]


async def test_one_hundred_thousand_rows_import_in_batches_with_progress(service, db_pool):
    rows = [{"external_id": f"lead-{i}", "name": f"Lead {i}", "phone": f"+1415{2000000 + i:07d}"}
            for i in range(100_000)]
    seen = []
    started = time.monotonic()
    report = await run_import(service, rows, lambda done, total: seen.append(done))
    elapsed = time.monotonic() - started
    assert report.inserted == 100_000 and report.errors == []
    assert seen[-1] == 100_000 and len(seen) == 100_000 // service.settings.import_batch_size
    assert await db_pool.fetchval("SELECT count(*) FROM outbox_events WHERE event_type = 'contact.created'") == 100_000
    assert elapsed < 30, elapsed


def test_the_cli_imports_a_file_with_a_progress_bar(settings, tmp_path, capsys, monkeypatch):
    from callcycle import cli

    path = tmp_path / "leads.csv"
    path.write_text(CSV)
    monkeypatch.setenv("DATABASE_URL", settings.database.url)
    monkeypatch.setenv("REDIS_URL", settings.redis.url)
    monkeypatch.setenv("CALLCYCLE_SERVER_DATA_DIR", str(tmp_path / "data"))
    status = cli.main(["--config", "config/callcycle.toml", "import", str(path)])
    out, err = capsys.readouterr()
    assert status == 1  # some rows were refused
    assert "7 rows: 2 inserted, 0 updated, 0 unchanged, 5 refused" in out and "row 2: phones[0]:" in out
    assert "100% 7/7 rows" in err
