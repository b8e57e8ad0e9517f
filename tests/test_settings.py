from pathlib import Path

import pytest

from callcycle import settings as settings_mod
from callcycle.settings import SettingsError
from crm_sync.config import CrmSyncSettings


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "callcycle.toml"
    p.write_text(text)
    return p


def test_defaults_then_file_then_environment(tmp_path):
    cfg = write(tmp_path, '[server]\nport = 9000\nlog_level = "debug"\n')
    s = settings_mod.load(cfg, {"CALLCYCLE_SERVER_PORT": "9100", "DATABASE_URL": "postgresql://x/db"})
    assert s.server.port == 9100          # environment beats file
    assert s.server.log_level == "debug"  # file beats defaults
    assert s.server.host == "127.0.0.1"   # defaults
    assert s.database.url == "postgresql://x/db"


def test_several_asterisk_servers_with_secrets_from_environment(tmp_path):
    cfg = write(tmp_path, """
[asterisk]
default = "east"
[asterisk.servers.east]
host = "10.0.0.1"
[asterisk.servers.west]
host = "10.0.0.2"
port = 5039
""")
    s = settings_mod.load(cfg, {"CALLCYCLE_AMI_SECRET": "east-secret",
                                "CALLCYCLE_ASTERISK_WEST_SECRET": "west-secret",
                                "CALLCYCLE_ASTERISK_WEST_HOST": "10.0.0.3"})
    assert set(s.asterisk.servers) == {"main", "east", "west"}
    assert s.asterisk.default_server.name == "east"
    assert s.asterisk.default_server.secret == "east-secret"
    assert s.asterisk.servers["west"].secret == "west-secret"
    assert s.asterisk.servers["west"].host == "10.0.0.3"
    assert s.asterisk.servers["west"].port == 5039
    assert "secret" not in repr(s.asterisk.servers["west"]).replace("secret=", "")


def test_a_secret_in_a_file_is_refused(tmp_path):
    cfg = write(tmp_path, '[asterisk.servers.main]\nsecret = "oops"\n')
    with pytest.raises(SettingsError, match="asterisk.servers.main.secret is a secret"):
        settings_mod.load(cfg, {})


def test_unknown_keys_and_bad_types_are_named(tmp_path):
    with pytest.raises(SettingsError, match=r"\[server\] unknown setting\(s\): prot"):
        settings_mod.load(write(tmp_path, "[server]\nprot = 1\n"), {})
    with pytest.raises(SettingsError, match="server.port must be int"):
        settings_mod.load(write(tmp_path, '[server]\nport = "x"\n'), {})
    with pytest.raises(SettingsError, match="CALLCYCLE_SERVER_PORT='abc' is not a valid int"):
        settings_mod.load(write(tmp_path, ""), {"CALLCYCLE_SERVER_PORT": "abc"})
    with pytest.raises(SettingsError, match="default = 'nope' names no configured server"):
        settings_mod.load(write(tmp_path, '[asterisk]\ndefault = "nope"\n'), {})


def test_api_tokens_from_environment_with_roles(tmp_path):
    s = settings_mod.load(write(tmp_path, ""), {"CALLCYCLE_API_TOKENS": "ann:admin:aaaaaaaaaaaaaaaaaaaa,bob:agent:bbbbbbbbbbbbbbbbbbbb"})
    assert [(t.subject, t.role) for t in s.api_tokens] == [("ann", "admin"), ("bob", "agent")]
    with pytest.raises(SettingsError, match="unknown role 'boss'"):
        settings_mod.load(write(tmp_path, ""), {"CALLCYCLE_API_TOKENS": "x:boss:cccccccccccccccccccc"})
    with pytest.raises(SettingsError, match="shorter than 16"):
        settings_mod.load(write(tmp_path, ""), {"CALLCYCLE_API_TOKENS": "x:admin:short"})


def test_settings_are_frozen(tmp_path):
    s = settings_mod.load(write(tmp_path, ""), {})
    with pytest.raises(AttributeError):
        s.server.port = 1  # type: ignore[misc]


def test_feature_sections_take_environment_overrides_for_keys_no_file_mentions(tmp_path):
    s = settings_mod.load(write(tmp_path, ""), {"CALLCYCLE_LIFECYCLE_HOT_THRESHOLD": "85"})
    from lifecycle.config import LifecycleSettings

    assert s.feature("lifecycle", LifecycleSettings).hot_threshold == 85


def test_environment_numbers_follow_the_field_not_the_files_spelling(tmp_path):
    cfg = write(tmp_path, "[server]\nshutdown_grace = 10\n[asterisk.servers.branch]\nhost = \"10.0.0.5\"\n")
    s = settings_mod.load(cfg, {"CALLCYCLE_SERVER_SHUTDOWN_GRACE": "2.5",
                                "CALLCYCLE_CRM_SYNC_RETRY_SCHEDULE": "0,1,5,30",
                                "CALLCYCLE_ASTERISK_BRANCH_PORT": "5039"})   # a key the table leaves out
    assert s.server.shutdown_grace == 2.5
    assert s.feature("crm_sync", CrmSyncSettings).retry_schedule == (0.0, 1.0, 5.0, 30.0)
    assert s.asterisk.servers["branch"].port == 5039


@pytest.mark.parametrize("text, env, message", [
    ('[database]\nurl = "postgresql://cc:hunter2@db/cc"\n', {}, "database.url holds a password"),
    ("", {"CALLCYCLE_API_TOKENS": "alice:agent:same-token-0123456789,bob:admin:same-token-0123456789"},
     "'alice' and 'bob' have the same token"),
    ("", {"CALLCYCLE_SERVER_LOG_LEVEL": "verbose"}, "server.log_level must be"),
    ('[server]\nlog_format = "xml"\n', {}, "server.log_format must be"),
])
def test_mistakes_that_would_leak_a_secret_or_crash_later_stop_start_up(tmp_path, text, env, message):
    with pytest.raises(SettingsError, match=message):
        settings_mod.load(write(tmp_path, text), env)
