"""The S3 adapter's ranged reads, against botocore's stubbed answers (no network)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from bik_sync.ports import RangeMissing
from bik_sync.storage import S3ObjectStore

DATA = b"First Name,Last Name,Email\nA,B,a@example.in\nC,D,c@example.in\n"
ROW_2 = DATA.index(b"A,B")


@pytest.fixture
def s3() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
    with Stubber(client) as stubber:
        yield client, stubber


def answer(stubber: Stubber, body: bytes, start: int, **extra: Any) -> None:
    response = {
        "Body": StreamingBody(io.BytesIO(body), len(body)),
        "ContentLength": len(body),
        "ETag": '"etag"',
        "LastModified": datetime(2026, 1, 1, tzinfo=UTC),
        **extra,
    }
    stubber.add_response("get_object", response, {"Bucket": "b", "Key": "k", "Range": f"bytes={start}-"})


def test_a_store_that_ignores_the_range_and_sends_the_whole_object_is_read_from_the_byte_asked_for(
    s3: tuple[Any, Stubber],
) -> None:
    # Given an S3-compatible store that answers a ranged GET with the whole object (200, no ContentRange)
    client, stubber = s3
    answer(stubber, DATA, ROW_2)
    # When the object is opened from the start of its second row
    opened = S3ObjectStore(client).open("b", "k", start=ROW_2)
    # Then the body starts there, not at the header (which would be read as a row, and rows sent twice)
    assert opened.body.read() == DATA[ROW_2:]


@pytest.mark.parametrize("start", [len(DATA), len(DATA) + 10])
def test_a_whole_object_no_longer_than_the_range_start_is_no_byte_there(
    s3: tuple[Any, Stubber], start: int
) -> None:
    # Given a store that ignores the range, and an object that ends at or before the byte asked for
    client, stubber = s3
    answer(stubber, DATA, start)
    # Then it holds no byte there, as S3's 416 says
    with pytest.raises(RangeMissing):
        S3ObjectStore(client).open("b", "k", start=start)
