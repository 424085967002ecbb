"""The active matrix: the validated file, recorded as a numbered version in storage."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from bot.clock import Clock
from matrix_engine.errors import MatrixInvalid
from matrix_engine.loading import load_matrix_text
from matrix_engine.models import Matrix
from storage.versions import Versions

MAX_FILE_BYTES = 1_000_000


@dataclass(frozen=True)
class ActiveMatrix:
    matrix: Matrix
    version: int
    text: str


def read_matrix_file(path: Path) -> tuple[str, Matrix]:
    """Read and validate a matrix file; MatrixInvalid (with file, field and line) if it is not."""
    from matrix_engine.errors import Problem

    try:
        raw = path.read_bytes()[: MAX_FILE_BYTES + 1]
    except OSError as exc:
        raise MatrixInvalid(
            [Problem("", f"cannot read the file: {exc.strerror}")], source=str(path)
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MatrixInvalid([Problem("", "the file is not UTF-8 text")], source=str(path)) from None
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
