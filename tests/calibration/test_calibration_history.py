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


# --- record ids and schema versions -------------------------------------------------------------

#: a history written before records had a step and lines a schema: a /1 header, a record without
#: ``uses`` and ``budget`` and one with them (both forms were written under /1)
OLD_HISTORY = """\
{"schema": "qep-calibration-history/1", "device": "fresnel-like"}
{"field": "detuning_offset", "value": 0.9, "uncertainty": 0.01, "unit": "rad/µs", \
"timestamp": "2026-11-20T10:00:00+00:00", "run_id": "20261120T100000Z-aa11bb", "routine": "ramsey", \
"quality": "good", "valid": true, "device": "fresnel-like", "profile_version": 1, \
"runcard": "rydberg-basic", "site": null}
{"field": "rabi_scale", "value": 1.05, "uncertainty": 0.002, "unit": "", \
"timestamp": "2026-11-20T10:05:00+00:00", "run_id": "20261120T100000Z-aa11bb", "routine": "rabi", \
"quality": "good", "valid": true, "device": "fresnel-like", "profile_version": 1, \
"runcard": "rydberg-basic", "site": null, "uses": ["20261120T100000Z-aa11bb:detuning_offset"], \
"budget": {"statistical": 0.002}}
"""


def test_record_ids_name_the_step_and_old_ids_stay_valid() -> None:
    from qep_analog.calibration.records import RecordId

    new = record(field="detuning_offset", unit="rad/µs", site=3, step=2)
    assert new.record_id == "run-1#2:detuning_offset@3"
    assert RecordId.parse(new.record_id) == RecordId("run-1", 2, "detuning_offset", 3)
    # a record without a step (written before records had one) keeps its id
    assert record().record_id == "run-1:rabi_scale"
    assert RecordId.parse("20261120T100000Z-aa11bb:rabi_scale") == RecordId(
        "20261120T100000Z-aa11bb", None, "rabi_scale", None
    )
    for text in ("run-1", "run-1#0:rabi_scale", "run-1:rabi_scale@x", "a:b:rabi_scale"):
        with pytest.raises(CalibrationError, match="is not RUN#STEP:FIELD"):
            RecordId.parse(text)
    with pytest.raises(CalibrationError, match="holds one of"):
        record(run_id="run:1")
    with pytest.raises(CalibrationError, match="step 0 is not a positive step index"):
        record(step=0)
    with pytest.raises(CalibrationError, match="which is not a record id"):
        record(uses=("rabi_scale",))


def test_an_old_history_reads_as_it_is_and_new_records_are_version_2(tmp_path: Path) -> None:
    history = CalibrationHistory(tmp_path, "fresnel-like")
    history.path.write_text(OLD_HISTORY, encoding="utf-8")
    old = history.read()
    assert old.damaged == () and old.torn == ()
    assert [r.record_id for r in old.records] == [
        "20261120T100000Z-aa11bb:detuning_offset",
        "20261120T100000Z-aa11bb:rabi_scale",
    ]
    assert old.records[0].uses == () and old.records[0].step is None
    assert old.records[1].uses == ("20261120T100000Z-aa11bb:detuning_offset",)
    assert old.records[1].budget == (("statistical", 0.002),)
    # appended records are version 2, each saying so; the old header and lines stay as they were
    history.append([record(1.07, step=4, uses=("20261120T100000Z-aa11bb:detuning_offset",))])
    lines = history.path.read_text(encoding="utf-8").splitlines()
    assert "\n".join(lines[:3]) + "\n" == OLD_HISTORY
    appended = json.loads(lines[3])
    assert appended["schema"] == "qep-calibration-record/2" and appended["step"] == 4
    assert [r.record_id for r in history.read().records][2] == "run-1#4:rabi_scale"


def test_a_new_history_is_version_2_and_round_trips(tmp_path: Path) -> None:
    history = CalibrationHistory(tmp_path, "fresnel-like")
    written = record(1.1, step=3, site=1, budget=(("statistical", 0.001),), uses=("r0#1:rabi_scale",))
    history.append([written])
    header, line = history.path.read_text(encoding="utf-8").splitlines()
    assert json.loads(header) == {"schema": "qep-calibration-history/2", "device": "fresnel-like"}
    assert set(json.loads(line)) == {"schema", *CalibrationRecord.__dataclass_fields__}
    assert history.read().records == (written,)
    # a version-2 line holds every key: one left out is a damaged line, not a version-1 record
    document = json.loads(line)
    del document["step"]
    with pytest.raises(CalibrationError, match=r"missing keys \['step'\]"):
        CalibrationRecord.from_document(document)


def test_a_newer_history_is_refused_in_one_line_naming_the_file_and_version(tmp_path: Path) -> None:
    from qep_analog.calibration.versions import NewerSchemaError

    history = CalibrationHistory(tmp_path, "fresnel-like")
    history.path.write_text('{"schema": "qep-calibration-history/3", "device": "fresnel-like"}\n')
    for action in (history.read, lambda: history.append([record()])):
        with pytest.raises(NewerSchemaError) as caught:
            action()
        message = str(caught.value)
        assert "\n" not in message and str(history.path) in message
        assert "newer version of qep-analog (qep-calibration-history/3)" in message
    # a line of a newer record version refuses the whole file (a half-read history would put an
    # older calibration in force), naming the file, the line and the version
    history.path.write_text(OLD_HISTORY, encoding="utf-8")
    future = {**record().to_document(), "schema": "qep-calibration-record/3", "drift_model": "x"}
    with history.path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(future) + "\n")
    with pytest.raises(NewerSchemaError, match=r"line 4: .*\(qep-calibration-record/3\)") as caught:
        history.read()
    assert str(history.path) in str(caught.value)


def test_calibration_data_read_version_1_write_version_2_refuse_newer(tmp_path: Path) -> None:
    import numpy as np

    from qep_analog.calibration.data import CalibrationData, read_data, write_data
    from qep_analog.calibration.versions import NewerSchemaError

    data = CalibrationData(
        routine="ramsey", parameters={"points": 3}, sweep_name="delay", sweep_unit="µs",
        sweep=np.array([0.0, 1.0, 2.0]), shots=100, counts=np.array([[1], [50], [99]]),
        context={"detuning": 6.28}, uses=("run-1#2:detuning_offset",),
    )  # fmt: skip
    write_data(tmp_path / "data.json", data)
    written = json.loads((tmp_path / "data.json").read_text())
    assert written["schema"] == "qep-calibration-data/2"
    assert set(written) == {
        "schema", "routine", "parameters", "sweep_name", "sweep_unit", "sweep", "shots", "counts",
        "context", "sites", "uses",
    }  # fmt: skip
    again = read_data(tmp_path / "data.json")
    assert again.uses == data.uses and again.context == data.context and again.total_shots == 300
    # version 1: context, sites and uses may be missing
    old = {k: v for k, v in written.items() if k not in ("context", "sites", "uses")}
    (tmp_path / "old.json").write_text(json.dumps({**old, "schema": "qep-calibration-data/1"}))
    assert read_data(tmp_path / "old.json").uses == () and read_data(tmp_path / "old.json").context == {}
    # version 2 holds every key
    (tmp_path / "short.json").write_text(json.dumps(old))
    with pytest.raises(CalibrationError, match=r"missing keys \['context', 'sites', 'uses'\]"):
        read_data(tmp_path / "short.json")
    (tmp_path / "new.json").write_text(json.dumps({**written, "schema": "qep-calibration-data/3"}))
    with pytest.raises(NewerSchemaError) as caught:
        read_data(tmp_path / "new.json")
    message = str(caught.value)
    assert str(tmp_path / "new.json") in message and "(qep-calibration-data/3)" in message
    assert "\n" not in message
