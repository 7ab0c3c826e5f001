"""Curated universes: load and validate the ``universes/<name>.toml`` files.

A universe is a themed list of Yahoo symbols with per-member metadata: exchange, trading currency,
countries, value-chain stages, elements, status, sources and a confidence flag. Parsing validates the
whole file and reports every problem it finds at once, one line each, in the form
``<path>: member <i> (<ticker>): <problem>``; every failure (missing file, TOML syntax, wrong types,
unknown vocabulary) is a `UniverseError`. The schema and vocabularies are documented in
``docs/universes.md``.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from screener.exceptions import DataError, UniverseError
from screener.markets import currency_unit, exchange_of, fx_route, load_markets
from screener.paths import universes_dir

__all__ = [
    "CONFIDENCE",
    "COUNTRIES",
    "ELEMENTS",
    "STAGES",
    "STATUSES",
    "Listing",
    "Member",
    "Universe",
    "list_universes",
    "load_universe",
    "parse_universe",
]

# ---------------------------------------------------------------------------------------------------------
# Vocabularies
# ---------------------------------------------------------------------------------------------------------

#: Value-chain stages. ``separation`` covers separation and refining, including smelting and refining of
#: Ga, Ge, Sb and Li; ``metal`` is metal and alloy making; ``magnet`` covers magnets, components and
#: substrates; ``end_use`` is the demand side.
STAGES: tuple[str, ...] = ("mining", "separation", "metal", "magnet", "recycling", "end_use")

#: Project status, from most to least advanced.
STATUSES: tuple[str, ...] = ("producing", "construction", "development", "exploration")

#: How far a member's facts can be trusted (the legend of ``reference/supply_risk_facts.md``).
CONFIDENCE: tuple[str, ...] = ("high", "medium", "low")

#: Chemical symbols of the periodic table in atomic-number order, plus ``"graphite"``.
ELEMENTS: tuple[str, ...] = (
    *"""H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se Br Kr
    Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy Ho Er Tm Yb
    Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf Es Fm Md No Lr Rf
    Db Sg Bh Hs Mt Ds Rg Cn Nh Fl Mc Lv Ts Og""".split(),
    "graphite",
)

#: Country and territory names: English short names, spelled as in ``reference/countries.csv`` where it
#: has the country (so "Myanmar", "Congo (Kinshasa)" and the World Bank's "Taiwan, China").
COUNTRIES: tuple[str, ...] = tuple(
    sorted(
        (name.strip() for name in """\
Afghanistan|Albania|Algeria|Andorra|Angola|Antigua and Barbuda|Argentina|Armenia|Australia|Austria|
Azerbaijan|Bahamas|Bahrain|Bangladesh|Barbados|Belarus|Belgium|Belize|Benin|Bermuda|Bhutan|Bolivia|
Bosnia and Herzegovina|Botswana|Brazil|British Virgin Islands|Brunei|Bulgaria|Burkina Faso|Burundi|
Cabo Verde|Cambodia|Cameroon|Canada|Cayman Islands|Central African Republic|Chad|Chile|China|
Colombia|Comoros|Congo (Brazzaville)|Congo (Kinshasa)|Costa Rica|Côte d'Ivoire|Croatia|Cuba|Cyprus|
Czechia|Denmark|Djibouti|Dominica|Dominican Republic|Ecuador|Egypt|El Salvador|Equatorial Guinea|
Eritrea|Estonia|Eswatini|Ethiopia|Fiji|Finland|France|French Guiana|Gabon|Gambia|Georgia|Germany|
Ghana|Greece|Greenland|Grenada|Guatemala|Guernsey|Guinea|Guinea-Bissau|Guyana|Haiti|Honduras|
Hong Kong|Hungary|Iceland|India|Indonesia|Iran|Iraq|Ireland|Isle of Man|Israel|Italy|Jamaica|Japan|
Jersey|Jordan|Kazakhstan|Kenya|Kiribati|Kosovo|Kuwait|Kyrgyzstan|Laos|Latvia|Lebanon|Lesotho|
Liberia|Libya|Liechtenstein|Lithuania|Luxembourg|Macao|Madagascar|Malawi|Malaysia|Maldives|Mali|
Malta|Marshall Islands|Mauritania|Mauritius|Mexico|Micronesia|Moldova|Monaco|Mongolia|Montenegro|
Morocco|Mozambique|Myanmar|Namibia|Nauru|Nepal|Netherlands|New Caledonia|New Zealand|Nicaragua|
Niger|Nigeria|North Korea|North Macedonia|Norway|Oman|Pakistan|Palau|Panama|Papua New Guinea|
Paraguay|Peru|Philippines|Poland|Portugal|Puerto Rico|Qatar|Romania|Russia|Rwanda|
Saint Kitts and Nevis|Saint Lucia|Saint Vincent and the Grenadines|Samoa|San Marino|
São Tomé and Príncipe|Saudi Arabia|Senegal|Serbia|Seychelles|Sierra Leone|Singapore|Slovakia|
Slovenia|Solomon Islands|Somalia|South Africa|South Korea|South Sudan|Spain|Sri Lanka|Sudan|
Suriname|Sweden|Switzerland|Syria|Taiwan, China|Tajikistan|Tanzania|Thailand|Timor-Leste|Togo|Tonga|
Trinidad and Tobago|Tunisia|Turkey|Turkmenistan|Tuvalu|Uganda|Ukraine|United Arab Emirates|
United Kingdom|United States|Uruguay|Uzbekistan|Vanuatu|Venezuela|Vietnam|Yemen|Zambia|Zimbabwe""".split("|")),
        # Alphabetical ignoring accents, so "Côte d'Ivoire" sits between Costa Rica and Croatia.
        key=lambda name: unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode(),
    )
)

# Common alternative spellings, used only to suggest the accepted one (they are not accepted as such:
# one spelling per country keeps joins with reference/countries.csv exact).
_COUNTRY_ALIASES: Mapping[str, str] = {
    "usa": "United States", "us": "United States", "u.s.": "United States",
    "united states of america": "United States", "america": "United States",
    "uk": "United Kingdom", "great britain": "United Kingdom", "britain": "United Kingdom",
    "england": "United Kingdom", "scotland": "United Kingdom", "wales": "United Kingdom",
    "burma": "Myanmar", "burma (myanmar)": "Myanmar",
    "taiwan": "Taiwan, China", "chinese taipei": "Taiwan, China", "republic of china": "Taiwan, China",
    "korea": "South Korea", "korea, republic of": "South Korea", "republic of korea": "South Korea",
    "korea, rep.": "South Korea", "korea, south": "South Korea",
    "drc": "Congo (Kinshasa)", "dr congo": "Congo (Kinshasa)", "dem. rep. congo": "Congo (Kinshasa)",
    "democratic republic of the congo": "Congo (Kinshasa)", "congo, dem. rep.": "Congo (Kinshasa)",
    "republic of the congo": "Congo (Brazzaville)", "congo, rep.": "Congo (Brazzaville)",
    "russian federation": "Russia", "viet nam": "Vietnam", "czech republic": "Czechia",
    "türkiye": "Turkey", "turkiye": "Turkey", "lao pdr": "Laos", "iran, islamic rep.": "Iran",
    "bvi": "British Virgin Islands", "hong kong sar": "Hong Kong", "hong kong, china": "Hong Kong",
    "prc": "China", "people's republic of china": "China", "mainland china": "China",
    "holland": "Netherlands", "the netherlands": "Netherlands", "swaziland": "Eswatini",
    "cape verde": "Cabo Verde", "east timor": "Timor-Leste", "macedonia": "North Macedonia",
    "ivory coast": "Côte d'Ivoire", "cote d'ivoire": "Côte d'Ivoire", "macau": "Macao",
    "uae": "United Arab Emirates", "sao tome and principe": "São Tomé and Príncipe",
}

_STAGE_ALIASES: Mapping[str, str] = {
    "mine": "mining", "concentrate": "mining", "extraction": "mining",
    "refining": "separation", "smelting": "separation", "processing": "separation",
    "cracking": "separation", "leaching": "separation", "cracking/leaching": "separation",
    "alloy": "metal", "metals": "metal", "metal/alloy": "metal",
    "magnets": "magnet", "component": "magnet", "components": "magnet", "substrate": "magnet",
    "substrates": "magnet", "end-use": "end_use", "end use": "end_use", "demand": "end_use",
    "recycle": "recycling",
}

_STATUS_ALIASES: Mapping[str, str] = {
    "production": "producing", "operating": "producing", "producer": "producing",
    "commissioning": "construction", "under construction": "construction",
    "demonstration": "development", "pilot": "development", "feasibility": "development",
    "pre-fid": "development", "explorer": "exploration",
}

_EXCHANGE_ALIASES: Mapping[str, str] = {
    "nyse american": "NYSE_AMERICAN", "nyseamerican": "NYSE_AMERICAN", "amex": "NYSE_AMERICAN",
    "nyse mkt": "NYSE_AMERICAN", "nysemkt": "NYSE_AMERICAN", "arca": "NYSE_ARCA", "nyse arca": "NYSE_ARCA",
    "otcqb": "OTC", "otcqx": "OTC", "otc pink": "OTC", "pink": "OTC", "otc markets": "OTC",
    "tsx venture": "TSXV", "tsx-v": "TSXV", "tsx.v": "TSXV", "cve": "TSXV", "aim": "LSE",
    "shanghai": "SSE", "shenzhen": "SZSE", "chinext": "SZSE", "hkse": "HKEX", "sehk": "HKEX",
    "tyo": "TSE", "jpx": "TSE", "euronext brussels": "EBR", "bru": "EBR", "santiago": "SSX",
}

_ELEMENT_ALIASES: Mapping[str, str] = {
    "ree": "individual symbols such as 'La', 'Ce', 'Nd', 'Pr', 'Dy', 'Tb'",
    "ndpr": "'Nd' and 'Pr'", "pgm": "individual symbols such as 'Pt', 'Pd', 'Rh'",
    "lithium": "Li", "gallium": "Ga", "germanium": "Ge", "antimony": "Sb", "tungsten": "W",
    "neodymium": "Nd", "praseodymium": "Pr", "dysprosium": "Dy", "terbium": "Tb", "cobalt": "Co",
    "nickel": "Ni", "uranium": "U", "yttrium": "Y", "scandium": "Sc", "samarium": "Sm",
    "lanthanum": "La", "cerium": "Ce", "europium": "Eu", "gadolinium": "Gd", "niobium": "Nb",
    "tantalum": "Ta", "zirconium": "Zr", "copper": "Cu", "zinc": "Zn", "lead": "Pb", "gold": "Au",
    "silver": "Ag", "indium": "In", "tellurium": "Te", "bismuth": "Bi", "manganese": "Mn",
    "titanium": "Ti", "vanadium": "V", "tin": "Sn", "iron": "Fe", "platinum": "Pt", "palladium": "Pd",
    "natural graphite": "graphite", "synthetic graphite": "graphite",
}

_TOP_REQUIRED: tuple[str, ...] = ("name", "title", "base_currency", "benchmarks", "as_of", "members")
_TOP_KEYS: tuple[str, ...] = (
    "name", "title", "description", "base_currency", "benchmarks", "as_of", "members",
)
_MEMBER_REQUIRED: tuple[str, ...] = (
    "ticker", "name", "exchange", "currency", "country", "asset_countries", "stages", "elements", "status",
    "sources", "confidence",
)
_MEMBER_KEYS: tuple[str, ...] = (
    *_MEMBER_REQUIRED, "first_trade_date", "alt_listings", "planned_stages", "planned_elements", "notes",
)
_LISTING_REQUIRED: tuple[str, ...] = ("ticker", "exchange", "currency")
_LISTING_KEYS: tuple[str, ...] = (*_LISTING_REQUIRED, "note")

# Members are equities: upper-case Yahoo symbols such as "LYC.AX", "600111.SS", "SQM-B.SN".
_TICKER_RE = re.compile(r"[A-Z0-9][A-Z0-9.\-]{0,23}")
# Benchmarks may also be indices ("^GSPC").
_BENCHMARK_RE = re.compile(r"\^?[A-Z0-9][A-Z0-9.\-=]{0,23}")
# Pseudo-exchanges that cannot hold an equity.
_NOT_FOR_MEMBERS = frozenset({"FX"})


# ---------------------------------------------------------------------------------------------------------
# Data model
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Listing:
    """Another line of a member's shares: an ADR, an OTC line or a second exchange.

    Parameters
    ----------
    ticker : str
        Yahoo symbol of the line, e.g. ``"LYSDY"``.
    exchange : str
        Exchange code from ``universes/_markets.toml``.
    currency : str
        Trading currency as Yahoo quotes it (``"GBp"`` for London pence).
    note : str, default ""
        What the line is ("sponsored ADR, 1:1").
    """

    ticker: str
    exchange: str
    currency: str
    note: str = ""

    def to_dict(self) -> dict[str, str]:
        """Return the listing as a JSON-ready dict with keys ticker, exchange, currency, note."""
        return {
            "ticker": self.ticker, "exchange": self.exchange, "currency": self.currency, "note": self.note,
        }


@dataclass(frozen=True)
class Member:
    """One equity in a universe and the facts that describe it (see ``docs/universes.md``).

    Parameters
    ----------
    ticker, name, exchange, currency : str
        Yahoo symbol, company name, exchange code and trading currency of the primary line.
    country : str
        Headquarters country (a name from `COUNTRIES`).
    asset_countries : tuple of str
        Countries of the operations and projects.
    stages : tuple of str
        Value-chain stages of the main business (from `STAGES`).
    elements : tuple of str
        Chemical symbols (or ``"graphite"``) the business is exposed to.
    status : str
        Most advanced status of the main business (from `STATUSES`).
    sources : tuple of str
        Where the facts come from (text and URL).
    confidence : str
        ``"high"``, ``"medium"`` or ``"low"``.
    first_trade_date : date or None, default None
        First day the shares traded as this company under this symbol, when known (earlier rows of a
        price series may be a SPAC shell or a pre-split company).
    alt_listings : tuple of Listing, default ()
        Other lines of the same shares.
    planned_stages, planned_elements : tuple of str, default ()
        Stages and elements announced but not operating.
    notes : str, default ""
        Free text: context, mixed statuses, facts still to verify.
    """

    ticker: str
    name: str
    exchange: str
    currency: str
    country: str
    asset_countries: tuple[str, ...]
    stages: tuple[str, ...]
    elements: tuple[str, ...]
    status: str
    sources: tuple[str, ...]
    confidence: str
    first_trade_date: date | None = None
    alt_listings: tuple[Listing, ...] = ()
    planned_stages: tuple[str, ...] = ()
    planned_elements: tuple[str, ...] = ()
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the member as a JSON-ready dict (lists for tuples, ISO string or None for the date)."""
        return {
            "ticker": self.ticker,
            "name": self.name,
            "exchange": self.exchange,
            "currency": self.currency,
            "country": self.country,
            "asset_countries": list(self.asset_countries),
            "stages": list(self.stages),
            "elements": list(self.elements),
            "status": self.status,
            "sources": list(self.sources),
            "confidence": self.confidence,
            "first_trade_date": self.first_trade_date.isoformat() if self.first_trade_date else None,
            "alt_listings": [listing.to_dict() for listing in self.alt_listings],
            "planned_stages": list(self.planned_stages),
            "planned_elements": list(self.planned_elements),
            "notes": self.notes,
        }


@dataclass(frozen=True)
class Universe:
    """A validated universe file.

    Parameters
    ----------
    name : str
        Identifier; equals the file stem for shipped universes.
    title, description : str
        Human-readable title and description.
    base_currency : str
        ISO currency the universe's returns are expressed in.
    benchmarks : tuple of str
        Yahoo symbols of the benchmark funds, first one primary.
    members : tuple of Member
        Members in file order.
    as_of : date
        When the membership and facts were last reviewed.
    path : str
        File the universe was read from (``"<string>"`` when parsed from text).
    """

    name: str
    title: str
    description: str
    base_currency: str
    benchmarks: tuple[str, ...]
    members: tuple[Member, ...]
    as_of: date
    path: str

    @property
    def tickers(self) -> tuple[str, ...]:
        """Primary Yahoo symbols of the members, in file order."""
        return tuple(m.ticker for m in self.members)

    def mask_unlisted(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Copy of a date x ticker frame with values before each member's `first_trade_date` set to NaN.

        Some symbols carry an earlier security's history (a SPAC shell trading near $10 before the merger);
        those rows are not the member's prices.
        """
        out = frame.copy()
        for m in self.members:
            if m.first_trade_date is not None and m.ticker in out.columns:
                out.loc[out.index < pd.Timestamp(m.first_trade_date), m.ticker] = np.nan
        return out

    @property
    def currencies(self) -> dict[str, str]:
        """Trading currency of each member's primary listing, by ticker."""
        return {m.ticker: m.currency for m in self.members}

    def member(self, ticker: str) -> Member:
        """Return the member whose primary symbol, or one of whose alternative listings, is `ticker`.

        Parameters
        ----------
        ticker : str
            Yahoo symbol, e.g. ``"LYC.AX"`` or its ADR ``"LYSDY"``.

        Returns
        -------
        Member

        Raises
        ------
        UniverseError
            When no member has that symbol; the message suggests close symbols.
        """
        for m in self.members:
            if m.ticker == ticker:
                return m
        for m in self.members:
            if any(listing.ticker == ticker for listing in m.alt_listings):
                return m
        hint = _did_you_mean(str(ticker), self.tickers)
        raise UniverseError(f"universe '{self.name}' has no member '{ticker}'{hint}")

    def to_frame(self) -> pd.DataFrame:
        """Return one row per member, indexed by ticker.

        Returns
        -------
        DataFrame of shape (n_members, 15)
            Index named ``ticker`` in file order; one column per other `Member` field. List fields are
            tuples; ``alt_listings`` is a tuple of dicts (ticker, exchange, currency, note);
            ``first_trade_date`` is datetime64 with NaT where unknown.
        """
        columns: dict[str, list[Any]] = {f.name: [] for f in fields(Member) if f.name != "ticker"}
        for m in self.members:
            for key in columns:
                value = getattr(m, key)
                if key == "alt_listings":
                    value = tuple(listing.to_dict() for listing in value)
                columns[key].append(value)
        frame = pd.DataFrame(columns, index=pd.Index(list(self.tickers), name="ticker"))
        frame["first_trade_date"] = pd.to_datetime(frame["first_trade_date"])
        return frame

    def to_dict(self) -> dict[str, Any]:
        """Return the universe as a JSON-ready dict (the shape scripts and the app rely on).

        Returns
        -------
        dict
            Keys name, title, description, base_currency, benchmarks (list), as_of (ISO date) and
            members (list of dicts, see `Member.to_dict`).
        """
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "base_currency": self.base_currency,
            "benchmarks": list(self.benchmarks),
            "as_of": self.as_of.isoformat(),
            "members": [m.to_dict() for m in self.members],
        }


# ---------------------------------------------------------------------------------------------------------
# Validation helpers
# ---------------------------------------------------------------------------------------------------------


def _did_you_mean(value: str, choices: Iterable[str], aliases: Mapping[str, str] | None = None) -> str:
    """Return ``"; did you mean 'X'?"`` for the closest choice, or ``""``."""
    choices = list(choices)
    folded = value.strip().casefold()
    if aliases and folded in aliases:
        target = aliases[folded]
        # An alias maps to an accepted value, or to a hint such as "'Nd' and 'Pr'" for a group name.
        return f"; did you mean '{target}'?" if target in choices else f"; did you mean {target}?"
    for choice in choices:
        if choice.casefold() == folded or choice.casefold() == folded.replace(" ", "_"):
            return f"; did you mean '{choice}'?"
    lowered = {c.casefold(): c for c in choices}
    close = difflib.get_close_matches(folded, list(lowered), n=1, cutoff=0.6)
    return f"; did you mean '{lowered[close[0]]}'?" if close else ""


def _describe(value: Any) -> str:
    """Name a TOML value's type for an error message, with a short excerpt of the value."""
    names = {
        str: "string", int: "integer", float: "float", bool: "boolean", list: "array", dict: "table",
        date: "date", datetime: "date-time",
    }
    kind = names.get(type(value), type(value).__name__)
    text = repr(value)
    return f"{kind} {text[:60] + '...' if len(text) > 60 else text}"


def _short(value: str) -> str:
    return value if len(value) <= 60 else value[:57] + "..."


class _Checker:
    """Collects problems for one file; `where` prefixes locate them (``"member 3 (ABC): "``)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[str] = []

    def add(self, where: str, problem: str) -> None:
        self.problems.append(f"{self.path}: {where}{problem}")

    def require(self, raw: Mapping[str, Any], keys: tuple[str, ...], where: str) -> None:
        missing = [k for k in keys if k not in raw]
        if missing:
            plural = "s" if len(missing) > 1 else ""
            self.add(where, f"missing required key{plural} {', '.join(f'`{k}`' for k in missing)}")

    def text(self, raw: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
        # An absent key is reported once by `require`; `required` here means "must not be empty".
        if key not in raw:
            return None
        value = raw[key]
        if not isinstance(value, str):
            self.add(where, f"`{key}` must be a string, got {_describe(value)}")
            return None
        if required and not value.strip():
            self.add(where, f"`{key}` must not be empty")
            return None
        return value

    def text_list(
        self, raw: Mapping[str, Any], key: str, where: str, *, required: bool = True,
    ) -> tuple[str, ...] | None:
        if key not in raw:
            return None if required else ()
        value = raw[key]
        if not isinstance(value, list):
            example = f'{key} = ["{value}"]' if isinstance(value, str) else f'{key} = ["..."]'
            self.add(where, f"`{key}` must be a list of strings (e.g. {example}), got {_describe(value)}")
            return None
        bad = [v for v in value if not isinstance(v, str) or not v.strip()]
        if bad:
            self.add(where, f"`{key}` must contain only non-empty strings, got {_describe(bad[0])}")
            return None
        if required and not value:
            self.add(where, f"`{key}` must not be empty")
            return None
        seen: set[str] = set()
        for v in value:
            if v in seen:
                self.add(where, f"`{key}` lists '{_short(v)}' twice")
                return None
            seen.add(v)
        return tuple(value)

    def vocab(
        self, values: tuple[str, ...] | None, vocabulary: tuple[str, ...], label: str, where: str,
        aliases: Mapping[str, str] | None = None, expected: str | None = None,
    ) -> tuple[str, ...] | None:
        """Check every value is in `vocabulary`; `label` names the field in messages ("stage")."""
        if values is None:
            return None
        ok = True
        allowed = set(vocabulary)
        shown = expected if expected is not None else "expected one of: " + ", ".join(vocabulary)
        for v in values:
            if v not in allowed:
                hint = _did_you_mean(v, vocabulary, aliases)
                self.add(where, f"unknown {label} '{_short(v)}'; {shown}{hint}")
                ok = False
        return values if ok else None

    def date_value(self, raw: Mapping[str, Any], key: str, where: str) -> date | None:
        if key not in raw:
            return None
        value = raw[key]
        if isinstance(value, datetime) or not isinstance(value, date):
            hint = " (write the date unquoted)" if isinstance(value, str) else ""
            self.add(where, f"`{key}` must be a TOML date such as 2025-03-14{hint}, got {_describe(value)}")
            return None
        return value

    def unknown_keys(self, raw: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
        for key in raw:
            if key not in allowed:
                hint = _did_you_mean(key, allowed)
                self.add(where, f"unknown key `{_short(key)}`; expected one of: {', '.join(allowed)}{hint}")


def _currencies() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Return (quote currencies, ISO currencies) that `fx_route` can convert to USD."""
    markets = load_markets()
    candidates = {"USD"}
    candidates |= {ex.currency for ex in markets.exchanges.values() if ex.currency}
    candidates |= {c for fx in markets.fx.values() for c in (fx.base_currency, fx.quote_currency)}
    convertible = set()
    for c in candidates:
        try:
            fx_route(c, "USD")
        except DataError:
            continue
        convertible.add(c)
    iso = tuple(sorted(c for c in convertible if currency_unit(c) == (c, 1.0)))
    return tuple(sorted(convertible)), iso


def _check_listing_line(
    check: _Checker, where: str, ticker: str | None, exchange: str | None, currency: str | None,
    exchange_codes: tuple[str, ...], quote_currencies: tuple[str, ...],
) -> tuple[str | None, str | None, str | None]:
    """Validate a (ticker, exchange, currency) triple; return it with bad parts set to None."""
    if ticker is not None and not _TICKER_RE.fullmatch(ticker):
        upper = ticker.strip().upper()
        hint = f"; did you mean '{upper}'?" if _TICKER_RE.fullmatch(upper) else ""
        check.add(where, f"ticker '{_short(ticker)}' is not a Yahoo equity symbol (upper-case letters, "
                         f"digits, '.' and '-', e.g. 'LYC.AX', '600111.SS'){hint}")
        ticker = None
    if exchange is not None and exchange not in exchange_codes:
        hint = _did_you_mean(exchange, exchange_codes, _EXCHANGE_ALIASES)
        check.add(where, f"unknown exchange '{_short(exchange)}'; "
                         f"expected one of: {', '.join(exchange_codes)}{hint}")
        exchange = None
    if currency is not None and currency not in quote_currencies:
        hint = _did_you_mean(currency, quote_currencies)
        check.add(where, f"unknown currency '{_short(currency)}'; "
                         f"expected one of: {', '.join(quote_currencies)}{hint}")
        currency = None
    exchanges = load_markets().exchanges
    if ticker is not None and exchange is not None:
        expected = exchanges[exchange]
        inferred = exchange_of(ticker)
        if inferred.suffix != expected.suffix:
            if expected.suffix:
                check.add(where, f"ticker '{ticker}' does not match exchange '{exchange}': "
                                 f"{exchange} symbols end in '{expected.suffix}'")
            else:
                check.add(where, f"ticker '{ticker}' does not match exchange '{exchange}': the suffix "
                                 f"'{inferred.suffix}' is {inferred.code}'s; "
                                 f"{exchange} symbols have no suffix")
        elif not expected.suffix and "." in ticker:
            suffixes = ", ".join(f"{e.suffix} ({e.code})" for e in exchanges.values() if e.suffix)
            check.add(where, f"ticker '{ticker}' has a suffix that matches no exchange; "
                             f"known suffixes: {suffixes}")
    if currency is not None and exchange is not None:
        native = exchanges[exchange].currency
        # A London line quoted as "GBP" would be off by a factor of 100: catch the sub-unit mix-up.
        iso, scale = currency_unit(native)
        if currency != native and currency_unit(currency)[0] == iso:
            check.add(where, f"currency '{currency}' but {exchange} quotes in '{native}' "
                             f"({scale:g} {iso}); use currency = \"{native}\"")
    return ticker, exchange, currency


def _parse_member(
    raw: Any, index: int, check: _Checker, exchange_codes: tuple[str, ...], quote_currencies: tuple[str, ...],
) -> Member | None:
    """Validate one ``[[members]]`` table; return None (after recording problems) when it is invalid."""
    if not isinstance(raw, dict):
        check.add(f"member {index}: ", f"must be a table ([[members]]), got {_describe(raw)}")
        return None
    label = raw.get("ticker")
    label = _short(label) if isinstance(label, str) and label.strip() else "no ticker"
    where = f"member {index} ({label}): "
    before = len(check.problems)
    check.unknown_keys(raw, _MEMBER_KEYS, where)
    check.require(raw, _MEMBER_REQUIRED, where)

    ticker = check.text(raw, "ticker", where)
    name = check.text(raw, "name", where)
    exchange = check.text(raw, "exchange", where)
    currency = check.text(raw, "currency", where)
    ticker, exchange, currency = _check_listing_line(
        check, where, ticker, exchange, currency, exchange_codes, quote_currencies)

    country = check.text(raw, "country", where)
    if country is not None:
        check.vocab((country,), COUNTRIES, "country", where, _COUNTRY_ALIASES,
                    expected=f"expected one of the {len(COUNTRIES)} names in screener.universe.COUNTRIES")
    asset_countries = check.vocab(
        check.text_list(raw, "asset_countries", where), COUNTRIES, "asset country", where, _COUNTRY_ALIASES,
        expected=f"expected one of the {len(COUNTRIES)} names in screener.universe.COUNTRIES")
    stages = check.vocab(check.text_list(raw, "stages", where), STAGES, "stage", where, _STAGE_ALIASES)
    planned_stages = check.vocab(check.text_list(raw, "planned_stages", where, required=False), STAGES,
                                 "planned stage", where, _STAGE_ALIASES)
    element_hint = "expected a chemical symbol (e.g. 'Nd', 'Dy', 'Ga') or 'graphite'"
    elements = check.vocab(check.text_list(raw, "elements", where), ELEMENTS, "element", where,
                           _ELEMENT_ALIASES, expected=element_hint)
    planned_elements = check.vocab(check.text_list(raw, "planned_elements", where, required=False), ELEMENTS,
                                   "planned element", where, _ELEMENT_ALIASES, expected=element_hint)
    pairs = ((planned_stages, stages, "stages"), (planned_elements, elements, "elements"))
    for planned, actual, key in pairs:
        overlap = [v for v in planned or () if v in (actual or ())]
        if overlap:
            check.add(where, f"`planned_{key}` repeats {', '.join(repr(v) for v in overlap)} from `{key}`; "
                             f"list a value in one of them")

    status = check.text(raw, "status", where)
    if status is not None:
        check.vocab((status,), STATUSES, "status", where, _STATUS_ALIASES)
    sources = check.text_list(raw, "sources", where)
    confidence = check.text(raw, "confidence", where)
    if confidence is not None:
        check.vocab((confidence,), CONFIDENCE, "confidence", where)
    first_trade_date = check.date_value(raw, "first_trade_date", where)
    notes = check.text(raw, "notes", where, required=False)

    listings: list[Listing] = []
    if "alt_listings" in raw:
        alt = raw["alt_listings"]
        if not isinstance(alt, list):
            check.add(where, "`alt_listings` must be a list of inline tables "
                             "({ ticker = ..., exchange = ..., currency = ..., note = ... }), "
                             f"got {_describe(alt)}")
        else:
            for j, item in enumerate(alt, start=1):
                listing = _parse_listing(item, j, where, check, exchange_codes, quote_currencies)
                if listing is not None:
                    listings.append(listing)

    if len(check.problems) > before:
        return None
    return Member(
        ticker=ticker, name=name, exchange=exchange, currency=currency, country=country,
        asset_countries=asset_countries, stages=stages, elements=elements,
        status=status, sources=sources, confidence=confidence,
        first_trade_date=first_trade_date, alt_listings=tuple(listings),
        planned_stages=planned_stages or (), planned_elements=planned_elements or (), notes=notes or "",
    )


def _parse_listing(
    item: Any, j: int, member_where: str, check: _Checker, exchange_codes: tuple[str, ...],
    quote_currencies: tuple[str, ...],
) -> Listing | None:
    """Validate one entry of a member's ``alt_listings``."""
    if not isinstance(item, dict):
        check.add(member_where, f"alt_listings[{j}] must be an inline table, got {_describe(item)}")
        return None
    label = item.get("ticker")
    label = _short(label) if isinstance(label, str) and label.strip() else "no ticker"
    where = f"{member_where}alt_listings[{j}] ({label}): "
    before = len(check.problems)
    check.unknown_keys(item, _LISTING_KEYS, where)
    check.require(item, _LISTING_REQUIRED, where)
    ticker = check.text(item, "ticker", where)
    exchange = check.text(item, "exchange", where)
    currency = check.text(item, "currency", where)
    note = check.text(item, "note", where, required=False)
    ticker, exchange, currency = _check_listing_line(
        check, where, ticker, exchange, currency, exchange_codes, quote_currencies)
    if len(check.problems) > before:
        return None
    return Listing(ticker, exchange, currency, note or "")


def _parse(text: str | bytes, path: str, stored_path: str, expected_name: str | None) -> Universe:
    """Parse and validate universe TOML; `path` is shown in messages, `stored_path` kept on the result."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UniverseError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not isinstance(text, str):
        raise UniverseError(f"{path}: expected TOML text, got {type(text).__name__}")
    try:
        raw = tomllib.loads(text.removeprefix("\ufeff"))
    except tomllib.TOMLDecodeError as exc:
        raise UniverseError(f"{path}: TOML syntax error: {exc}") from None
    except RecursionError:
        raise UniverseError(f"{path}: TOML syntax error: values nested too deeply") from None

    check = _Checker(path)
    check.unknown_keys(raw, _TOP_KEYS, "")
    check.require(raw, _TOP_REQUIRED, "")
    name = check.text(raw, "name", "")
    if name is not None and expected_name is not None and name != expected_name:
        check.add("", f"`name` is '{_short(name)}' but a shipped universe's name must equal its file stem "
                      f"'{expected_name}'")
    title = check.text(raw, "title", "")
    description = check.text(raw, "description", "", required=False)
    as_of = check.date_value(raw, "as_of", "")

    quote_currencies, iso_currencies = _currencies()
    base_currency = check.text(raw, "base_currency", "")
    if base_currency is not None:
        if base_currency not in iso_currencies:
            hint = _did_you_mean(base_currency, iso_currencies)
            check.add("", f"unknown `base_currency` '{_short(base_currency)}' (no FX route to USD); "
                          f"expected one of: {', '.join(iso_currencies)}{hint}")

    benchmarks = check.text_list(raw, "benchmarks", "")
    for symbol in benchmarks or ():
        if not _BENCHMARK_RE.fullmatch(symbol):
            check.add("", f"benchmark '{_short(symbol)}' is not a Yahoo symbol (e.g. 'REMX', 'SPY')")

    exchange_codes = tuple(c for c in load_markets().exchanges if c not in _NOT_FOR_MEMBERS)
    members: list[Member] = []
    raw_members = raw.get("members")
    if "members" in raw:
        if not isinstance(raw_members, list):
            check.add("", f"`members` must be an array of tables ([[members]]), got {_describe(raw_members)}")
        elif not raw_members:
            check.add("", "`members` is empty; add at least one [[members]] table")
        else:
            for i, item in enumerate(raw_members, start=1):
                member = _parse_member(item, i, check, exchange_codes, quote_currencies)
                if member is None:
                    continue
                members.append(member)
                first = member.first_trade_date
                if as_of is not None and first is not None and first > as_of:
                    check.add(f"member {i} ({member.ticker}): ",
                              f"`first_trade_date` {first} is after the universe's `as_of` {as_of}")
            _check_duplicates(raw_members, check)

    if check.problems:
        raise UniverseError("\n".join(check.problems))
    return Universe(
        name=name, title=title, description=description or "", base_currency=base_currency,
        benchmarks=benchmarks, members=tuple(members), as_of=as_of, path=stored_path,
    )


def _check_duplicates(raw_members: list[Any], check: _Checker) -> None:
    """Record tickers used twice, as members or as alternative listings."""
    seen: dict[str, str] = {}
    for i, item in enumerate(raw_members, start=1):
        if not isinstance(item, dict) or not isinstance(item.get("ticker"), str):
            continue
        ticker = item["ticker"]
        where = f"member {i} ({_short(ticker)}): "
        if ticker in seen:
            check.add(where, f"duplicate ticker '{_short(ticker)}' (already {seen[ticker]})")
        else:
            seen[ticker] = f"member {i}"
        alt = item.get("alt_listings")
        for j, listing in enumerate(alt if isinstance(alt, list) else [], start=1):
            if not isinstance(listing, dict) or not isinstance(listing.get("ticker"), str):
                continue
            other = listing["ticker"]
            if other in seen:
                check.add(where, f"alt_listings[{j}]: duplicate ticker '{_short(other)}' "
                                 f"(already {seen[other]})")
            else:
                seen[other] = f"an alternative listing of member {i} ({_short(ticker)})"


# ---------------------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------------------


def parse_universe(text: str | bytes, path: str = "<string>") -> Universe:
    """Parse and validate universe TOML text (pure: no file access).

    Parameters
    ----------
    text : str or bytes
        The TOML document (bytes are decoded as UTF-8, e.g. an uploaded file).
    path : str, default "<string>"
        Name shown in error messages and stored as `Universe.path`.

    Returns
    -------
    Universe

    Raises
    ------
    UniverseError
        For any problem: TOML syntax (with line and column), missing or unknown keys, wrong types,
        unknown vocabulary, duplicate tickers, ticker suffixes that disagree with the exchange. All
        problems found are reported, one per line.
    """
    return _parse(text, str(path), str(path), expected_name=None)


def list_universes() -> list[str]:
    """Return the names of the shipped universes, sorted (files starting with ``_`` are not universes).

    Returns
    -------
    list of str
        File stems of ``universes/*.toml``.
    """
    directory = universes_dir()
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.glob("*.toml") if not p.name.startswith("_") and p.is_file())


def load_universe(name_or_path: str | os.PathLike[str]) -> Universe:
    """Load and validate a universe by shipped name (``"rare_earths"``) or by path to a ``.toml`` file.

    A string containing a path separator or ending in ``.toml``, or any path object, is a path; anything
    else is the name of a shipped universe. Results are cached per file and modification time.

    Parameters
    ----------
    name_or_path : str or path-like
        Universe name or file path.

    Returns
    -------
    Universe

    Raises
    ------
    UniverseError
        When the name is unknown (the message lists the available names), the file is missing or
        unreadable, or its content is invalid (see `parse_universe`).
    """
    if isinstance(name_or_path, os.PathLike):
        shown = os.fsdecode(os.fspath(name_or_path))
        is_path = True
    elif isinstance(name_or_path, str):
        shown = name_or_path
        separators = {"/", "\\", os.sep, os.altsep} - {None}
        is_path = any(sep in shown for sep in separators) or shown.endswith(".toml")
    else:
        kind = type(name_or_path).__name__
        raise UniverseError(f"`name_or_path` must be a universe name or a path, got {kind}")

    shipped_dir = universes_dir().resolve()
    if is_path:
        path = Path(shown).expanduser()
    else:
        available = list_universes()
        if shown not in available:
            hint = _did_you_mean(shown, available)
            raise UniverseError(
                f"unknown universe '{_short(shown)}'; available: {', '.join(available) or '(none)'}{hint} "
                f"(or pass a path to a .toml file)")
        path = shipped_dir / f"{shown}.toml"
        shown = str(path)
    try:
        resolved = path.resolve()
        stat = resolved.stat()
    except FileNotFoundError:
        raise UniverseError(f"{shown}: file not found") from None
    except (OSError, RuntimeError, ValueError) as exc:
        raise UniverseError(f"{shown}: cannot read universe file: {exc}") from None
    if not resolved.is_file():
        raise UniverseError(f"{shown}: not a file")
    expected_name = resolved.stem if resolved.parent == shipped_dir else None
    return _load_cached(str(resolved), stat.st_mtime_ns, stat.st_size, shown, expected_name)


@lru_cache(maxsize=64)
def _load_cached(resolved: str, mtime_ns: int, size: int, shown: str, expected_name: str | None) -> Universe:
    # mtime_ns and size are cache keys only: an edited file gets a new entry.
    del mtime_ns, size
    try:
        data = Path(resolved).read_bytes()
    except OSError as exc:
        raise UniverseError(f"{shown}: cannot read universe file: {exc.strerror or exc}") from None
    return _parse(data, shown, resolved, expected_name)
