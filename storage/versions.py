"""Matrix versions: every adopted matrix, with who adopted it, when and why
(docs/design.md §7.4)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.backend import Storage
from storage.codec import dumps, from_epoch, to_epoch


@dataclass(frozen=True)
class MatrixVersion:
    version: int
    text: str
    digest: str
    adopted_at: datetime
    adopted_by: str
    reason: str
    source: str


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Versions:
    def __init__(self, store: Storage) -> None:
        self._store = store

    def active(self) -> MatrixVersion | None:
        row = self._store.db.execute(
            "SELECT * FROM matrix_versions ORDER BY version DESC LIMIT 1"
        ).fetchone()
        return self._decode(row) if row else None

    def get(self, version: int) -> MatrixVersion | None:
        row = self._store.db.execute(
            "SELECT * FROM matrix_versions WHERE version = ?", [version]
        ).fetchone()
        return self._decode(row) if row else None

    def all(self) -> list[MatrixVersion]:
        rows = self._store.db.execute("SELECT * FROM matrix_versions ORDER BY version").fetchall()
        return [self._decode(r) for r in rows]

    def adopt(self, *, text: str, by: str, reason: str, source: str, at: datetime) -> MatrixVersion:
        """Make `text` the active matrix unless it already is; returns the active version."""
        with self._store.immediate() as db:
            row = db.execute(
                "SELECT * FROM matrix_versions ORDER BY version DESC LIMIT 1"
            ).fetchone()
            current = self._decode(row) if row else None
            if current is not None and current.digest == digest(text):
                return current
            version = (current.version if current else 0) + 1
            db.table("matrix_versions").insert(
                {
                    "version": version,
                    "text": text,
                    "digest": digest(text),
                    "adopted_at": to_epoch(at),
                    "adopted_by": by,
                    "reason": reason,
                    "source": source,
                }
            )
            db.table("audit").insert(
                {
                    "at": to_epoch(at),
                    "actor": by,
                    "action": "adopt_matrix",
                    "detail": dumps({"version": version, "reason": reason}),
                }
            )
        adopted = self.get(version)
        assert adopted is not None
        return adopted

    @staticmethod
    def _decode(row: tuple[Any, ...]) -> MatrixVersion:
        version, text, dig, adopted_at, by, reason, source = row
        at = from_epoch(float(adopted_at))
        assert at is not None
        return MatrixVersion(
            int(version), str(text), str(dig), at, str(by), str(reason), str(source)
        )
