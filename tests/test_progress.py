"""Progress bars: drawn when a run ends, never before the error of a run that fails."""

from __future__ import annotations

import pytest

from qep_analog.progress import StageProgress


def test_a_finished_run_draws_its_bar(capsys: pytest.CaptureFixture[str]) -> None:
    with StageProgress(stderr=True) as bar:
        bar.update("emulate", 6, 6, "done")
    assert "6/6" in capsys.readouterr().err


def test_a_failed_run_leaves_its_error_alone(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="boom"), StageProgress(stderr=True) as bar:
        bar.update("emulate", 0, 6, "free/Z")
        raise ValueError("boom")
    assert capsys.readouterr().err == ""
    with StageProgress(stderr=True) as bar:  # the console draws again afterwards
        bar.update("emulate", 1, 1, "done")
    assert "1/1" in capsys.readouterr().err
