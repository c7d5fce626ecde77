"""`bik-sync emulator --help` explains every fault knob and the token the emulator accepts."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bik_local.emulator import DEFAULT_TOKEN, FAULTS_PATH, KNOB_HELP, Faults, main


def test_the_help_names_every_fault_knob_with_its_explanation_and_the_token(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "1000")  # argparse wraps at the terminal's width, even within words
    with pytest.raises(SystemExit) as exited:
        main(["--help"])

    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for knob in (f.name for f in dataclasses.fields(Faults)):
        assert "--" + knob.replace("_", "-") in text
        assert " ".join(KNOB_HELP[knob].split()) in text
    assert DEFAULT_TOKEN in text
    assert "local-key:local-secret" in text
    assert FAULTS_PATH in text and "rotate_token" in text


def test_the_readme_documents_every_knob_of_the_faults_endpoint() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Emulator fault knobs") :]
    for knob in KNOB_HELP:
        assert f"| `{knob}` |" in section
    assert f"POST {FAULTS_PATH}" in section and "curl" in section
