# Sourced by scripts/run and scripts/test: a virtualenv in .venv with callcycle installed.
# pip's output goes to .venv/install.log and is shown only when the install fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
if ! .venv/bin/pip install --disable-pip-version-check -q -e ".[${CALLCYCLE_EXTRAS:-test}]" >.venv/install.log 2>&1; then
    cat .venv/install.log >&2
    echo "callcycle: installing the Python packages failed (log above)" >&2
    exit 1
fi

# Start the sandbox Asterisk unless told not to; remember whether we started it.
SANDBOX_STARTED_HERE=0
sandbox_up() {
    if [ "${CALLCYCLE_SANDBOX:-on}" = "off" ]; then
        echo "callcycle: CALLCYCLE_SANDBOX=off: not starting the sandbox Asterisk" >&2
        return 1
    fi
    if [ "$(id -u)" != 0 ]; then
        echo "callcycle: the sandbox Asterisk needs root (chroot, mount); not starting it" >&2
        return 1
    fi
    if scripts/asterisk-sandbox status >/dev/null 2>&1; then
        return 0
    fi
    scripts/asterisk-sandbox up || return 1
    SANDBOX_STARTED_HERE=1
}
