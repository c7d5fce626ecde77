"""A country cell, in any form people write it, to its ISO-3166 alpha-2 code.

Codes and names come from pycountry (the maintained ISO-3166 dataset): alpha-2 and alpha-3 codes,
short, official and common English names, and the parts of names written "Korea, Republic of"
turned around or cut at the comma where that is still one country. On top of the dataset sits a
short list of the variants exports are full of (USA, U.S.A., UK, UAE, South Korea, Holland...).
Names are compared without case, accents, spaces or punctuation, and a name cut short (exports
cut at 20 characters: ``United States of Ame``) is recognised when only one country starts so.

The index is built on the first lookup that the small cache cannot answer, not at import.
"""

from __future__ import annotations

import bisect
import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import Final

# Variants people write that ISO's names do not spell (folded as `_fold` folds them).
_VARIANTS: Final[dict[str, tuple[str, ...]]] = {
    "US": ("USA", "U.S.A.", "U.S.", "America", "United States of America", "United States America"),
    "GB": (
        "UK",
        "U.K.",
        "Great Britain",
        "Britain",
        "England",
        "Scotland",
        "Wales",
        "Northern Ireland",
        "United Kingdom of Great Britain and Northern Ireland",
    ),
    "AE": ("UAE", "U.A.E.", "Emirates"),
    "KR": ("South Korea", "Republic of Korea", "Korea South", "Korea (South)"),
    "KP": ("North Korea", "Korea North", "Korea (North)", "DPRK"),
    "RU": ("Russia",),
    "VN": ("Vietnam",),
    "LA": ("Laos",),
    "SY": ("Syria",),
    "CZ": ("Czech Republic",),
    "MK": ("Macedonia",),
    "CI": ("Ivory Coast",),
    "CV": ("Cape Verde",),
    "SZ": ("Swaziland",),
    "MM": ("Burma",),
    "TR": ("Turkey", "Türkiye", "Turkiye"),
    "CD": ("DR Congo", "DRC", "Congo-Kinshasa", "Democratic Republic of the Congo"),
    "CG": ("Congo-Brazzaville", "Republic of the Congo"),
    "PS": ("Palestine",),
    "VA": ("Vatican", "Vatican City"),
    "HK": ("Hong Kong SAR",),
    "MO": ("Macau", "Macao SAR"),
    "IN": ("Bharat",),
    "XK": ("Kosovo", "XK"),  # not in ISO-3166, but a phone region
    "SA": ("KSA", "Saudi"),
    # Names countries give themselves, as exports from local tools write them.
    "BR": ("Brasil",),
    "ES": ("España", "Espana"),
    "DE": ("Deutschland",),
    "MX": ("México",),
    "IT": ("Italia",),
    "AT": ("Österreich", "Osterreich"),
    "CH": ("Schweiz", "Suisse", "Svizzera"),
    "NL": ("Holland", "The Netherlands", "Nederland"),
    "BE": ("België", "Belgique"),
    "PL": ("Polska",),
    "SE": ("Sverige",),
    "NO": ("Norge",),
    "DK": ("Danmark",),
    "FI": ("Suomi",),
    "IE": ("Éire", "Eire"),
    "GR": ("Hellas", "Ellada"),
    "JP": ("Nippon", "Nihon"),
    "CN": ("Zhongguo", "PRC", "Mainland China"),
    "HR": ("Hrvatska",),
    "HU": ("Magyarország", "Magyarorszag"),
}
# Exports cut long names at 20 characters ("United States of Ame"); a short start ("West", "Braz")
# is a word or a typo, not a name cut short, and is not guessed.
_MIN_PREFIX: Final = 12
_NON_LETTERS: Final = re.compile(r"[^a-z]+")


def _fold(text: str) -> str:
    """``Côte d'Ivoire`` -> ``cotedivoire``: no case, accents, spaces or punctuation; ``The Gambia``
    is ``Gambia`` and ``St. Lucia`` is ``Saint Lucia``."""
    decomposed = unicodedata.normalize("NFKD", text.casefold().strip())
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    plain = _SAINT.sub("saint ", _THE.sub("", plain))
    return _NON_LETTERS.sub("", plain)


_THE: Final = re.compile(r"^the\s+")
# A two-letter code as people write one: the letters alone, or U.S. / U.K. with their dots.
_CODE_AS_WRITTEN: Final = re.compile(r"[A-Za-z]{2}|[Uu]\.[SsKk]\.?")
_SAINT: Final = re.compile(r"\bst\.?\s+")


def _name_forms(name: str) -> list[str]:
    """``Korea, Republic of`` -> itself, ``Republic of Korea`` and, if unique later, ``Korea``."""
    forms = [name]
    without_brackets = re.sub(r"\s*\([^)]*\)", "", name).strip()
    if without_brackets != name:
        forms.append(without_brackets)
    if "," in without_brackets:
        head, tail = (part.strip() for part in without_brackets.split(",", 1))
        forms += [f"{tail} {head}", head]
    return forms


@dataclass(frozen=True, slots=True)
class _Index:
    """Country names and codes, folded, to look an alpha-2 up by."""

    exact: dict[str, str]  # folded name or code -> alpha-2
    names: list[str]  # sorted folded names, for cut-short lookups
    regions: list[str]  # the alpha-2 of each entry of names


@functools.cache
def _index() -> _Index:
    import pycountry  # only when a country is first looked up, not at import

    found: dict[str, set[str]] = {}
    # Cut-short names are matched on short and common names only: the start of an official name
    # ("Eastern Republic of Uruguay") is a word like "East", not a country.
    prefixable: set[str] = set()

    def add(text: str | None, code: str, *, prefix: bool = False) -> None:
        if text:
            found.setdefault(_fold(text), set()).add(code)
            if prefix:
                prefixable.add(_fold(text))

    for country in pycountry.countries:
        code = country.alpha_2
        add(code, code)
        add(country.alpha_3, code)
        for attribute in ("name", "official_name", "common_name"):
            for form in _name_forms(getattr(country, attribute, "") or ""):
                add(form, code, prefix=attribute != "official_name")
    for code, variants in _VARIANTS.items():
        for variant in variants:
            found[_fold(variant)] = {code}  # a variant is meant as one country: it wins
            prefixable.add(_fold(variant))
    # A name shared by two countries ("Korea", "Virgin Islands", "Congo") names neither.
    exact = {key: next(iter(codes)) for key, codes in found.items() if key and len(codes) == 1}
    names = sorted(key for key in exact if len(key) > 3 and key in prefixable)
    return _Index(exact=exact, names=names, regions=[exact[name] for name in names])


def country_code(text: str) -> str | None:
    """The alpha-2 code of a country as written, or None when it names no country we know."""
    key = _fold(text)
    if not key:
        return None
    if len(key) == 2 and not _CODE_AS_WRITTEN.fullmatch(text.strip()):
        return None  # "N.A.", "#NA", "-NA-" are not Namibia's code but "not available"
    index = _index()
    code = index.exact.get(key)
    if code is not None or len(key) < _MIN_PREFIX:
        return code
    # Cut short: every known name that starts with it must be the same country.
    start = bisect.bisect_left(index.names, key)
    end = bisect.bisect_left(index.names, key + "\x7f", lo=start)
    codes = set(index.regions[start:end])
    return codes.pop() if len(codes) == 1 else None
