"""What can go wrong talking to Asterisk."""

from __future__ import annotations


class PbxError(Exception):
    error_id = "pbx-error"


class AmiNotConnected(PbxError):
    error_id = "ami-not-connected"


class AmiConnectionLost(PbxError):
    """The connection dropped before the action was answered: it may or may not have run."""

    error_id = "ami-connection-lost"


class AmiAuthError(PbxError):
    error_id = "ami-auth-failed"


class ActionFailed(PbxError):
    """Asterisk answered ``Response: Error`` (the message says why)."""

    error_id = "ami-action-failed"

    def __init__(self, action: str, message: str) -> None:
        super().__init__(f"{action}: {message}")
        self.action = action
        self.message = message


class OriginateOutcomeUnknown(PbxError):
    """The connection dropped after an Originate was sent and before its result came back.
    The library never re-sends it; the caller looks for its attempt id on live channels."""

    error_id = "originate-outcome-unknown"

    def __init__(self, attempt_id: str) -> None:
        super().__init__(f"originate {attempt_id}: connection lost before the result")
        self.attempt_id = attempt_id


class DuplicateOriginate(PbxError):
    error_id = "duplicate-originate"


class UnsafeDialString(PbxError):
    error_id = "unsafe-dial-string"
