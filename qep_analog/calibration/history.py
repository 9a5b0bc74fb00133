"""The per-device calibration history: JSON lines under a schema header, appended atomically.

File ``DIR/<device>.jsonl``: first line ``{"schema": "qep-calibration-history/2", "device": NAME}``,
then one :class:`CalibrationRecord` per line, each a ``qep-calibration-record/2`` document (its own
``schema`` key). Files begun under ``qep-calibration-history/1`` are read as they are: their lines
without a ``schema`` key are version-1 records (no step), and records appended to them now are
version 2, each saying so; the file is never rewritten. A header or a line of a newer version than
this reader knows refuses the whole file in one line naming it and the version (a history half read
would put an older calibration in force). Writers take an exclusive ``fcntl.flock`` on
``DIR/<device>.jsonl.lock``, write each batch of lines with a single ``os.write`` on an ``O_APPEND``
descriptor and ``fsync`` it. A writer killed mid-write can leave at most one torn last line, a line
cut short (a prefix of a record): the next writer starts a fresh line after it, and readers skip it
and report it in ``HistoryRead.torn``. Any other line that is not a record (a damaged file: changed
bytes, an edited line) is skipped too and reported, with its number and why, in
``HistoryRead.damaged``; every valid record is read, and nothing is rewritten.

The directory is ``--history DIR`` on the command line, else ``$QEP_ANALOG_HISTORY``, else the
per-user data directory ``$XDG_DATA_HOME/qep-analog/history`` (``~/.local/share/qep-analog/history``).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from qep_analog.calibration.records import CalibrationRecord
from qep_analog.calibration.versions import NewerSchemaError, schema_version
from qep_analog.errors import CalibrationError, StorageError
from qep_analog.storage import parse_json_text, read_input_bytes

HISTORY_FAMILY = "qep-calibration-history"
HISTORY_VERSION = 2
SCHEMA = f"{HISTORY_FAMILY}/{HISTORY_VERSION}"
HISTORY_VARIABLE = "QEP_ANALOG_HISTORY"
PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def history_directory(explicit: str | Path | None = None) -> Path:
    """``explicit`` if given, else ``$QEP_ANALOG_HISTORY``, else the per-user data directory."""
    if explicit is not None:
        directory, how = Path(explicit), "--history"
    elif os.environ.get(HISTORY_VARIABLE):
        directory, how = Path(os.environ[HISTORY_VARIABLE]), f"${HISTORY_VARIABLE}"
    else:
        data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        directory, how = Path(data_home) / "qep-analog" / "history", "the per-user data folder"
    if directory.exists() and not directory.is_dir():
        raise CalibrationError(f"calibration history folder {directory} ({how}) is a file, not a folder")
    return directory


@dataclass(frozen=True)
class DamagedLine:
    """A line of a history that is not a record and not a write cut short: its 1-based number, why."""

    number: int
    reason: str


@dataclass(frozen=True)
class HistoryRead:
    """The records of a history in file order and the lines that were skipped: ``torn``, the 1-based
    numbers of lines cut short by an interrupted write; ``damaged``, every other line that is not a
    record (corruption), with the reason."""

    records: tuple[CalibrationRecord, ...]
    torn: tuple[int, ...]
    damaged: tuple[DamagedLine, ...] = ()

    def skipped_summary(self, limit: int = 5) -> str:
        """One line naming the skipped lines (at most ``limit`` of each kind), or ``""``."""
        parts = []
        if self.torn:
            parts.append(f"torn (a write cut short) line(s) {_first(map(str, self.torn), limit)}")
        if self.damaged:
            shown = (f"{d.number} ({d.reason})" for d in self.damaged)
            parts.append(f"damaged line(s) {_first(shown, limit)}")
        return "; ".join(parts)


def _first(items: Iterable[str], limit: int) -> str:
    shown = list(items)
    return ", ".join(shown[:limit]) + (f", … ({len(shown) - limit} more)" if len(shown) > limit else "")


#: a record cut short ends within this many characters of the point where JSON parsing fails
#: (a literal such as ``false`` or a number's exponent cut in the middle)
_CUT_TOKEN = 5


def _line_fault(line: bytes) -> tuple[bool, str]:
    """Why ``line`` is no record: (True, why) if it is a record cut short (a torn write, which always
    begins like a record and fails only at its end), else (False, why) for a damaged line."""
    if not line.strip():
        return False, "an empty line"
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        cut = exc.reason == "unexpected end of data" and line.startswith(b"{")
        return cut, f"not UTF-8 at byte {exc.start + 1}"
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        at_end = exc.msg.startswith("Unterminated string") or len(text) - exc.pos <= _CUT_TOKEN
        return text.startswith("{") and at_end, f"not valid JSON: {exc.msg} at column {exc.colno}"
    except ValueError as exc:  # e.g. an integer beyond Python's digit limit
        return False, f"not valid JSON: {str(exc).splitlines()[0][:80]}"
    except RecursionError:
        return False, "nested too deeply"
    return False, "not valid JSON, or beyond the reader's bounds (nesting, NaN)"


class CalibrationHistory:
    """The calibration history of one device, in ``directory``."""

    def __init__(self, directory: str | Path, device: str) -> None:
        if not PLAIN_NAME.match(device):
            raise CalibrationError(f"calibration history: device name {device!r} is not a plain name")
        self.device = device
        self.path = Path(directory) / f"{device}.jsonl"
        self.lock_path = Path(directory) / f"{device}.jsonl.lock"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def append(self, records: Sequence[CalibrationRecord]) -> None:
        """Append ``records`` (all of this device) as one write under the lock."""
        for record in records:
            if record.device != self.device:
                raise CalibrationError(
                    f"calibration history {self.device!r}: record of device {record.device!r}"
                )
        lines = [json.dumps(r.to_document(), allow_nan=False, ensure_ascii=False) for r in records]
        if not lines:
            return
        with self._locked():
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            try:
                size = os.fstat(fd).st_size
                prefix = ""
                if size == 0:
                    prefix = json.dumps({"schema": SCHEMA, "device": self.device}) + "\n"
                else:
                    self._check_header(self._first_line())  # not into a newer version's file
                if size and not self._ends_with_newline(size):
                    prefix = "\n"  # a writer died mid-line: start a fresh line after its torn one
                payload = (prefix + "\n".join(lines) + "\n").encode("utf-8")
                written = os.write(fd, payload)
                if written != len(payload):
                    raise CalibrationError(
                        f"calibration history {self.path}: wrote {written} of {len(payload)} bytes"
                    )
                os.fsync(fd)
            finally:
                os.close(fd)

    def _first_line(self) -> bytes:
        with open(self.path, "rb") as handle:
            return handle.readline(1 << 16).rstrip(b"\n")

    def _check_header(self, line: bytes) -> int:
        """The version of the header ``line`` of this device's history, else a one-line error (a
        newer version's: :class:`NewerSchemaError`)."""
        try:
            header = self._parse(line, 1)
        except (StorageError, UnicodeDecodeError):
            header = None
        where = f"calibration history {self.path}"
        schema = header.get("schema") if isinstance(header, dict) else None
        if not isinstance(schema, str) or not schema.startswith(f"{HISTORY_FAMILY}/"):
            raise CalibrationError(
                f"{where}: first line is not a {HISTORY_FAMILY} header (schema {schema!r})"
            )
        version = schema_version(schema, HISTORY_FAMILY, HISTORY_VERSION, where)
        assert isinstance(header, dict)  # it has a schema
        if header.get("device") != self.device:
            raise CalibrationError(f"{where}: header names device {header.get('device')!r}")
        return version

    def _ends_with_newline(self, size: int) -> bool:
        with open(self.path, "rb") as handle:
            handle.seek(size - 1)
            return handle.read(1) == b"\n"

    def read(self) -> HistoryRead:
        """All valid records; a line cut short by an interrupted write is skipped and listed in
        ``torn``, any other line that is not a record in ``damaged`` (number and reason)."""
        if not self.path.exists():
            return HistoryRead((), ())
        try:
            raw = read_input_bytes(self.path).split(b"\n")
        except StorageError as exc:
            raise CalibrationError(f"calibration history {exc}") from None
        if raw and raw[-1] == b"":
            raw.pop()
        if not raw:
            return HistoryRead((), ())
        self._check_header(raw[0])
        records: list[CalibrationRecord] = []
        torn: list[int] = []
        damaged: list[DamagedLine] = []
        for number, line in enumerate(raw[1:], start=2):
            try:
                document = self._parse(line, number)
            except (StorageError, UnicodeDecodeError):  # not JSON, or beyond the reader's bounds
                cut, reason = _line_fault(line)
                if cut:
                    torn.append(number)
                else:
                    damaged.append(DamagedLine(number, reason))
                continue
            try:
                records.append(CalibrationRecord.from_document(document))
            except NewerSchemaError as exc:  # the whole file is refused, naming it and the line
                raise NewerSchemaError(f"calibration history {self.path}, line {number}: {exc}") from None
            except CalibrationError as exc:  # JSON, but not a valid record
                damaged.append(DamagedLine(number, f"not a valid record: {exc}"))
        return HistoryRead(tuple(records), tuple(torn), tuple(damaged))

    def _parse(self, line: bytes, number: int) -> object:
        """One line's JSON (nesting bounded: ``json`` recurses; NaN refused), else a StorageError."""
        return parse_json_text(line.decode("utf-8"), f"{self.path}, line {number}")
