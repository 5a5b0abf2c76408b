"""Files the server keeps on disk (SQLite database, secret key, email outbox) are private.

They hold hashed keys, encrypted provider secrets and the encryption key itself, so
nobody but the server's own user may read them: folders are created 0700 and files
0600, whatever the process umask says. An existing folder keeps its mode: it may be a
shared parent such as /tmp that the operator chose, and tightening that would break
other programs.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) readable by this user only."""
    missing = []
    cursor = path
    while not cursor.exists():
        missing.append(cursor)
        if cursor.parent == cursor:
            break
        cursor = cursor.parent
    path.mkdir(parents=True, exist_ok=True)
    # mkdir's mode is masked by the umask; chmod sets it exactly
    for created in missing:
        with contextlib.suppress(FileNotFoundError):
            os.chmod(created, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Make sure ``path`` exists and only this user can read or write it.

    SQLite creates its -wal and -shm files with the database file's mode, so
    creating the database 0600 keeps those private as well.
    """
    private_dir(path.parent)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, FILE_MODE)
    os.close(fd)
    os.chmod(path, FILE_MODE)
    for suffix in ("-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(path.with_name(path.name + suffix), FILE_MODE)
    return path
