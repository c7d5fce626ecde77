"""`bik-sync validate`: offline summary, JSON output, rejects file, exit codes 0/1/2."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest

from bik_sync.validate_cmd import main

from .conftest import FIXTURES

SAMPLE = Path(__file__).parents[3] / "samples" / "customers.csv"


def test_an_all_valid_file_exits_0_with_a_human_summary(capsys: pytest.CaptureFixture[str]) -> None:
    code = main([str(FIXTURES / "woocommerce.csv")])
    out = capsys.readouterr().out
    assert code == 0
    assert "rows      2" in out and "valid     2" in out and "rejected  0" in out
    assert "ignored columns: username, billing_company" in out


def test_a_file_with_rejects_exits_1_and_lists_the_top_reasons(capsys: pytest.CaptureFixture[str]) -> None:
    code = main([str(FIXTURES / "shopify_current.csv")])
    out = capsys.readouterr().out
    assert code == 1
    assert '1  "lastName" is required' in out


def test_json_output_is_one_object_with_the_counts(capsys: pytest.CaptureFixture[str]) -> None:
    code = main([str(FIXTURES / "records.jsonl"), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 1
    assert {key: summary[key] for key in ("rows", "valid", "rejected", "ignored_columns", "format")} == {
        "rows": 3,
        "valid": 2,
        "rejected": 1,
        "ignored_columns": [],
        "format": "jsonl",
    }
    assert summary["reasons"] == {
        '"emial" is not allowed': 1,
        "needs at least one of phoneNumber, email or partnerCustomerId": 1,
    }


def test_the_sample_file_validates_with_its_bad_rows_rejected(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rejects = tmp_path / "rejects.csv"
    code = main([str(SAMPLE), "--json", "--rejects", str(rejects)])
    summary = json.loads(capsys.readouterr().out)
    assert code == 1
    assert summary["rows"] == summary["valid"] + summary["rejected"] >= 300
    assert 10 <= summary["rejected"] <= 20
    assert "Default Address Zip" in summary["ignored_columns"]
    lines = rejects.read_text(encoding="utf-8-sig").splitlines()
    assert lines[0].endswith(",_row,_error")
    assert len(lines) == summary["rejected"] + 1
    assert any(",'=HYPERLINK(" in line or "\"'=HYPERLINK(" in line for line in lines)


def test_rejects_and_options_are_honoured(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    source = tmp_path / "crm.csv"
    source.write_text("Given,Family,Mobile No\nAsha,Verma,020 7946 0958\n", encoding="utf-8")
    mapping = tmp_path / "m.json"
    mapping.write_text('{"Given": "firstName", "Family": "lastName", "Mobile No": "phoneNumber"}')
    code = main([str(source), "--mapping", str(mapping), "--region", "gb", "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["valid"] == 1


def test_gzip_json_with_a_format_override(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "dump.bin"
    path.write_bytes(gzip.compress(b'{"firstName":"A","lastName":"B","email":"a@example.in"}\n'))
    assert main([str(path), "--format", "jsonl", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["format"] == "jsonl"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.csv"], "cannot open missing.csv: No such file or directory"),
        ([str(FIXTURES / "custom_columns.csv")], "no column maps to firstName or lastName"),
        ([str(FIXTURES / "pipe.csv"), "--mapping", "nope.json"], "cannot read the mapping file nope.json"),
        (
            [str(FIXTURES / "pipe.csv"), "--mapping", "s3://bucket/m.json"],
            "validate reads a local mapping file",
        ),
        ([str(FIXTURES / "pipe.csv"), "--format", "xml"], "invalid choice: 'xml'"),
    ],
)
def test_unreadable_input_exits_2_with_one_line_and_no_traceback(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(args)
    captured = capsys.readouterr()
    assert code == 2
    assert message in captured.err
    assert "Traceback" not in captured.err
    assert captured.out == ""


def test_damage_part_way_exits_2_saying_where_and_counts_the_rows_before_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given a JSON array cut short in its 20th line (an upload that did not finish)
    records = tmp_path / "records.jsonl"
    # When it is validated
    code = main([str(FIXTURES / "truncated.json"), "--json", "--records", str(records)])
    captured = capsys.readouterr()
    # Then it exits 2 with one line saying where reading stopped, and no traceback
    assert code == 2 and "Traceback" not in captured.err
    assert "truncated JSON at line 20, column 27" in captured.err
    # And the summary counts the rows before the damage, as the ingest's report would
    summary = json.loads(captured.out)
    assert summary["rows"] == summary["valid"] + summary["rejected"] > 0
    assert "truncated JSON at line 20, column 27" in summary["error"]
    assert len(records.read_text().splitlines()) == summary["valid"] - summary["duplicates"]


def test_a_bad_mapping_file_exits_2_naming_the_entry(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    mapping = tmp_path / "m.json"
    mapping.write_text('{"Mobile": "mobile"}')
    assert main([str(FIXTURES / "pipe.csv"), "--mapping", str(mapping)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"bik-sync validate: {mapping}: 'Mobile' maps to 'mobile', which is not a BIK field " + (
        "(fields: firstName, lastName, source, phoneNumber, alternatePhoneNumber, email, address1, address2, "
        "city, state, country, createdAt, updatedAt, emailMarketingConsent, smsMarketingConsent, tags, "
        "partnerCustomerId, fullName)"
    )


def test_records_out_writes_every_valid_record_as_it_would_be_sent_with_its_row(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given a Shopify export with one rejected row among valid ones
    out = tmp_path / "records.jsonl"
    rejects = tmp_path / "rejects.csv"
    # When it is validated with --records
    code = main([str(FIXTURES / "shopify_current.csv"), "--records", str(out), "--rejects", str(rejects)])
    # Then each valid row is one JSON line with its _row, and the rejected row is not among them
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    rejected_rows = [int(row["_row"]) for row in csv.DictReader(rejects.open(encoding="utf-8-sig"))]
    assert code == 1
    assert lines and all(set(line) >= {"_row", "firstName", "lastName"} for line in lines)
    assert {line["_row"] for line in lines}.isdisjoint(rejected_rows)
    assert len(lines) + len(rejected_rows) == 3  # every row of the file, once
    assert lines[0] == {
        "_row": 2,
        **{key: value for key, value in lines[0].items() if key != "_row"},
        "firstName": "Priya",
        "phoneNumber": "+919876543210",
        "email": "priya.sharma@gmail.com",
    }
    assert f"records written to {out}" in capsys.readouterr().out


def test_rows_of_one_person_are_counted_as_duplicates_and_written_once_merged_at_the_last_row(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given a file where rows 2 and 4 share a phone and row 4 moves the person to another city
    source = tmp_path / "people.csv"
    source.write_text(
        "First Name,Last Name,Phone,Email,City\n"
        "Asha,Rao,9820000001,asha@example.in,Pune\n"
        "Ravi,Kumar,9820000002,,Delhi\n"
        "Asha,Rao,9820000001,,Mumbai\n",
        encoding="utf-8",
    )
    records = tmp_path / "records.jsonl"
    # When it is validated with --records and --json
    code = main([str(source), "--json", "--records", str(records)])
    summary = json.loads(capsys.readouterr().out)
    # Then one row is a duplicate, and Asha is written once, at row 4, with the later city and her email
    assert code == 0
    assert (summary["rows"], summary["valid"], summary["rejected"], summary["duplicates"]) == (3, 3, 0, 1)
    written = [json.loads(line) for line in records.read_text(encoding="utf-8").splitlines()]
    assert [(r["_row"], r["firstName"], r.get("city"), r.get("email")) for r in written] == [
        (3, "Ravi", "Delhi", None),
        (4, "Asha", "Mumbai", "asha@example.in"),
    ]
    # And the human summary says so too
    main([str(source)])
    assert "duplicates 1 (rows of a person met earlier: 2 records to send)" in capsys.readouterr().out


def test_a_file_refused_whole_writes_no_records_at_all(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given a CRM's JSON with its contacts and its own users, two lists of records
    path = tmp_path / "crm.json"
    person = {"first_name": "Asha", "last_name": "Rao", "email": "asha@example.in"}
    path.write_text(json.dumps({"contacts": [person], "users": [{**person, "email": "rep@crm.example"}]}))
    records = tmp_path / "records.jsonl"
    # When it is validated with --records
    code = main([str(path), "--records", str(records)])
    # Then it is refused whole, in the first pass, before any record is written
    assert code == 2 and "two lists of records" in capsys.readouterr().err
    assert not records.exists()
