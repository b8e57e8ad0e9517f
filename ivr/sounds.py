"""Which sound files Asterisk can play: names (``digits/1``) found under the sounds
directory, any format. Read from the file system of the host Asterisk runs on; the sandbox
is a chroot whose Debian links (``sounds/en -> /etc/alternatives/...``) are absolute, so
absolute links are followed inside ``chroot``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def resolve_in_chroot(path: Path, chroot: str) -> Path:
    """``path`` with every symbolic link followed; absolute link targets re-rooted under
    ``chroot`` when one is given (at most 40 links, as the kernel allows)."""
    parts = list(path.parts)
    current = Path(parts[0])
    pending = parts[1:]
    hops = 0
    while pending:
        candidate = current / pending.pop(0)
        if candidate.is_symlink():
            hops += 1
            if hops > 40:
                raise OSError(f"too many symbolic links under {path}")
            target = Path(os.readlink(candidate))
            if target.is_absolute():
                base = Path(chroot) if chroot else Path("/")
                current = base
                pending = list(target.parts[1:]) + pending
            else:
                pending = list(target.parts) + pending
            continue
        current = candidate
    return Path(os.path.normpath(current))


@dataclass(frozen=True)
class SoundCatalogue:
    directory: str
    names: frozenset[str]

    def __contains__(self, name: str) -> bool:
        return name in self.names


def scan(directory: str, chroot: str = "") -> SoundCatalogue:
    """Every sound name under ``directory`` (raises FileNotFoundError when it is missing)."""
    root = resolve_in_chroot(Path(directory), chroot)
    if not root.is_dir():
        raise FileNotFoundError(f"sounds directory {directory} does not exist")
    names: set[str] = set()
    stack = [(root, "")]
    seen: set[Path] = set()
    while stack:
        folder, prefix = stack.pop()
        if folder in seen:
            continue
        seen.add(folder)
        for entry in os.scandir(folder):
            path = Path(entry.path)
            if entry.is_symlink():
                path = resolve_in_chroot(path, chroot)
            if path.is_dir():
                stack.append((path, f"{prefix}{entry.name}/"))
            elif path.is_file():
                stem, dot, _ext = entry.name.rpartition(".")
                names.add(prefix + (stem if dot else entry.name))
    return SoundCatalogue(directory, frozenset(names))
