"""Images stored with messages (schema v6): the bytes once per content in `attachments`, keyed by
their SHA-256, and each message's images in order in `message_attachments`.

The bytes live in the database (one file to back up, move and export; images are bounded by
limits.IMAGE_MAX_BYTES before they get here). A message's rows go with it (ON DELETE CASCADE:
purging a conversation, deleting a branch, truncating); a trigger then drops the bytes no message
refers to any more, inside the same transaction, so deleting frees them.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from typing import Iterable, Sequence

from .. import limits

V6 = (
    """CREATE TABLE attachments (
        sha256 TEXT PRIMARY KEY,
        data BLOB NOT NULL
    )""",
    """CREATE TABLE message_attachments (
        message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        number INTEGER NOT NULL CHECK (number >= 0),
        sha256 TEXT NOT NULL REFERENCES attachments(sha256),
        name TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (message_id, number)
    )""",
    "CREATE INDEX message_attachments_by_hash ON message_attachments (sha256)",
    """CREATE TRIGGER message_attachments_free AFTER DELETE ON message_attachments
        WHEN NOT EXISTS (SELECT 1 FROM message_attachments WHERE sha256 = old.sha256) BEGIN
        DELETE FROM attachments WHERE sha256 = old.sha256;
    END""",
)
TABLES = frozenset({"attachments", "message_attachments"})


@dataclass(frozen=True)
class Attachment:
    """An image kept with a message: the file's bytes as the user gave them, and its name."""

    data: bytes
    name: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.data, (bytes, bytearray)) or not self.data:
            raise ValueError("an attachment needs its bytes")
        if len(self.data) > limits.IMAGE_MAX_BYTES:
            raise ValueError(f"the image {self.name or ''} is {len(self.data):,} bytes; "
                             f"the limit is {limits.IMAGE_MAX_BYTES:,}".replace("image  ", "image "))

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def as_attachment(item) -> Attachment:
    """An Attachment from one, from an object with `data` and `name` (engine.vision.ImageAttachment)
    or from bytes."""
    if isinstance(item, Attachment):
        return item
    if isinstance(item, (bytes, bytearray)):
        return Attachment(bytes(item))
    return Attachment(bytes(item.data), str(getattr(item, "name", "") or ""))


def save(conn: sqlite3.Connection, message_id: int, images: Sequence) -> None:
    """Store `images` as message `message_id`'s (after any it has); the caller owns the transaction."""
    start = conn.execute("SELECT COALESCE(MAX(number), -1) + 1 FROM message_attachments WHERE message_id = ?",
                         (message_id,)).fetchone()[0]
    for number, item in enumerate(images, start):
        image = as_attachment(item)
        digest = image.sha256
        conn.execute("INSERT OR IGNORE INTO attachments (sha256, data) VALUES (?, ?)", (digest, bytes(image.data)))
        conn.execute("INSERT INTO message_attachments (message_id, number, sha256, name) VALUES (?, ?, ?, ?)",
                     (message_id, number, digest, image.name))


def load(conn: sqlite3.Connection, message_ids: Iterable[int]) -> dict[int, list[Attachment]]:
    """{message id: its images in order}, for those of `message_ids` that have any."""
    ids = list(message_ids)
    found: dict[int, list[Attachment]] = {}
    for at in range(0, len(ids), 500):  # SQLite's bound on parameters
        chunk = ids[at:at + 500]
        rows = conn.execute(
            "SELECT m.message_id, m.name, a.data FROM message_attachments m JOIN attachments a USING (sha256) "
            f"WHERE m.message_id IN ({','.join('?' * len(chunk))}) ORDER BY m.message_id, m.number", chunk)
        for message_id, name, data in rows:
            found.setdefault(message_id, []).append(Attachment(bytes(data), name))
    return found


def stored_bytes(conn: sqlite3.Connection) -> int:
    """Bytes of image data held (each distinct image once)."""
    return conn.execute("SELECT COALESCE(SUM(LENGTH(data)), 0) FROM attachments").fetchone()[0]
