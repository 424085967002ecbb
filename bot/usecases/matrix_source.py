"""The active matrix: the validated file, recorded as a numbered version in storage."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from matrix_engine.errors import MatrixInvalid, Problem
from matrix_engine.loading import load_matrix_text
from matrix_engine.models import Matrix

if TYPE_CHECKING:  # `sla-bot show` reads a matrix file without loading storage
    from bot.clock import Clock
    from storage.versions import Versions

MAX_FILE_BYTES = 1_000_000


@dataclass(frozen=True)
class ActiveMatrix:
    matrix: Matrix
    version: int
    text: str


def read_matrix_text(path: Path) -> str:
    """A matrix file's text, read without ever holding more than the size limit in memory (a
    symlink to /dev/zero stops there); MatrixInvalid, naming the file, if it is unreadable,
    larger than `MAX_FILE_BYTES` or not UTF-8. A file over the limit is refused, never cut."""
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)
            size = os.fstat(file.fileno()).st_size
    except OSError as exc:
        raise _unreadable(path, f"cannot read the file: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        what = f"{size:,} bytes" if size > MAX_FILE_BYTES else f"more than {MAX_FILE_BYTES:,} bytes"
        raise _unreadable(path, f"the file is {what}; a matrix file is at most {MAX_FILE_BYTES:,}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _unreadable(path, "the file is not UTF-8 text") from None


def _unreadable(path: Path, message: str) -> MatrixInvalid:
    return MatrixInvalid([Problem("", message)], source=str(path))


def read_matrix_file(path: Path) -> tuple[str, Matrix]:
    """Read and validate a matrix file; MatrixInvalid (with file, field and line) if it is not."""
    text = read_matrix_text(path)
    return text, load_matrix_text(text, source=str(path))


class MatrixSource:
    """Holds the matrix in force; a bad file never replaces the last good one."""

    def __init__(self, *, versions: Versions, path: Path, clock: Clock) -> None:
        self._versions = versions
        self._path = path
        self._clock = clock
        self._lock = threading.Lock()
        self._active: ActiveMatrix | None = None

    def load(self, *, by: str = "sla-bot", reason: str = "loaded at start-up") -> ActiveMatrix:
        """Validate the file and make it the active version (a new version only if it changed)."""
        text, matrix = read_matrix_file(self._path)
        version = self._versions.adopt(
            text=text, by=by, reason=reason, source=str(self._path), at=self._clock.now()
        )
        with self._lock:
            self._active = ActiveMatrix(matrix, version.version, text)
            return self._active

    def refresh(self) -> ActiveMatrix:
        """Pick up a version adopted by another process (`sla-bot rebaseline`); cheap when unchanged."""
        latest = self._versions.active()
        current = self.active()
        if latest is None or latest.version <= current.version:
            return current
        try:
            matrix = load_matrix_text(latest.text, source=f"version {latest.version}")
        except MatrixInvalid:
            return current  # never replace the last good matrix with a bad one
        fresh = ActiveMatrix(matrix, latest.version, latest.text)
        self.set_active(fresh)
        return fresh

    def active(self) -> ActiveMatrix:
        with self._lock:
            if self._active is None:
                raise RuntimeError("matrix not loaded")
            return self._active

    def set_active(self, active: ActiveMatrix) -> None:
        with self._lock:
            self._active = active
