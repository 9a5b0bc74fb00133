"""Records and the per-device history: round trips, torn and damaged lines, a writer killed mid-write,
two writers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from qep_analog.calibration.history import SCHEMA, CalibrationHistory, history_directory
from qep_analog.calibration.records import CalibrationRecord
from qep_analog.errors import CalibrationError


def record(value: float = 1.05, **changes: object) -> CalibrationRecord:
    fields: dict[str, object] = dict(
        field="rabi_scale",
        value=value,
        uncertainty=0.001,
        unit="",
        timestamp="2026-11-23T16:00:00+00:00",
        run_id="run-1",
        routine="rabi",
        quality="good",
        valid=True,
        device="fresnel-like",
        profile_version=1,
        runcard="rydberg-basic",
    )
    fields.update(changes)
    return CalibrationRecord(**fields)  # type: ignore[arg-type]


def test_record_round_trip_and_validation() -> None:
    original = record(site=2)
    assert CalibrationRecord.from_document(json.loads(json.dumps(original.to_document()))) == original
    with pytest.raises(CalibrationError, match="unknown field"):
        record(field="speed")
    with pytest.raises(CalibrationError, match="unit"):
        record(unit="MHz")
    with pytest.raises(CalibrationError, match="not finite"):
        record(value=float("nan"))
    with pytest.raises(CalibrationError, match="unknown keys"):
        CalibrationRecord.from_document({**original.to_document(), "extra": 1})
    with pytest.raises(CalibrationError, match="wrong type"):
        CalibrationRecord.from_document({**original.to_document(), "valid": "yes"})


def test_history_round_trip_with_header(tmp_path: Path) -> None:
    history = CalibrationHistory(tmp_path, "fresnel-like")
    assert history.read().records == ()
    history.append([record(1.0), record(1.1)])
    history.append([record(1.2, quality="bad")])
    read = history.read()
    assert [r.value for r in read.records] == [1.0, 1.1, 1.2] and read.torn == ()
    lines = history.path.read_text().splitlines()
    assert json.loads(lines[0]) == {"schema": SCHEMA, "device": "fresnel-like"} and len(lines) == 4
    with pytest.raises(CalibrationError, match="record of device"):
        history.append([record(device="aquila-like")])
    with pytest.raises(CalibrationError, match="plain name"):
        CalibrationHistory(tmp_path, "../escape")


def test_damage_in_the_middle_is_named_corruption_not_a_torn_write(tmp_path: Path) -> None:
    history = CalibrationHistory(tmp_path, "fresnel-like")
    history.append([record(float(k)) for k in range(1, 7)])
    lines = history.path.read_text(encoding="utf-8").splitlines()  # header, then records 1.0 .. 6.0
    flipped = lines[2].replace('"value": 2.0', '"value"; 2.0')  # a changed byte in line 3
    assert flipped != lines[2]
    alien = json.dumps({**record(4.0).to_document(), "value": "four"})  # JSON, not a record (line 5)
    torn = lines[6][: len(lines[6]) // 2]  # the last record cut short: a killed write (line 7)
    damaged = [lines[0], lines[1], flipped, lines[3], alien, lines[5], torn]
    original = "\n".join(damaged)  # no newline after the torn line, as a killed writer leaves it
    history.path.write_text(original, encoding="utf-8")
    read = history.read()
    assert [r.value for r in read.records] == [1.0, 3.0, 5.0]  # every valid record
    assert read.torn == (7,)
    assert [d.number for d in read.damaged] == [3, 5]
    assert "not valid JSON" in read.damaged[0].reason and "wrong type" in read.damaged[1].reason
    summary = read.skipped_summary()
    assert "torn (a write cut short) line(s) 7" in summary and "damaged line(s) 3 (" in summary
    assert "\n" not in summary
    assert history.path.read_text(encoding="utf-8") == original  # reading rewrites nothing
    history.append([record(8.0)])  # a fresh line after the torn one; the damaged lines stay
    after = history.read()
    assert [r.value for r in after.records] == [1.0, 3.0, 5.0, 8.0]
    assert after.torn == (7,) and [d.number for d in after.damaged] == [3, 5]
    assert history.path.read_text(encoding="utf-8").startswith(original + "\n")


@pytest.mark.parametrize(
    ("line", "torn"),
    [
        (b"", False),
        (b"garbage", False),
        (b"[1, 2]", False),
        (b'{"value": 1.0, "x"', True),
        (b'{"value": 1.0, "valid": fals', True),
        (b'{"device": "fresnel', True),
        ('{"device": "é'.encode()[:-1], True),  # cut inside a two-byte character
        (b'{"value": 1.0, XX "valid": true}', False),
        (b'{"value": \xff 1.0}', False),
        (b'{"value": ' + b"1" * 5000 + b"}", False),  # beyond Python's digit limit: ValueError
    ],
)
def test_a_line_is_torn_only_when_cut_short(tmp_path: Path, line: bytes, torn: bool) -> None:
    history = CalibrationHistory(tmp_path, "fresnel-like")
    history.append([record(1.0)])
    with open(history.path, "ab") as handle:
        handle.write(line + b"\n")
    history.append([record(2.0)])
    read = history.read()
    assert [r.value for r in read.records] == [1.0, 2.0]
    assert (read.torn, [d.number for d in read.damaged]) == (((3,), []) if torn else ((), [3]))


def test_history_refuses_a_foreign_file(tmp_path: Path) -> None:
    (tmp_path / "fresnel-like.jsonl").write_text('{"schema": "other/1"}\n')
    with pytest.raises(CalibrationError, match="header"):
        CalibrationHistory(tmp_path, "fresnel-like").read()


def test_deeply_nested_lines_are_unreadable_lines_not_a_recursion_error(tmp_path: Path) -> None:
    """A line of 20 000 nested brackets (``json`` recurses) is skipped as a damaged line; a header of
    them is not a header."""
    history = CalibrationHistory(tmp_path, "fresnel-like")
    history.append([record(1.0)])
    deep = "[" * 20_000 + "]" * 20_000
    with history.path.open("a") as handle:
        handle.write(deep + "\n" + '{"value": ' * 20_000 + "1" + "}" * 20_000 + "\n")
    history.append([record(1.1)])
    read = history.read()
    assert [r.value for r in read.records] == [1.0, 1.1] and read.torn == ()
    assert [d.number for d in read.damaged] == [3, 4]
    history.path.write_text(deep + "\n")
    with pytest.raises(CalibrationError, match="header"):
        history.read()


def test_history_directory_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QEP_ANALOG_HISTORY", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert history_directory() == tmp_path / "data" / "qep-analog" / "history"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert history_directory() == tmp_path / "home" / ".local" / "share" / "qep-analog" / "history"
    monkeypatch.setenv("QEP_ANALOG_HISTORY", str(tmp_path))
    assert history_directory() == tmp_path
    assert history_directory(tmp_path / "x") == tmp_path / "x"


_PRELUDE = textwrap.dedent(
    """
    import fcntl, json, os, signal, sys
    sys.path.insert(0, {tests!r})
    from test_calibration_history import record
    from qep_analog.calibration.history import CalibrationHistory
    history = CalibrationHistory({directory!r}, "fresnel-like")
    """
)


def _script(directory: Path, body: str) -> str:
    return _PRELUDE.format(tests=str(Path(__file__).parent), directory=str(directory)) + textwrap.dedent(
        body
    )


def test_writer_killed_mid_line_leaves_one_torn_line(tmp_path: Path) -> None:
    history = CalibrationHistory(tmp_path, "fresnel-like")
    history.append([record(1.0)])
    # A writer takes the lock, writes half of a record and is killed with SIGKILL before finishing.
    body = """
    fd = os.open(history.lock_path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    line = json.dumps(record(9.9).to_document()).encode()
    out = os.open(history.path, os.O_WRONLY | os.O_APPEND)
    os.write(out, line[: len(line) // 2])
    os.kill(os.getpid(), signal.SIGKILL)
    """
    done = subprocess.run([sys.executable, "-c", _script(tmp_path, body)], timeout=60)
    assert done.returncode == -9
    torn = history.read()
    assert [r.value for r in torn.records] == [1.0] and torn.torn == (3,)
    history.append([record(1.1)])  # the lock died with the writer; the new line starts fresh
    after = history.read()
    assert [r.value for r in after.records] == [1.0, 1.1] and after.torn == (3,)


def test_writer_killed_while_appending_never_corrupts(tmp_path: Path) -> None:
    body = """
    print("ready", flush=True)
    i = 0
    while True:
        history.append([record(1.0 + i * 1e-6), record(2.0)])
        i += 1
    """
    process = subprocess.Popen([sys.executable, "-c", _script(tmp_path, body)], stdout=subprocess.PIPE)
    assert process.stdout is not None and process.stdout.readline().strip() == b"ready"
    history = CalibrationHistory(tmp_path, "fresnel-like")
    deadline = time.monotonic() + 30
    while len(history.read().records) < 50 and time.monotonic() < deadline:
        time.sleep(0.02)
    process.kill()
    process.wait(timeout=30)
    read = history.read()
    assert len(read.records) >= 50 and len(read.torn) <= 1
    history.append([record(3.0)])
    final = history.read()
    assert final.records[-1].value == 3.0 and len(final.torn) <= 1


def test_two_concurrent_writers(tmp_path: Path) -> None:
    body = """
    tag = float(sys.argv[1])
    for i in range(60):
        history.append([record(tag, run_id=f"run-{tag}-{i}")])
    """
    processes = [
        subprocess.Popen([sys.executable, "-c", _script(tmp_path, body), str(tag)]) for tag in (1.0, 2.0)
    ]
    for process in processes:
        assert process.wait(timeout=60) == 0
    read = CalibrationHistory(tmp_path, "fresnel-like").read()
    assert read.torn == ()
    assert sorted(r.value for r in read.records) == [1.0] * 60 + [2.0] * 60
    assert len({r.run_id for r in read.records}) == 120
    text = (tmp_path / "fresnel-like.jsonl").read_text()
    assert text.count(SCHEMA) == 1 and os.path.exists(tmp_path / "fresnel-like.jsonl.lock")
