"""The merged live view (pure): what open consoles are told."""

from monitor.board import Board
from monitor.models import AUDIT_KEEP, Delta


def test_an_audit_entry_trimmed_from_the_board_is_removed_from_open_consoles_too():
    told: list[Delta] = []
    board = Board(lambda seq, delta: told.append(delta))
    for i in range(1, AUDIT_KEEP + 3):
        board.apply(Delta("audit", str(i), {"id": i, "action": "listen"}), "inst-1")
    assert len(board.entities["audit"]) == AUDIT_KEEP and "1" not in board.entities["audit"]
    removed = [d.id for d in told if d.data is None]
    assert removed == ["1", "2"]
    # a console replaying the deltas ends with exactly the board's entries
    shown: dict[str, dict] = {}
    for d in told:
        if d.data is None:
            shown.pop(d.id, None)
        else:
            shown[d.id] = d.data
    assert shown == board.entities["audit"]
