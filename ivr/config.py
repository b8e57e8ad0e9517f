"""Settings of the ``[ivr]`` section (imports nothing of ours; see callcycle.settings)."""

from __future__ import annotations

from dataclasses import dataclass

SANDBOX_ROOT = "/var/cache/callcycle/asterisk-sid"


@dataclass(frozen=True)
class IvrSettings:
    # Where the flow files (*.yaml) live; relative paths are tried against the working
    # directory, then the source tree (like lifecycle's rules_file).
    flows_dir: str = "flows"
    # Sound files a flow may name are checked against this directory (as seen from this
    # host). Debian links .../sounds/en to /etc/alternatives/...: absolute links inside it
    # are followed under ``sounds_chroot`` (the sandbox is a chroot; "" = none).
    sounds_dir: str = SANDBOX_ROOT + "/usr/share/asterisk/sounds/en"
    sounds_chroot: str = SANDBOX_ROOT
    # false when Asterisk runs on another host and its sounds cannot be listed from here:
    # flows are then checked for everything but the existence of their sound files.
    check_sounds: bool = True
    # Business-hours calendar for `branch` nodes: "mon-fri 09:00-18:00" entries in
    # ``time_zone``; ``holidays`` are closed all day (YYYY-MM-DD).
    business_hours: tuple[str, ...] = ("mon-fri 09:00-18:00",)
    time_zone: str = "UTC"
    holidays: tuple[str, ...] = ()
    # Region for caller numbers written without a country code ("" = lifecycle's default).
    default_region: str = ""
    # Several callcycle deployments on one Asterisk (or test runs on a shared sandbox): an
    # instance drives only the calls whose CALLCYCLE_IVR_OWNER channel variable equals
    # this ("" = calls without one). Within one deployment, leave it empty everywhere.
    owner: str = ""
    # Seconds one AGI command may take beyond its own timeouts before the session gives up.
    command_grace: float = 10.0
    # Seconds a session waits for a lost AMI connection to come back before ending the call.
    reconnect_grace: float = 15.0
