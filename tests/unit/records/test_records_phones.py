"""Phones of every region: the compiled rules (phone_fast) answer as phonenumbers.parse does."""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from collections.abc import Callable
from random import Random
from typing import Any

import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bik_sync.records.errors import FieldError
from bik_sync.records.normalise import clean, scientific_match, scientific_message
from bik_sync.records.phones import SUPPORTED_REGIONS, PhoneNormaliser, no_country_code_message

REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
STYLES = ("E164", "INTERNATIONAL", "NATIONAL")
TWO_COUNTRIES = "the row names two countries (US and IN)"
_HAS_CODE = re.compile(r"\W*(?:tel\W*)?[+\uff0b]", re.IGNORECASE).match
_KINDS = (
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE,
    phonenumbers.PhoneNumberType.TOLL_FREE,
    phonenumbers.PhoneNumberType.PREMIUM_RATE,
    phonenumbers.PhoneNumberType.VOIP,
)
# What the readers drop, and (rarely) punctuation they do not: phonenumbers reads it, phone_fast does not.
_SEPARATORS = (" ", " ", " ", "-", "-", ".", "(", ")", "/", "\u00a0", "\u2013", " - ")
_ODD = ("~", "[", "\u3000", "\u2015", "x", "#")


def _full_parse(value: Any, region: str | None, no_region: str | None, style: str) -> str | None:
    """The normaliser before phone_fast (and without its Indian shortcut): phonenumbers.parse for all."""
    text = clean(value) if type(value) is str else str(value)
    if not text:
        return None
    if region is None and no_region is None:
        region = "IN"
    if ":::" in text:
        text = next((part.strip() for part in text.split(":::") if part.strip()), "")
    if ("E" in text or "e" in text) and scientific_match(text.replace(" ", "")):
        raise FieldError(scientific_message("phoneNumber"))
    if text.startswith("00") and text[2:3].isdigit():
        text = "+" + text[2:]
    if region is None and not _HAS_CODE(text):
        raise FieldError(no_country_code_message("phoneNumber", no_region or "the row names no country"))
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise FieldError('"phoneNumber" must be a valid phone number') from None
    if not phonenumbers.is_valid_number(number):
        raise FieldError('"phoneNumber" must be a valid phone number')
    formatted: str = phonenumbers.format_number(number, getattr(phonenumbers.PhoneNumberFormat, style))
    return formatted


def _answer(read: Callable[[], str | None]) -> str | None:
    try:
        return read()
    except FieldError as error:
        return f"rejected: {error}"


@functools.cache
def _example(region: str, kind: int) -> phonenumbers.PhoneNumber | None:
    return phonenumbers.example_number_for_type(region, kind) or phonenumbers.example_number(region)


@st.composite
def written_numbers(draw: st.DrawFn) -> str:
    """A number of some region, as files write it: national or international, with separators."""
    region = draw(st.sampled_from(REGIONS))
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    assert metadata is not None
    example = _example(region, draw(st.sampled_from(_KINDS)))
    rng = draw(st.randoms(use_true_random=True))  # digits and separators: one draw, not one each
    if example is not None and rng.random() < 0.7:
        national = phonenumbers.national_significant_number(example)
        if rng.random() < 0.5:  # the example's first digits, the rest random
            kept = rng.randint(0, len(national))
            national = national[:kept] + "".join(rng.choice("0123456789") for _ in national[kept:])
    else:
        assert metadata.general_desc is not None
        size = rng.choice(metadata.general_desc.possible_length) + rng.choice((0, 0, 0, -1, 1))
        national = "".join(rng.choice("0123456789") for _ in range(max(size, 1)))
    trunk = metadata.national_prefix or rng.choice(("", "0"))
    idd = metadata.preferred_international_prefix or metadata.international_prefix or "00"
    form = rng.choice(_FORMS)
    spaced = "".join(digit + _separator(rng) for digit in national)
    code = str(metadata.country_code) + _separator(rng)
    return rng.choice(("", "", " ", "(")) + form.format(t=trunk, n=spaced, c=code, i=idd[:4])


_FORMS = (
    *("{t}{n}", "{n}", "+{c}{n}", "00{c}{n}", "{c}{n}"),
    *("{t}{n}", "{n}", "+{c}{n}", "00{c}{n}", "{c}{n}"),
    *(
        "+{c}({t}){n}",
        "{c}{t}{n}",
        "{i}{c}{n}",
        "{i} {c}{n}",
        "{i}0{n}",
        "+{i}{c}{n}",
        "'+{c}{n}",
        "{t}{t}{n}",
    ),
)


def _separator(rng: Random) -> str:
    chance = rng.random()
    return "" if chance < 0.7 else rng.choice(_SEPARATORS) if chance < 0.99 else rng.choice(_ODD)


_garbage = st.text(
    st.sampled_from("0123456789+ -().'/x#~E:,;\u00a0\u0663\uff0b\uff11a"), min_size=0, max_size=22
)
_row_regions = st.one_of(st.none(), st.sampled_from(REGIONS), st.sampled_from(("IN", "US", "GB", "zz")))


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    written=st.one_of(written_numbers(), written_numbers(), written_numbers(), _garbage),
    region=_row_regions,
    no_region=st.sampled_from((None, None, None, TWO_COUNTRIES)),
    style=st.sampled_from(STYLES),
)
def test_every_regions_numbers_get_the_answer_phonenumbers_parse_gives(
    written: str, region: str | None, no_region: str | None, style: str
) -> None:
    # Given a number of any region written in any form (or garbage), read in some row's region
    normalise = PhoneNormaliser("IN", style)
    # When the normaliser reads it, and phonenumbers.parse + is_valid_number reads it
    # Then both give the same number, or reject it with the same reason
    new = _answer(lambda: normalise(written, "phoneNumber", region, no_region))
    assert new == _answer(lambda: _full_parse(written, region, no_region, style))


@pytest.mark.parametrize(
    ("written", "region", "expected"),
    [
        ("(201) 555-0123", "US", "+12015550123"),
        ("+1 201-555-0123", None, "+12015550123"),
        ("1 201 555 0123", "US", "+12015550123"),
        ("011 44 20 7946 0958", "US", "+442079460958"),
        ("(506) 234-5678", "US", "+15062345678"),  # a Canadian number: +1 is shared
        ("020 7946 0958", "GB", "+442079460958"),
        ("+44 (0)20 7946 0958", None, "+442079460958"),
        ("07797 900123", "JE", "+447797900123"),  # Jersey: +44 is shared
        ("(11) 96123-4567", "BR", "+5511961234567"),
        ("0 21 11 96123-4567", "BR", "+5511961234567"),  # a carrier code before the number
        ("030 123456", "DE", "+4930123456"),
        ("00 971 50 123 4567", "DE", "+971501234567"),
        ("050 123 4567", "AE", "+971501234567"),
        ("8123 4567", "SG", "+6581234567"),
        ("0412 345 678", "AU", "+61412345678"),
        ("06.12.34.56.78", "FR", "+33612345678"),
        ("'+33 6 12 34 56 78", "FR", "+33612345678"),
        ("+39 06 6982 0000", None, "+390669820000"),  # an Italian leading zero
        ("8011 23-4567", "BY", "+3758011234567"),  # 8 is the trunk prefix, but here the number's own
    ],
)
def test_numbers_of_digits_and_separators_are_read_without_phonenumbers_parse(
    monkeypatch: pytest.MonkeyPatch, written: str, region: str | None, expected: str
) -> None:
    # Given phonenumbers.parse out of reach
    def no_parse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("phonenumbers.parse was called")

    monkeypatch.setattr(phonenumbers, "parse", no_parse)
    # When a number of digits and separators is read in its row's region
    # Then the region's compiled rules give its E.164 form
    assert PhoneNormaliser("IN")(written, "phoneNumber", region) == expected


def test_an_invalid_number_is_rejected_by_the_rules_and_an_odd_one_still_parsed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parsed: list[str] = []
    parse = phonenumbers.parse

    def spy(text: str, region: str | None = None) -> Any:
        parsed.append(text)
        return parse(text, region)

    monkeypatch.setattr(phonenumbers, "parse", spy)
    normalise = PhoneNormaliser("IN")
    # Given a US number with a digit too many, and numbers with an extension or letters
    # When they are read
    with pytest.raises(FieldError, match='"phoneNumber" must be a valid phone number'):
        normalise("(201) 555-01234", "phoneNumber", "US")
    assert parsed == []  # the rules decide it
    assert normalise("+1 201 555 0123 ext. 45", "phoneNumber") == "+12015550123"
    assert normalise("1-800-FLOWERS", "phoneNumber", "US") == "+18003569377"
    # Then only the last two go to phonenumbers.parse
    assert parsed == ["+1 201 555 0123 ext. 45", "1-800-FLOWERS"]


def test_the_regions_known_without_phonenumbers_are_phonenumbers_regions() -> None:
    assert phonenumbers.SUPPORTED_REGIONS == SUPPORTED_REGIONS


def test_phonenumbers_is_imported_with_the_first_phone_not_with_the_lambdas() -> None:
    # Given a fresh interpreter that imports both Lambda handlers
    probe = (
        "import sys, bik_sync.ingest, bik_sync.upsert\n"
        "before = 'phonenumbers' in sys.modules\n"
        "from bik_sync.records.phones import PhoneNormaliser\n"
        "assert PhoneNormaliser('IN')('(201) 555-0123', 'phoneNumber', 'US') == '+12015550123'\n"
        "print(before, 'phonenumbers' in sys.modules)"
    )
    # When it normalises its first phone
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    # Then phonenumbers was not imported before, and is then
    assert result.stdout.split() == ["False", "True"]
