"""Column checks of :mod:`layers.validate`: parse each column into its schema dtype.

Each ``coerce_*`` function takes the raw column, reports what is wrong (or repaired)
through a :class:`~layers._validate_core.Ctx`, and returns the cleaned column on the
same index, with unparseable cells set to missing. Work is vectorised, or done once
per *distinct* value (a column of 300,000 grid codes has about 1,000 of them).

Private: use :func:`layers.validate.validate`.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
import warnings
from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
import pandas as pd

from geo.domain import LOCAL_TZ
from layers._validate_core import Ctx, header, shown
from layers.schema import Field

_BLANKS = {"", "nan", "none", "null", "n/a", "na", "#n/a", "-", "--", "—"}
_SCI = re.compile(r"^[+]?(\d+)(?:\.(\d*))?[eE]\+?(\d+)$")
_DOT_ZERO = re.compile(r"^(\d+)\.0*$")
_DIGITS = re.compile(r"^\d+$")
#: First two digits of GB/T 2260 codes (provinces, municipalities, SARs, Taiwan).
PROVINCES: frozenset[str] = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 "
    "61 62 63 64 65 71 81 82".split()
)
_TRUE = {"true", "t", "1", "yes", "y", "是", "对", "可", "√", "1.0"}
_FALSE = {"false", "f", "0", "no", "n", "否", "不", "不可", "×", "0.0"}
#: Chinese (and other common) spellings of closed-set values.
SYNONYMS: dict[str, str] = {
    "综合网格": "comprehensive", "综合": "comprehensive",
    "专属网格": "dedicated", "专属": "dedicated",
    "网格长": "grid_leader", "专职": "full_time", "专职网格员": "full_time",
    "兼职": "part_time", "兼职网格员": "part_time",
    "a岗": "A", "b岗": "B",
    "12345": "hotline_12345", "12345热线": "hotline_12345", "热线": "hotline_12345",
    "巡查": "patrol", "随手拍": "resident_app", "传感器": "sensor",
    "无": "none", "工作推进哨": "work", "攻坚克难哨": "tough",
}
_PHONE = re.compile(r"^(?:\+?86[- ]?)?(?:1[3-9]\d{9}|0\d{2,3}-?\d{7,8}(?:-\d{1,6})?|\d{5,8})$")
_ID18 = re.compile(r"^\d{17}[\dX]$")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def blank_to_na(s: pd.Series, *, keep: Iterable[str] = ()) -> pd.Series:
    """Empty strings and spellings of "nothing" (``nan``, ``NULL``, ``-``...) become missing.

    Values in ``keep`` (a field's allowed values, e.g. the whistle kind ``"none"``) are never blanked.
    """
    blanks = _BLANKS - {k.strip().lower() for k in keep}
    if pd.api.types.is_object_dtype(s):
        codes, uniques = pd.factorize(s, use_na_sentinel=True)
        blank_u = np.array([isinstance(u, str) and u.strip().lower() in blanks for u in uniques]
                           + [False], dtype=bool)
        blank = blank_u[codes]
    elif pd.api.types.is_string_dtype(s):
        blank = s.str.strip().str.lower().isin(list(blanks)).to_numpy(dtype=bool, na_value=False)
    else:
        return s
    return s.mask(pd.Series(blank, index=s.index)) if blank.any() else s


def _all_text(s: pd.Series) -> bool:
    """True for a column of strings (string dtype, or object holding only str)."""
    if pd.api.types.is_object_dtype(s):
        return pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty")
    return pd.api.types.is_string_dtype(s)


def map_distinct(s: pd.Series, func: Callable[[Any], Any]) -> pd.Series:
    """Apply ``func`` once per distinct non-missing value; missing stays missing."""
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    mapped = np.array([func(u) for u in uniques] + [None], dtype=object)
    return pd.Series(mapped[codes], index=s.index, dtype=object)


def _nfkc(v: Any) -> str:
    return unicodedata.normalize("NFKC", str(v)).strip().strip("'\"").strip()


def parse_code(v: Any, digits: int) -> tuple[str | None, str | None, str]:
    """Parse one code cell: ``(digits or None, problem or None, origin)``.

    ``origin`` is ``"text"``, ``"int"`` or ``"float"`` (a float, or text such as
    ``3.2E+14`` / ``12.0`` that Excel or pandas made from a number).

    Problems: ``not_digits``, ``lost_digits`` (Excel scientific notation cut it),
    ``lost_zeros`` (a number shorter than the code: leading zeros gone), ``wrong_length``.

    Examples
    --------
    >>> parse_code(320106001001001.0, 15)
    ('320106001001001', None, 'float')
    >>> parse_code("3.20106E+14", 15)
    (None, 'lost_digits', 'float')
    >>> parse_code("32010600100100", 15)
    (None, 'wrong_length', 'text')
    """
    origin = "text"
    if isinstance(v, (bool, np.bool_)):
        return None, "not_digits", origin
    if isinstance(v, (int, np.integer)):
        text, origin = str(int(v)), "int"
    elif isinstance(v, (float, np.floating)):
        if not np.isfinite(v) or float(v) != int(v):
            return None, "not_digits", "float"
        text, origin = str(int(v)), "float"
    else:
        text = re.sub(r"\s+", "", _nfkc(v))
        if _DIGITS.match(text):
            pass
        elif m := _DOT_ZERO.match(text):
            text, origin = m.group(1), "float"
        elif m := _SCI.match(text):
            origin = "float"
            sig = len((m.group(1) + (m.group(2) or "")).lstrip("0").rstrip("0"))
            try:
                whole = Decimal(text)
            except InvalidOperation:  # pragma: no cover - the regex admits only numbers
                return None, "not_digits", origin
            if whole != whole.to_integral_value():
                return None, "not_digits", origin
            text = str(int(whole))
            # Excel shows 6 significant digits in scientific notation: the rest became zeros.
            if sig < digits and len(text) == digits and sig <= 6:
                return None, "lost_digits", origin
        else:
            return None, "not_digits", origin
    if len(text) != digits:
        short = origin != "text" and len(text) < digits
        return None, ("lost_zeros" if short else "wrong_length"), origin
    return text, None, origin


def coerce_code(ctx: Ctx, f: Field, s: pd.Series) -> pd.Series:
    """A ``code`` column: strings of exactly ``f.digits`` digits."""
    digits = int(f.digits or 0)
    parsed = map_distinct(s, lambda v: parse_code(v, digits))
    notna = s.notna().to_numpy()
    vals = np.array([p[0] if p is not None else None for p in parsed], dtype=object)
    probs = np.array([p[1] if p is not None else None for p in parsed], dtype=object)
    from_num = np.array([p is not None and p[2] == "float" for p in parsed], dtype=bool)
    raw = s.to_numpy(dtype=object)
    for prob in ("not_digits", "wrong_length", "lost_digits", "lost_zeros"):
        where = np.flatnonzero(notna & (probs == prob))
        if len(where):
            ctx.per_row("error", f"validation.code_{prob}", where, column=f.name,
                        params=lambda p: {"value": shown(raw[p], f), "digits": digits,
                                          "header": header(f)})
    repaired = np.flatnonzero(notna & from_num & (probs == None))  # noqa: E711
    if len(repaired):
        ctx.add("fixed", "validation.code_from_number", column=f.name, count=len(repaired),
                first_row=ctx.row(int(repaired[0])), header=header(f))
    out = pd.Series(vals, index=s.index, dtype="str")
    bad_prefix = np.flatnonzero(out.notna().to_numpy() & ~out.str.slice(0, 2).isin(list(PROVINCES)).to_numpy())
    if len(bad_prefix):
        vv = out.to_numpy(dtype=object)
        ctx.per_row("error", "validation.code_unknown_province", bad_prefix, column=f.name,
                    params=lambda p: {"value": shown(vv[p], f), "prefix": str(vv[p])[:2]})
    return out


def coerce_number(ctx: Ctx, f: Field, s: pd.Series) -> pd.Series:
    """An ``int`` (nullable ``Int64``) or ``float`` column, with min/max bounds."""
    if pd.api.types.is_bool_dtype(s):
        num = s.astype("float64")
        bad = np.zeros(len(s), dtype=bool)
    elif pd.api.types.is_numeric_dtype(s):
        num = s.astype("float64")
        bad = np.zeros(len(s), dtype=bool)
    else:
        num = pd.to_numeric(s, errors="coerce").astype("float64")
        retry = s.notna() & num.isna()
        if retry.any():  # full-width digits, thousands separators, spaces
            again = map_distinct(s[retry], lambda v: _nfkc(v).replace(",", "").replace("，", ""))
            num[retry] = pd.to_numeric(again, errors="coerce").astype("float64")
        bad = (s.notna() & num.isna()).to_numpy()
    raw = s.to_numpy(dtype=object)
    where = np.flatnonzero(bad)
    if len(where):
        ctx.per_row("error", "validation.not_a_number", where, column=f.name,
                    params=lambda p: {"value": shown(raw[p], f), "header": header(f)})
    arr = num.to_numpy(dtype="float64", na_value=np.nan)
    finite = np.isfinite(arr)
    inf = np.flatnonzero(~finite & ~np.isnan(arr))
    if len(inf):
        ctx.per_row("error", "validation.not_a_number", inf, column=f.name,
                    params=lambda p: {"value": shown(raw[p], f), "header": header(f)})
        arr = np.where(finite, arr, np.nan)
    if f.dtype == "int":
        frac = np.flatnonzero(finite & (np.floor(arr) != arr))
        if len(frac):
            ctx.per_row("error", "validation.not_whole_number", frac, column=f.name,
                        params=lambda p: {"value": shown(raw[p], f), "header": header(f)})
            arr = arr.copy()
            arr[frac] = np.nan
    lo = -np.inf if f.min is None else f.min
    hi = np.inf if f.max is None else f.max
    with np.errstate(invalid="ignore"):
        out_of = np.flatnonzero(~np.isnan(arr) & ((arr < lo) | (arr > hi)))
    if len(out_of):
        ctx.per_row("error", "validation.out_of_range", out_of, column=f.name,
                    params=lambda p: {"value": _num(arr[p]), "min": _num(f.min),
                                      "max": _num(f.max), "header": header(f)})
    if f.dtype == "int":
        return pd.Series(pd.array(np.where(np.isnan(arr), np.nan, arr), dtype="Float64"),
                         index=s.index).round().astype("Int64")
    return pd.Series(arr, index=s.index, dtype="float64")


def _num(x: float | None) -> str:
    if x is None:
        return "-"
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def coerce_bool(ctx: Ctx, f: Field, s: pd.Series) -> pd.Series:
    """A ``bool`` column (nullable ``boolean``): true/false, 1/0, yes/no, 是/否."""

    def one(v: Any) -> Any:
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
        low = _nfkc(v).lower()
        return True if low in _TRUE else False if low in _FALSE else "?"

    mapped = map_distinct(s, one)
    bad = np.flatnonzero((mapped == "?").to_numpy())
    raw = s.to_numpy(dtype=object)
    if len(bad):
        ctx.per_row("error", "validation.bad_bool", bad, column=f.name,
                    params=lambda p: {"value": shown(raw[p], f), "header": header(f)})
    return mapped.mask(mapped == "?").astype("boolean")


_ZH_DATE = (("年", "-"), ("月", "-"), ("日", " "), ("号", " "), ("时", ":"), ("点", ":"),
            ("分", ":"), ("秒", ""), ("/", "-"), ("T", " "))


def _date_text(v: Any) -> str:
    text = _nfkc(v)
    for a, b in _ZH_DATE:
        text = text.replace(a, b)
    text = re.sub(r"[\s:]+$", "", re.sub(r"\s+", " ", text))
    return text + ":00" if re.search(r"\d-\d{1,2} \d{1,2}$", text) else text


def coerce_datetime(ctx: Ctx, f: Field, s: pd.Series) -> pd.Series:
    """A ``datetime`` column: naive ``datetime64`` in local time (Asia/Shanghai).

    Excel serial numbers (days since 1899-12-30) are converted and reported as repaired;
    time-zone-aware values are converted to Asia/Shanghai.
    """
    raw = s.to_numpy(dtype=object)
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        out = s.dt.tz_convert(LOCAL_TZ).dt.tz_localize(None)
    elif pd.api.types.is_datetime64_dtype(s):
        out = s
    elif pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        out = _from_excel_serial(ctx, f, s.astype("float64"))
    else:
        out = _to_datetime(s)
        retry = out.isna() & s.notna()
        txt = s
        if retry.any():  # Chinese dates (2024年3月5日), mixed formats
            txt = s.astype(object).copy()
            txt[retry] = map_distinct(s[retry], lambda v: v if not isinstance(v, str) else _date_text(v))
            out = out.astype(object)
            out[retry] = _to_datetime(txt[retry])
            out = _to_datetime(out)
        retry = out.isna() & txt.notna()
        if retry.any():
            again = map_distinct(txt[retry], lambda v: _one_datetime(v))
            out = out.astype(object)
            out[retry] = again
            out = _to_datetime(out)
        still = out.isna() & s.notna()
        if still.any():  # numbers given as text, e.g. "45123.5" from a CSV
            nums = pd.to_numeric(txt[still], errors="coerce").astype("float64")
            if nums.between(1, 2958465).any():
                conv = _from_excel_serial(ctx, f, nums)
                out = out.copy()
                out[still] = conv.to_numpy()
    if isinstance(out.dtype, pd.DatetimeTZDtype):
        out = out.dt.tz_convert(LOCAL_TZ).dt.tz_localize(None)
    out = out.astype("datetime64[us]")
    bad = np.flatnonzero((out.isna() & s.notna()).to_numpy())
    if len(bad):
        ctx.per_row("error", "validation.bad_date", bad, column=f.name,
                    params=lambda p: {"value": shown(raw[p], f), "header": header(f)})
    return out


def _to_datetime(s: pd.Series) -> pd.Series:
    with warnings.catch_warnings():  # "could not infer format": failures are retried and reported
        warnings.simplefilter("ignore", UserWarning)
        try:
            out = pd.to_datetime(s, errors="coerce")
        except (ValueError, TypeError):  # mixed offsets or types
            out = pd.to_datetime(s, errors="coerce", utc=True, format="mixed")
    if isinstance(out.dtype, pd.DatetimeTZDtype):
        out = out.dt.tz_convert(LOCAL_TZ).dt.tz_localize(None)
    return out


def _one_datetime(v: Any) -> Any:
    try:
        ts = pd.Timestamp(v)
    except (ValueError, TypeError, OverflowError):
        return None
    if ts is pd.NaT:
        return None
    if ts.tzinfo is not None:
        ts = ts.tz_convert(LOCAL_TZ).tz_localize(None)
    return ts


def _from_excel_serial(ctx: Ctx, f: Field, days: pd.Series) -> pd.Series:
    ok = days.between(1, 2958465)
    out = pd.Series(pd.NaT, index=days.index, dtype="datetime64[us]")
    if ok.any():
        out[ok] = pd.Timestamp("1899-12-30") + pd.to_timedelta(days[ok].astype("float64"), unit="D")
        ctx.add("fixed", "validation.date_from_excel_serial", column=f.name,
                count=int(ok.sum()), header=header(f))
    return out


def coerce_str(ctx: Ctx, f: Field, s: pd.Series) -> pd.Series:
    """A ``str`` column; whole numbers written by Excel as ``12.0`` become ``"12"``."""
    if pd.api.types.is_float_dtype(s):
        arr = s.to_numpy(dtype="float64", na_value=np.nan)
        integral = np.isfinite(arr) & (np.floor(arr) == arr)
        txt = pd.Series([str(int(v)) if i else (None if np.isnan(v) else repr(v))
                         for v, i in zip(arr, integral, strict=True)], index=s.index, dtype="str")
        out = txt
    elif _all_text(s):
        out = s.astype("str").str.strip()
    else:
        out = map_distinct(s, _str_one).astype("str")
    if f.allowed:
        out = _check_allowed(ctx, f, out)
    return out


def _str_one(v: Any) -> str:
    if isinstance(v, (float, np.floating)) and np.isfinite(v) and float(v).is_integer():
        return str(int(v))
    return str(v).strip()


def _check_allowed(ctx: Ctx, f: Field, s: pd.Series) -> pd.Series:
    allowed = tuple(f.allowed or ())
    arr = s.to_numpy(dtype=object)
    bad_pos = np.flatnonzero((s.notna() & ~s.isin(allowed)).to_numpy())
    if not len(bad_pos):
        return s
    lookup = {a.casefold(): a for a in allowed}
    width = len(allowed[0]) if allowed and all(a.isdigit() and len(a) == len(allowed[0])
                                                for a in allowed) else 0

    def fix(v: str) -> str | None:
        key = unicodedata.normalize("NFKC", v).strip().casefold().replace(" ", "_").replace("-", "_")
        for cand in (key, v.strip()):
            if cand in lookup:
                return lookup[cand]
            if cand in SYNONYMS and SYNONYMS[cand] in allowed:
                return SYNONYMS[cand]
        if width and key.isdigit() and key.zfill(width) in allowed:
            return key.zfill(width)
        return None

    fixed = map_distinct(pd.Series(arr[bad_pos], dtype=object), fix).to_numpy(dtype=object)
    rep = np.array([v is not None for v in fixed], dtype=bool)
    out = arr.copy()
    if rep.any():
        out[bad_pos[rep]] = fixed[rep]
        ctx.add("fixed", "validation.value_normalized", column=f.name, count=int(rep.sum()),
                value=shown(arr[bad_pos[rep][0]], f), to=str(fixed[rep][0]), header=header(f))
    wrong = bad_pos[~rep]
    if len(wrong):
        listing = ", ".join(allowed[:12]) + (" …" if len(allowed) > 12 else "")
        ctx.per_row("error", "validation.not_allowed", wrong, column=f.name,
                    params=lambda p: {"value": shown(arr[p], f), "allowed": listing,
                                      "suggestion": _suggest(str(arr[p]), allowed),
                                      "header": header(f)})
        out[wrong] = None
    return pd.Series(out, index=s.index, dtype="str")


def _suggest(value: str, allowed: tuple[str, ...]) -> str:
    near = difflib.get_close_matches(value.strip().lower(), list(allowed), n=1, cutoff=0.5)
    return near[0] if near else allowed[0]


def check_phone(ctx: Ctx, f: Field, s: pd.Series) -> None:
    """Warn about phone numbers that are neither mobile nor landline numbers (masked)."""
    mobile = s.str.fullmatch(r"1[3-9]\d{9}").to_numpy(dtype=bool, na_value=True)
    rest = s[~mobile]
    txt = rest.str.replace(r"[\s()（）]", "", regex=True)
    bad_rest = (txt.notna() & ~txt.str.match(_PHONE.pattern).fillna(True)).to_numpy(dtype=bool)
    bad = np.flatnonzero(~mobile)[bad_rest]
    if len(bad):
        raw = s.to_numpy(dtype=object)
        ctx.per_row("warning", "validation.bad_phone", bad, column=f.name,
                    params=lambda p: {"value": shown(raw[p], f), "header": header(f)})


def check_id_number(ctx: Ctx, f: Field, s: pd.Series) -> None:
    """Warn about resident ID numbers with a wrong length or check digit (masked)."""

    def valid(v: str) -> bool:
        v = v.strip().upper()
        if not _ID18.match(v):
            return False
        total = sum(int(c) * w for c, w in zip(v[:17], _ID_WEIGHTS, strict=True))
        return _ID_CHECK[total % 11] == v[17]

    ok = map_distinct(s, valid)
    bad = np.flatnonzero((ok == False).to_numpy())  # noqa: E712
    if len(bad):
        raw = s.to_numpy(dtype=object)
        ctx.per_row("warning", "validation.bad_id_number", bad, column=f.name,
                    params=lambda p: {"value": shown(raw[p], f), "header": header(f)})
