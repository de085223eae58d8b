"""12345 hotline exports made importable: values mapped to the schema, defaults filled, assumptions said.

The reader has already mapped the headers (``编号`` -> ``service_request_id``, ``类别`` ->
``category_code``... see the aliases in :mod:`layers.schema`). What a hotline sends in those
columns is still its own wording: category and item *names* (``占道经营``,
``市容环境-暴露垃圾``), status words (``已办结``), channel words (``12345热线``), urgency words
(``特急``), department names (``区城管局``), and no GridPulse-only columns at all (level, source,
stage). :func:`prepare_incidents` turns those into the schema's codes before
:func:`layers.validate.validate` checks the layer, and says what it assumed:

* category/item names are matched to the whistle list (:func:`layers.taxonomy.match_name`): a
  confident match is applied (exact and normalised names as a note, close names as a warning);
  an unsure one is an error on its row with the closest name ("did you mean ...");
* a category without an item gets the category's default item; a row without any category
  gets ``其他诉求`` (1402) (warnings);
* ``stage`` comes from the status words (:data:`HOTLINE_STATUS`), ``status`` (open/closed)
  from the stage; ``level`` defaults to 1, ``source`` to ``hotline_12345``, ``stage`` to
  ``collected`` (notes); ids are generated only when the file has no id column (warning).

Every assumption is one line per column with the number of rows (``hotline.*`` keys in
``layers/messages/hotline.toml``), never one line per row; only errors are listed per row.

Private: use :func:`layers.ingest.check_file` / :func:`layers.ingest.validate_read`.

Examples
--------
>>> df = pd.DataFrame({"service_request_id": ["A1", "A2"], "category_code": ["占道经营", "噪声扰民"],
...                    "requested_datetime": ["2025-03-01 09:00"] * 2})
>>> prep = prepare_incidents(df, file="12345.csv", row_offset=2)
>>> prep.data[["category_code", "item_code", "stage", "level", "source"]].values.tolist()
[['01', '0103', 'collected', 1, 'hotline_12345'], ['07', '0701', 'collected', 1, 'hotline_12345']]
>>> [i.code for i in prep.report]  # doctest: +NORMALIZE_WHITESPACE
['hotline.names_matched', 'hotline.item_default', 'hotline.assumed_column', 'hotline.assumed_column',
 'hotline.assumed_column']
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from geo.domain import CLOSED_STAGES
from layers import taxonomy
from layers._validate_core import Ctx, shown
from layers._validate_core import header as schema_header
from layers.report import Report
from layers.schema import SCHEMAS, SOURCES, STAGES, Field

#: Hotline status words -> stage (exact match first, then the first word the value contains).
HOTLINE_STATUS: dict[str, tuple[str, ...]] = {
    "closed_no_action": ("不予受理", "重复工单", "无效工单", "作废", "撤销", "非本辖区", "不属于受理范围"),
    "evaluated": ("已回访", "已评价", "已归档"),
    "closed": ("已办结", "已结案", "办结", "已完成", "结案", "已解决", "已关闭", "resolved", "completed", "done"),
    "verifying": ("待核实", "待审核", "待回访", "已反馈", "待结案", "已办理"),
    "handling": ("办理中", "处理中", "处置中", "正在办理", "待办理", "延期中", "返工", "重办", "in progress", "processing"),
    "dispatched": ("已派单", "已派发", "已分派", "已转办", "待签收", "已签收", "已报到", "派单"),
    "whistled": ("已吹哨", "吹哨"),
    "collected": ("待受理", "已受理", "待派单", "待分派", "新建", "已登记", "受理", "new", "received", "open"),
}
#: Department names -> department code (first keyword contained in the name wins, in this order).
HOTLINE_DEPARTMENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("urban_management", ("城管", "城市管理", "综合执法", "综合行政执法")),
    ("public_security", ("公安", "派出所", "交警", "警务")),
    ("market_regulation", ("市场监管", "市场监督", "食药")),
    ("ecology_environment", ("生态环境", "环保", "环境保护")),
    ("housing", ("住建", "住房", "房管", "房产")),
    ("water", ("水务", "水利", "排水")),
    ("landscaping", ("园林", "绿化")),
    ("transport", ("交通", "交运")),
    ("civil_affairs", ("民政",)),
    ("emergency", ("应急", "消防", "安监")),
    ("community", ("社区", "居委会")),
    ("subdistrict_office", ("街道", "办事处")),
)
#: Channel words -> source code.
HOTLINE_SOURCES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("hotline_12345", ("12345", "热线", "电话", "来电", "hotline", "phone")),
    ("patrol", ("网格员", "巡查", "巡检", "上报", "patrol", "inspection")),
    ("resident_app", ("app", "小程序", "随手拍", "微信", "网站", "网络", "公众号")),
    ("sensor", ("传感", "物联", "感知", "视频", "监控", "iot", "camera")),
)
#: Urgency words -> level.
HOTLINE_LEVELS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (3, ("特急", "非常紧急", "特别紧急", "重大", "高", "critical", "high")),
    (2, ("较急", "紧急", "重要", "中", "urgent", "medium")),
    (1, ("一般", "普通", "低", "常规", "normal", "low", "routine")),
)
#: What is assumed for a missing column or an empty cell.
DEFAULTS: dict[str, Any] = {"stage": "collected", "level": 1, "source": "hotline_12345"}
#: Pairs shown in one assumption line (``市容环境 → 01, ...``).
EXAMPLES: int = 5
_KEY = "hotline."
_STAGE_WORDS = tuple((stage, words) for stage, words in HOTLINE_STATUS.items())
_OPEN_CLOSED = {"closed": "closed", "open": "collected"}
_CLOSED_STAGES = frozenset(CLOSED_STAGES)  # defined once in geo.domain
if not (set(HOTLINE_STATUS) <= set(STAGES) and {c for c, _ in HOTLINE_SOURCES} <= set(SOURCES)
        and _CLOSED_STAGES <= set(STAGES)):  # pragma: no cover
    raise RuntimeError("layers._validate_hotline tables name a stage or source missing from the schema")


@dataclass
class Prepared:
    """What :func:`prepare_incidents` returns.

    Attributes
    ----------
    data
        A copy of the input with schema codes in ``category_code``, ``item_code``, ``stage``,
        ``status``, ``source``, ``level`` and ``department`` where they could be derived; cells
        that could not be read confidently are left as written (the error is in ``report``).
    report
        The assumptions (one line per column) and the per-row errors.
    handled
        ``(row, column)`` pairs that already carry an error here, so that the generic
        validation's "not allowed" / "empty" for the same cell can be dropped.
    """

    data: pd.DataFrame
    report: Report
    handled: set[tuple[int | None, str]] = field(default_factory=set)


def prepare_incidents(data: pd.DataFrame, *, file: str | None, row_offset: int,
                      headers: Mapping[str, str] | None = None) -> Prepared:
    """Map a hotline export's values to the ``incidents`` schema and report every assumption.

    Parameters
    ----------
    data
        The table as :func:`layers.io.read_file` returns it for ``layer="incidents"``
        (canonical headers where recognised). Never modified.
    file
        File name for the report.
    row_offset
        Row number of the first data row as the user sees it.
    headers
        Canonical column -> header as written in the file (``{"category_code": "类别"}``), so
        that messages name the column the user knows; the schema's first Chinese alias otherwise.

    Returns
    -------
    Prepared
    """
    ctx = _HotlineCtx(Report(), "incidents", file, int(row_offset), headers=dict(headers or {}))
    out = data.copy()
    handled: set[tuple[int | None, str]] = set()
    _ids(ctx, out)
    _categories(ctx, out, handled)
    _stage(ctx, out, handled)
    _closed_set(ctx, out, "source", HOTLINE_SOURCES)
    _level(ctx, out)
    _department(ctx, out)
    return Prepared(out, ctx.report, handled)


# --------------------------------------------------------------------------- helpers


def _text(v: Any) -> str | None:
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return None
    s = str(v).strip()
    if isinstance(v, float) and v.is_integer():
        s = str(int(v))
    return s or None


def _texts(s: pd.Series) -> list[str | None]:
    """Cell texts (stripped, ``None`` when empty), computed once per distinct value."""
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    mapped = np.array([_text(u) for u in uniques] + [None], dtype=object)
    return mapped[codes].tolist()


def _field(name: str):  # noqa: ANN202 - a schema Field
    return SCHEMAS["incidents"].field(name)


@dataclass
class _HotlineCtx(Ctx):
    """:class:`Ctx` that also knows the headers as written in the file."""

    headers: Mapping[str, str] = field(default_factory=dict)


def _header(ctx: Ctx, f: Field) -> str:
    """The header of ``f`` as written in the file being prepared, else the schema's usual one."""
    written = ctx.headers if isinstance(ctx, _HotlineCtx) else {}
    return written.get(f.name) or schema_header(f)


def _pairs(counter: Counter[tuple[str, str]]) -> str:
    shown_pairs = [f"{a} → {b}" for (a, b), _ in counter.most_common(EXAMPLES)]
    more = len(counter) - EXAMPLES
    return "; ".join(shown_pairs) + (f" …(+{more})" if more > 0 else "")


def _assume(ctx: Ctx, severity: str, column: str, value: Any, count: int, *, missing: bool,
            first: int | None = None) -> None:
    if not count:
        return
    f = _field(column)
    if missing:
        ctx.add(severity, _KEY + "assumed_column", column=column, header=_header(ctx, f),  # type: ignore[arg-type]
                value=str(value), count=count)
    else:
        ctx.add(severity, _KEY + "assumed_blank", column=column, header=_header(ctx, f),  # type: ignore[arg-type]
                value=str(value), count=count, first_row=ctx.row(first or 0))


def _put(ctx: Ctx, out: pd.DataFrame, column: str, values: list[Any],
         mapped: Counter[tuple[str, str]], *, key: str = "values_mapped") -> None:
    """Set ``column`` and say in one line which values were translated (``a → b``, count)."""
    out[column] = pd.Series(values, index=out.index, dtype=object)
    if mapped:
        ctx.add("info", _KEY + key, column=column, header=_header(ctx, _field(column)),
                count=sum(mapped.values()), pairs=_pairs(mapped))


@cache
def _by_words(text: str, rules: tuple[tuple[Any, tuple[str, ...]], ...]) -> Any:
    low = text.lower()
    hit = next((code for code, words in rules if low in words), None)
    if hit is None:
        hit = next((code for code, words in rules if any(w in low for w in words)), None)
    return hit


# --------------------------------------------------------------------------- ids


def _ids(ctx: Ctx, out: pd.DataFrame) -> None:
    if "service_request_id" in out.columns:
        return
    digest = hashlib.sha1(pd.util.hash_pandas_object(out.astype(str), index=False).to_numpy().tobytes())
    prefix = "GEN-" + digest.hexdigest()[:8].upper()
    out["service_request_id"] = pd.Series([f"{prefix}-{ctx.row(p)}" for p in range(len(out))],
                                          index=out.index, dtype=object)
    if len(out):
        ctx.add("warning", _KEY + "ids_generated", column="service_request_id",
                header=_header(ctx, _field("service_request_id")), count=len(out),
                example=str(out["service_request_id"].iloc[0]))


# --------------------------------------------------------------------------- category / item


def _categories(ctx: Ctx, out: pd.DataFrame, handled: set[tuple[int | None, str]]) -> None:
    n = len(out)
    cols = [c for c in ("item_code", "category_code") if c in out.columns]
    texts = {c: _texts(out[c]) for c in cols}
    cat: list[str | None] = [None] * n
    item: list[str | None] = [None] * n
    matched: dict[str, Counter[tuple[str, str]]] = {c: Counter() for c in cols}
    close: dict[str, Counter[tuple[str, str]]] = {c: Counter() for c in cols}
    unsure: dict[str, list[int]] = {c: [] for c in cols}
    for c in cols:
        for p, text in enumerate(texts[c]):
            if text is None:
                continue
            m = taxonomy.match_name(text)
            if not m.confident:
                unsure[c].append(p)
                continue
            shown_code = m.item_code or str(m.category_code)
            if m.how in ("close", "contains"):
                close[c][(text, f"{taxonomy.name_of(shown_code)}（{shown_code}）")] += 1
            elif m.how != "code":
                matched[c][(text, shown_code)] += 1
            if m.item_code and item[p] is None:  # the item column (read first) wins
                item[p] = m.item_code
            if cat[p] is None or c == "category_code":  # the category column wins: a clash is
                cat[p] = m.category_code  # then reported by validation (item_category_mismatch)
    for c in cols:
        f = _field(c)
        if sum(matched[c].values()):
            ctx.add("info", _KEY + "names_matched", column=c, header=_header(ctx, f),
                    count=sum(matched[c].values()), pairs=_pairs(matched[c]))
        if sum(close[c].values()):
            ctx.add("warning", _KEY + "names_close", column=c, header=_header(ctx, f),
                    count=sum(close[c].values()), pairs=_pairs(close[c]))
        if unsure[c]:
            raw = texts[c]

            def params(p: int, raw: list[str | None] = raw, f: Field = f) -> dict[str, Any]:
                m = taxonomy.match_name(str(raw[p]))
                sug = m.suggestion or taxonomy.FALLBACK_ITEM
                return {"value": shown(raw[p]), "suggestion": taxonomy.name_of(sug), "suggested_code": sug,
                        "header": _header(ctx, f)}

            ctx.per_row("error", _KEY + "name_unknown", unsure[c], column=c, params=params)
    bad = {p for c in cols for p in unsure[c]}
    unsure_rows = {c: set(unsure[c]) for c in cols}
    handled.update((ctx.row(p), c) for p in bad for c in ("category_code", "item_code"))
    # a row whose item is named keeps it; category from the item when the item was given
    given_cat = texts.get("category_code", [None] * n)
    defaults: Counter[tuple[str, str]] = Counter()
    fallback = 0
    first_fallback = None
    for p in range(n):
        if p in bad:
            continue
        if cat[p] is None and item[p] is None:
            if given_cat[p] is None and texts.get("item_code", [None] * n)[p] is None:
                item[p] = taxonomy.FALLBACK_ITEM
                cat[p] = item[p][:2]
                fallback += 1
                first_fallback = p if first_fallback is None else first_fallback
            continue
        if item[p] is None and cat[p] is not None:
            item[p] = taxonomy.DEFAULT_ITEMS[cat[p]]
            defaults[(taxonomy.name_of(cat[p]), f"{taxonomy.name_of(item[p])}（{item[p]}）")] += 1
    if sum(defaults.values()):
        ctx.add("warning", _KEY + "item_default", column="item_code", header=_header(ctx, _field("item_code")),
                count=sum(defaults.values()), pairs=_pairs(defaults))
    if fallback:
        code = taxonomy.FALLBACK_ITEM
        ctx.add("warning", _KEY + "category_fallback", column="category_code",
                header=_header(ctx, _field("category_code")), count=fallback,
                value=f"{taxonomy.name_of(code[:2])} / {taxonomy.name_of(code)}（{code}）",
                first_row=ctx.row(first_fallback or 0))
    # keep what could not be matched as written (validation then refuses it; its message dropped)
    for c, derived in (("category_code", cat), ("item_code", item)):
        keep = texts.get(c, [None] * n)
        out[c] = pd.Series([keep[p] if p in unsure_rows.get(c, set()) else derived[p] for p in range(n)],
                           index=out.index, dtype=object)


# --------------------------------------------------------------------------- stage and status


def _stage(ctx: Ctx, out: pd.DataFrame, handled: set[tuple[int | None, str]]) -> None:
    n = len(out)
    f = _field("stage")
    if "stage" not in out.columns and "status" in out.columns and \
            not {(t or "").lower() for t in _texts(out["status"])} <= {"", *_OPEN_CLOSED}:
        # an English export's "status" holds workflow words (In progress, Resolved): it is the stage
        out["stage"] = out.pop("status")
        if isinstance(ctx, _HotlineCtx):
            ctx.headers = {**ctx.headers, "stage": "status"}
    if "stage" not in out.columns:
        status = _texts(out["status"]) if "status" in out.columns else [None] * n
        from_status = [_OPEN_CLOSED.get((s or "").lower()) for s in status]
        if any(from_status):
            stage = [s or DEFAULTS["stage"] for s in from_status]
            out["stage"] = stage
            ctx.add("info", _KEY + "stage_from_open_closed", column="stage", header=_header(ctx, f),
                    count=sum(s is not None for s in from_status))
        else:
            out["stage"] = DEFAULTS["stage"]
            _assume(ctx, "info", "stage", _stage_label(DEFAULTS["stage"]), n, missing=True)
    else:
        texts = _texts(out["stage"])
        mapped: Counter[tuple[str, str]] = Counter()
        blank: list[int] = []
        unknown: list[int] = []
        stage: list[str | None] = []
        for p, text in enumerate(texts):
            if text is None:
                blank.append(p)
                stage.append(DEFAULTS["stage"])
                continue
            if text.lower() in STAGES:
                stage.append(text.lower())
                continue
            hit = _by_words(text, _STAGE_WORDS)
            if hit is None:
                unknown.append(p)
                stage.append(text)
                continue
            mapped[(text, _stage_label(hit))] += 1
            stage.append(hit)
        _put(ctx, out, "stage", stage, mapped, key="stage_from_status")
        if blank:
            _assume(ctx, "info", "stage", _stage_label(DEFAULTS["stage"]), len(blank), missing=False,
                    first=blank[0])
        if unknown:
            ctx.per_row("error", _KEY + "status_unknown", unknown, column="stage",
                        params=lambda p: {"value": shown(texts[p]), "header": _header(ctx, f)})
            handled.update((ctx.row(p), "stage") for p in unknown)
    if "status" not in out.columns or out["status"].isna().all():
        out["status"] = ["closed" if s in _CLOSED_STAGES else "open" for s in out["stage"].tolist()]
    else:
        _closed_set(ctx, out, "status", (("closed", ("closed", "关闭", "已关闭", "结案", "办结")),
                                         ("open", ("open", "打开", "处理中", "未办结"))))


@cache
def _stage_label(stage: str) -> str:
    from layers.workflow import label

    return f"{label('stage', stage, 'zh')}（{stage}）"


# --------------------------------------------------------------------------- closed sets


def _closed_set(ctx: Ctx, out: pd.DataFrame, column: str,
                rules: tuple[tuple[Any, tuple[str, ...]], ...]) -> None:
    """Map words of a closed-set column; default (with an assumption) when absent or empty."""
    n = len(out)
    default = DEFAULTS.get(column)
    if column not in out.columns:
        if default is not None:
            out[column] = default
            _assume(ctx, "info", column, default, n, missing=True)
        return
    f = _field(column)
    allowed = set(f.allowed or ())
    texts = _texts(out[column])
    mapped: Counter[tuple[str, str]] = Counter()
    values: list[Any] = []
    blank: list[int] = []
    for p, text in enumerate(texts):
        if text is None:
            blank.append(p)
            values.append(default)
        elif text in allowed:
            values.append(text)
        else:
            hit = _by_words(text, rules)
            if hit is not None:
                mapped[(text, str(hit))] += 1
            values.append(hit if hit is not None else text)  # the rest: validation says "not allowed"
    _put(ctx, out, column, values, mapped)
    if blank and default is not None:
        _assume(ctx, "info", column, default, len(blank), missing=False, first=blank[0])


def _level(ctx: Ctx, out: pd.DataFrame) -> None:
    n = len(out)
    if "level" not in out.columns:
        out["level"] = DEFAULTS["level"]
        _assume(ctx, "info", "level", DEFAULTS["level"], n, missing=True)
        return
    raw = out["level"].tolist()
    num = pd.to_numeric(pd.Series(raw, dtype=object), errors="coerce").to_numpy(dtype=float)
    mapped: Counter[tuple[str, str]] = Counter()
    blank: list[int] = []
    values: list[Any] = []
    for p, v in enumerate(raw):
        text = _text(v)
        if text is None:
            blank.append(p)
            values.append(DEFAULTS["level"])
        elif np.isfinite(num[p]):
            values.append(v)
        else:
            hit = _by_words(text, HOTLINE_LEVELS)
            if hit is not None:
                mapped[(text, str(hit))] += 1
            values.append(hit if hit is not None else text)
    _put(ctx, out, "level", values, mapped)
    if blank:
        _assume(ctx, "info", "level", DEFAULTS["level"], len(blank), missing=False, first=blank[0])


def _department(ctx: Ctx, out: pd.DataFrame) -> None:
    if "department" not in out.columns:
        return
    f = _field("department")
    allowed = set(f.allowed or ())
    texts = _texts(out["department"])
    mapped: Counter[tuple[str, str]] = Counter()
    unknown: Counter[str] = Counter()
    values: list[Any] = []
    for text in texts:
        if text is None or text in allowed:
            values.append(text)
            continue
        hit = _by_words(text, HOTLINE_DEPARTMENTS)
        if hit is None:
            unknown[text] += 1
        else:
            mapped[(text, hit)] += 1
        values.append(hit)
    _put(ctx, out, "department", values, mapped)
    if unknown:
        ctx.add("warning", _KEY + "department_unknown", column="department", header=_header(ctx, f),
                count=sum(unknown.values()),
                values="; ".join(shown(v) for v, _ in unknown.most_common(EXAMPLES)))


# --------------------------------------------------------------------------- after validation


def fill_due_times(data: pd.DataFrame, *, file: str | None) -> tuple[pd.DataFrame, Report]:
    """Fill missing ``expected_datetime`` from the time-limit table (an assumption, one line).

    Without a due time a case is never overdue (see :mod:`geo.kpis`), so a hotline file without
    应办结时间 would make the wall's overdue counts silently wrong. Rows without a receipt time
    or a valid level stay empty. ``data`` is the validated layer; a copy is returned.
    """
    from layers.workflow import DEFAULT_POLICY, due_times

    rep = Report()
    need = ["requested_datetime", "category_code", "level"]
    if data.empty or any(c not in data.columns for c in need):
        return data, rep
    has = data["expected_datetime"].notna() if "expected_datetime" in data.columns else \
        pd.Series(False, index=data.index)
    due = due_times(data.loc[~has], policy=DEFAULT_POLICY)
    due = due[due.notna()]
    if due.empty:
        return data, rep
    out = data.copy()
    if "expected_datetime" not in out.columns:
        out["expected_datetime"] = pd.Series(pd.NaT, index=out.index, dtype="datetime64[us]")
    out.loc[due.index, "expected_datetime"] = due.astype(out["expected_datetime"].dtype)
    f = _field("expected_datetime")
    rep.add("info", _KEY + "due_filled", file=file, column="expected_datetime", layer="incidents",
            header=schema_header(f), count=int(len(due)))
    return out, rep
