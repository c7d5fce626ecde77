"""The phone check of ``phonenumbers.parse`` + ``is_valid_number``, for the shapes files are full of.

A number written as digits (``+`` first or not) with the separators the readers drop (spaces,
dashes, dots, brackets, slashes) is read here with the region's own metadata, compiled once per
region on first use: its international (IDD) prefix, its national (trunk) prefix and how parsing
strips it, its possible lengths and the patterns of its number types. The steps are phonenumbers'
own (``parse``: IDD or ``+``, country code, trunk prefix; ``is_valid_number``: the region of the
number among those sharing its code, then its types), in the same order, so the answer is the
same; only the work of reading a free-form string is gone. Anything else (letters, extensions,
other punctuation, non-ASCII digits, a country code no region has) is left to phonenumbers.

phonenumbers itself is imported on the first number, not with this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

# phonenumbers' limits (phonenumberutil._MIN_LENGTH_FOR_NSN and friends).
_MIN_NSN: Final = 2
_MAX_NSN: Final = 17
_MAX_CODE: Final = 3
_MAX_INPUT: Final = 250
# _test_number_length's results that keep a trunk prefix on (TOO_SHORT, IS_POSSIBLE_LOCAL_ONLY,
# INVALID_LENGTH): only IS_POSSIBLE and TOO_LONG strip it.
_POSSIBLE, _TOO_LONG, _KEEP = 0, 1, 2
# The number types is_valid_number accepts: any but UNKNOWN (_number_type_helper's order does not
# matter for validity; mobile is only looked at when its pattern is not the fixed line's). The
# patterns are tried in this order, mobile first: the numbers files hold are mostly mobiles.
_TYPES: Final = (
    "fixed_line",
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
)


@dataclass(frozen=True, slots=True)
class _Rules:
    """One region's metadata, as parsing and validation use it."""

    code: int
    code_text: str
    idd: re.Pattern[str] | None  # international_prefix
    trunk: re.Pattern[str] | None  # national_prefix_for_parsing
    trunk_digits: str | None  # the same, when it is plain digits (most are "0" or "1") and no transform
    transform: str | None  # national_prefix_transform_rule
    general: re.Pattern[str]  # general_desc's pattern (_match_national_number: no length check)
    length_results: tuple[int, ...]  # per length up to the longest possible: _test_number_length's
    leading: re.Pattern[str] | None  # leading_digits, for regions sharing a country code
    valid: dict[int, re.Pattern[str]]  # per length: general_desc and any accepted type, in one pattern

    def matches_general(self, number: str) -> bool:
        return self.general.fullmatch(number) is not None

    def is_valid(self, number: str) -> bool:
        pattern = self.valid.get(len(number))
        return pattern is not None and pattern.fullmatch(number) is not None

    def length_result(self, number: str) -> int:
        """_test_number_length(number, metadata) as the three outcomes parsing tells apart."""
        size = len(number)
        results = self.length_results
        return results[size] if size < len(results) else _TOO_LONG

    def strip_trunk(self, number: str) -> str:
        """_maybe_strip_national_prefix_carrier_code's number."""
        trunk = self.trunk
        if not number or trunk is None:
            return number
        if self.trunk_digits is not None:  # what the pattern would match, without it
            if not number.startswith(self.trunk_digits):
                return number
            rest = number[len(self.trunk_digits) :]
        else:
            found = trunk.match(number)
            if found is None:
                return number
            groups = found.groups()
            if not self.transform or groups[len(groups) - 1] is None:
                rest = number[found.end() :]
            else:
                rest = trunk.sub(self.transform, number, count=1)
        # Kept when the number was viable (matched the general pattern) and what is left is not:
        # the second asked first, as it is rarely so.
        general = self.general.fullmatch
        if general(rest) is None and general(number) is not None:
            return number
        return rest


def _length_result(size: int, lengths: tuple[int, ...], local_only: frozenset[int]) -> int:
    """_test_number_length for a number of ``size`` digits (``lengths``: sorted)."""
    if size in local_only:
        return _KEEP
    if lengths[0] == size:
        return _POSSIBLE
    if lengths[0] > size:
        return _KEEP
    if lengths[-1] < size:
        return _TOO_LONG
    return _POSSIBLE if size in lengths[1:] else _KEEP


def _rules(metadata: Any) -> _Rules:
    general = metadata.general_desc
    lengths = tuple(general.possible_length)
    general_lengths = frozenset(lengths)
    local_only = frozenset(general.possible_length_local_only)
    trunk, transform = metadata.national_prefix_for_parsing, metadata.national_prefix_transform_rule
    longest = max((lengths[-1], *local_only))  # any longer is TOO_LONG
    kinds = [getattr(metadata, name) for name in _TYPES]
    if not metadata.same_mobile_and_fixed_line_pattern:
        kinds.insert(0, metadata.mobile)
    kinds = [kind for kind in kinds if kind is not None and kind.national_number_pattern]
    valid: dict[int, re.Pattern[str]] = {}
    for size in general_lengths:
        accepted = [
            kind.national_number_pattern
            for kind in kinds
            if not kind.possible_length or size in kind.possible_length
        ]
        if accepted:
            either = "|".join(f"(?:{pattern})" for pattern in accepted)
            valid[size] = re.compile(f"(?=(?:{general.national_number_pattern})\\Z)(?:{either})")
    return _Rules(
        code=metadata.country_code,
        code_text=str(metadata.country_code),
        idd=None if metadata.international_prefix is None else re.compile(metadata.international_prefix),
        trunk=re.compile(trunk) if trunk else None,
        trunk_digits=trunk if trunk and trunk.isdigit() and not transform else None,
        transform=transform,
        general=re.compile(general.national_number_pattern),
        length_results=tuple(_length_result(size, lengths, local_only) for size in range(longest + 1)),
        leading=None if metadata.leading_digits is None else re.compile(metadata.leading_digits),
        valid=valid,
    )


class _Metadata:
    """The regions' rules, each compiled the first time a number needs it."""

    def __init__(self) -> None:
        from phonenumbers import (
            COUNTRY_CODE_TO_REGION_CODE,
            REGION_CODE_FOR_NON_GEO_ENTITY,
            SUPPORTED_REGIONS,
            PhoneMetadata,
        )

        self._metadata = PhoneMetadata
        self._non_geo: str = REGION_CODE_FOR_NON_GEO_ENTITY
        self.regions_of_code: dict[int, tuple[str, ...]] = dict(COUNTRY_CODE_TO_REGION_CODE)
        self.code_of_digits: dict[str, int] = {str(code): code for code in self.regions_of_code}
        self.supported: frozenset[str] = frozenset(SUPPORTED_REGIONS)
        self.regions: dict[str, _Rules] = {}
        self.codes: dict[int, tuple[_Rules, ...]] = {}

    def region(self, region: str) -> _Rules:
        rules = self.regions.get(region)
        if rules is None:
            rules = self.regions[region] = _rules(self._metadata.metadata_for_region(region))
        return rules

    def of_code(self, code: int) -> tuple[_Rules, ...]:
        """The rules of the regions sharing a country code, its main region first."""
        found = self.codes.get(code)
        if found is None:
            regions = self.regions_of_code[code]
            if regions == (self._non_geo,):
                found = (_rules(self._metadata.metadata_for_nongeo_region(code)),)
            else:
                found = tuple(self.region(region) for region in regions)
            self.codes[code] = found
        return found


_METADATA: list[_Metadata] = []


def _metadata() -> _Metadata:
    if not _METADATA:
        _METADATA.append(_Metadata())
    return _METADATA[0]


INVALID: Final = ("", "")  # the number is not a valid phone number (what parse or is_valid_number says)


def read(digits: str, plus: bool, region: str | None) -> tuple[str, str] | None:
    """(country code, national significant number) of a valid number, ``INVALID``, or None when
    this cannot tell (phonenumbers.parse must read it).

    ``digits``: the number's ASCII digits (at least three), after a ``+`` when ``plus``; the text
    they came from had only separators besides and was no longer than phonenumbers reads (250).
    ``region``: the region a number without a country code is read in, None when there is none.
    """
    data = _METADATA[0] if _METADATA else _metadata()
    if plus:  # the region only matters when the code is unknown (the retry)
        return _international(data, digits, retry=True)
    if region is None:
        return None  # no region: the caller says so
    home = data.regions.get(region)
    if home is None:
        if region not in data.supported:
            return None  # phonenumbers has no metadata of it
        home = data.region(region)
    idd = home.idd
    found = idd.match(digits) if idd is not None else None
    if found is not None and digits[found.end() : found.end() + 1] != "0":
        return _international(data, digits[found.end() :], retry=False)
    code = 0
    national = digits
    if digits.startswith(home.code_text):
        # _maybe_extract_country_code: the region's own code written without "+" (4420..., 1212...).
        rest = home.strip_trunk(digits[len(home.code_text) :])
        if (not home.matches_general(digits) and home.matches_general(rest)) or home.length_result(
            digits
        ) == _TOO_LONG:
            code, national = home.code, rest
    if code:
        return _national(data, code, national, data.of_code(code)[0])
    return _national(data, home.code, national, home)


def _international(data: _Metadata, digits: str, retry: bool) -> tuple[str, str] | None:
    """After "+" or the region's IDD: the country code, then the national number."""
    if len(digits) <= _MIN_NSN:
        return INVALID  # TOO_SHORT_AFTER_IDD
    if digits[0] != "0":
        for size in range(1, _MAX_CODE + 1):  # there are more digits than that
            code = data.code_of_digits.get(digits[:size])
            if code is not None:
                return _national(data, code, digits[size:], (data.codes.get(code) or data.of_code(code))[0])
    # INVALID_COUNTRY_CODE: after "+" parse tries the digits again as a national number; rare, its own.
    return None if retry else INVALID


def _national(data: _Metadata, code: int, national: str, rules: _Rules) -> tuple[str, str]:
    """parse's end (the trunk prefix off when what is left is a possible length), then is_valid_number."""
    if len(national) < _MIN_NSN:
        return INVALID
    if rules.trunk is not None:
        stripped = rules.strip_trunk(national)
        if stripped is not national and rules.length_result(stripped) != _KEEP:
            national = stripped
    size = len(national)
    if not _MIN_NSN <= size <= _MAX_NSN:
        return INVALID
    sharing = data.codes.get(code) or data.of_code(code)
    if len(sharing) > 1:
        # region_code_for_number: the first region whose leading digits start the number, or
        # (for one without leading digits) that the number is valid in.
        for candidate in sharing:
            if candidate.leading is not None:
                if candidate.leading.match(national):
                    return (candidate.code_text, national) if candidate.is_valid(national) else INVALID
            elif candidate.is_valid(national):
                return candidate.code_text, national
        return INVALID
    valid = sharing[0].valid.get(size)  # is_valid, inline
    return (sharing[0].code_text, national) if valid is not None and valid.fullmatch(national) else INVALID
