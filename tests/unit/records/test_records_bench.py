"""The benchmark runner finds every bench module, and the ingest bench reports its figures."""

from __future__ import annotations

import json

import pytest

from bik_local.bench import __main__ as runner
from bik_local.bench import ingest


def test_the_runner_discovers_the_ingest_bench() -> None:
    assert "ingest" in runner.discover()


def test_the_ingest_bench_prints_one_json_line_with_its_ratio(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a small row count, one run and no SQS latency, for a quick run
    monkeypatch.setenv(ingest.ROWS_ENV, "1000")
    monkeypatch.setenv(ingest.REPEATS_ENV, "1")
    monkeypatch.setenv(ingest.SQS_MS_ENV, "0")
    # When only the ingest bench runs
    code = runner.main(["ingest"])
    # Then it prints one JSON line with the named figures
    lines = capsys.readouterr().out.splitlines()
    assert code == 0 and len(lines) == 1
    figures = json.loads(lines[0])
    assert figures["bench"] == "ingest"
    assert figures["rows"] == 1000 == figures["valid"] + figures["rejected"]
    assert figures["ingest_ratio"] == pytest.approx(
        figures["ingest_rows_per_s"] / figures["csv_reader_rows_per_s"], rel=0.01, abs=0.001
    )
    # And the real loop sent the valid records as work messages, on both files
    assert figures["messages"] >= figures["valid"] / 100 > 0
    assert figures["intl_valid"] + figures["intl_rejected"] == 1000 > 100 * figures["intl_rejected"]
    assert {"core_ratio", "core_intl_ratio", "ingest_intl_ratio", "ingest_sqs_ratio"} <= figures.keys()


def test_an_unknown_bench_name_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert runner.main(["nope"]) == 2
    assert "unknown benchmark(s): nope" in capsys.readouterr().err
