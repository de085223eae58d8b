"""The whistle list (吹哨清单): 14 categories, 45 items, each item in 3 levels.

Modelled on the shape of Beijing Dongcheng's list (seed 004: "14 categories, 45 items,
each item in 3 levels"). The categories and items below are GridPulse's own wording in
that style, not a copy of any official list. Level 1 is routine, level 2 needs several
departments, level 3 is urgent or serious.

Examples
--------
>>> len(CATEGORIES), len(ITEMS)
(14, 45)
>>> ITEMS["0101"].category_code
'01'
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from typing import Literal


@dataclass(frozen=True)
class Category:
    """A whistle-list category (大类)."""

    code: str
    name_zh: str
    name_en: str


@dataclass(frozen=True)
class Item:
    """A whistle-list item (事项) in a category."""

    code: str
    category_code: str
    name_zh: str
    name_en: str
    department: str


_CATS: list[tuple[str, str, str, list[tuple[str, str, str]]]] = [
    ("01", "市容环境", "City appearance", [
        ("暴露垃圾", "Exposed rubbish", "urban_management"),
        ("乱堆物料", "Materials piled in public space", "urban_management"),
        ("占道经营", "Street vending on the roadway", "urban_management"),
        ("违规广告牌匾", "Illegal signs and billboards", "urban_management"),
    ]),
    ("02", "违法建设", "Illegal construction", [
        ("违建房屋", "Illegal building works", "urban_management"),
        ("私搭乱建", "Unauthorised sheds and extensions", "urban_management"),
        ("破墙开店", "Shop fronts cut into walls", "urban_management"),
    ]),
    ("03", "物业管理", "Property management", [
        ("物业服务不到位", "Poor property-management service", "housing"),
        ("电梯故障", "Lift out of order", "market_regulation"),
        ("楼道堆物", "Stairwell clutter", "community"),
        ("老旧小区失管", "Old compound without management", "housing"),
    ]),
    ("04", "市政设施", "Municipal facilities", [
        ("道路破损", "Damaged road surface", "transport"),
        ("井盖缺失", "Missing manhole cover", "urban_management"),
        ("路灯不亮", "Street light out", "urban_management"),
        ("积水内涝", "Standing water and flooding", "water"),
    ]),
    ("05", "交通秩序", "Traffic order", [
        ("违章停车", "Illegal parking", "public_security"),
        ("共享单车乱停", "Shared bikes parked badly", "transport"),
        ("非机动车占道", "Bikes and e-bikes blocking ways", "transport"),
    ]),
    ("06", "园林绿化", "Greening", [
        ("树木倒伏", "Fallen tree", "landscaping"),
        ("绿地毁损", "Damaged green space", "landscaping"),
        ("毁绿种菜", "Green space dug up for vegetables", "landscaping"),
    ]),
    ("07", "噪声扰民", "Noise", [
        ("施工噪声", "Construction noise", "ecology_environment"),
        ("商业噪声", "Commercial noise", "ecology_environment"),
        ("夜间娱乐噪声", "Night-life noise", "public_security"),
    ]),
    ("08", "环境污染", "Pollution", [
        ("油烟污染", "Cooking fumes", "ecology_environment"),
        ("扬尘污染", "Dust from sites", "ecology_environment"),
        ("污水直排", "Sewage discharge", "water"),
    ]),
    ("09", "食品药品安全", "Food and drug safety", [
        ("无证经营", "Unlicensed food business", "market_regulation"),
        ("食品卫生", "Food hygiene", "market_regulation"),
        ("过期药品", "Expired medicines sold", "market_regulation"),
    ]),
    ("10", "安全隐患", "Safety hazards", [
        ("消防通道堵塞", "Blocked fire lane", "emergency"),
        ("电动车违规充电", "E-bikes charged indoors", "emergency"),
        ("燃气隐患", "Gas hazard", "emergency"),
        ("危房险情", "Dangerous building", "housing"),
    ]),
    ("11", "治安秩序", "Public order", [
        ("群租房", "Overcrowded rentals", "public_security"),
        ("非法小广告", "Illegal flyers", "urban_management"),
        ("流浪乞讨", "Rough sleeping and begging", "civil_affairs"),
    ]),
    ("12", "社会保障", "Social services", [
        ("养老服务", "Elderly care", "civil_affairs"),
        ("低保救助", "Subsistence assistance", "civil_affairs"),
        ("就业帮扶", "Employment support", "subdistrict_office"),
    ]),
    ("13", "矛盾纠纷", "Disputes", [
        ("邻里纠纷", "Neighbour dispute", "community"),
        ("物业纠纷", "Dispute with property manager", "housing"),
        ("劳资纠纷", "Wage dispute", "subdistrict_office"),
    ]),
    ("14", "其他事项", "Other", [
        ("宠物管理", "Pets", "public_security"),
        ("其他诉求", "Other requests", "subdistrict_office"),
    ]),
]

CATEGORIES: dict[str, Category] = {}
ITEMS: dict[str, Item] = {}
for _code, _zh, _en, _items in _CATS:
    CATEGORIES[_code] = Category(_code, _zh, _en)
    for _i, (_izh, _ien, _dept) in enumerate(_items, start=1):
        _icode = f"{_code}{_i:02d}"
        ITEMS[_icode] = Item(_icode, _code, _izh, _ien, _dept)

CATEGORY_CODES: tuple[str, ...] = tuple(CATEGORIES)
ITEM_CODES: tuple[str, ...] = tuple(ITEMS)

#: Default handling time limit in hours by level (1 routine, 2 multi-department, 3 urgent).
DEFAULT_LIMIT_HOURS: dict[int, float] = {1: 72.0, 2: 120.0, 3: 24.0}


# --------------------------------------------------------------------------- name lookups

#: The item assumed when a file names only a category: the category's catch-all where the list
#: has one (14 其他事项 -> 1402 其他诉求), else its first (most common) item.
DEFAULT_ITEMS: dict[str, str] = {c: f"{c}01" for c in CATEGORY_CODES} | {"14": "1402"}

#: The category and item assumed for a row that names no category at all.
FALLBACK_ITEM: str = "1402"

#: A closest name at least this similar (difflib ratio, 0–1) is applied as an assumption ...
CLOSE_RATIO: float = 0.75
#: ... when the runner-up (another category or item) is at least this much less similar.
CLOSE_MARGIN: float = 0.1

#: Common colloquial names in hotline exports that are not list names (matched like exact names).
NAME_ALIASES: dict[str, str] = {
    "其他": "1402", "其它": "1402", "其它诉求": "1402", "other": "1402",
    "违建": "0201", "乱停车": "0501", "乱停乱放": "0501", "噪音": "07", "噪音扰民": "07",
    "油烟": "0801", "扬尘": "0802", "群租": "1101", "小广告": "1102", "井盖": "0402", "路灯": "0403",
}
#: Below this similarity the closest name says nothing; the catch-all item is suggested instead.
SUGGEST_RATIO: float = 0.34

_SEPARATORS = re.compile(r"[-－—–_/／\\>＞|｜、,，;；:：·•]+")
_PUNCT = re.compile(r"[\s\"'“”‘’()（）\[\]【】<>《》.。!！?？]+")


@dataclass(frozen=True)
class NameMatch:
    """What :func:`match_name` made of one category/item text.

    Attributes
    ----------
    text
        The text as given.
    category_code, item_code
        The match (``item_code`` is ``None`` when only a category was named). Both ``None``
        when the text could not be matched with confidence.
    how
        ``code`` (a category or item code), ``exact`` (a name as listed), ``normalised``
        (the same after removing spaces, punctuation and full-width forms), ``contains``
        (the text contains exactly one listed name), ``close`` (the most similar name,
        clearly ahead of the others), or ``unsure`` (no confident match).
    suggestion
        Code of the closest category or item (also given when ``unsure``).
    score
        Similarity of the closest name (1.0 for code, exact and normalised matches).
    """

    text: str
    category_code: str | None
    item_code: str | None
    how: Literal["code", "exact", "normalised", "contains", "close", "unsure"]
    suggestion: str | None = None
    score: float = 1.0

    @property
    def confident(self) -> bool:
        """True when the match can be applied (everything but ``unsure``)."""
        return self.how != "unsure"


def normalise_name(text: object) -> str:
    """Fold a name for matching: NFKC (full-width -> half-width), lower case, no spaces or punctuation.

    >>> normalise_name(" 市容　环境（城管） ")
    '市容环境城管'
    >>> normalise_name("Illegal  Parking.")
    'illegalparking'
    """
    text = unicodedata.normalize("NFKC", str(text)).lower()
    return _PUNCT.sub("", _SEPARATORS.sub("", text))


def name_of(code: str, lang: str = "zh") -> str:
    """Chinese (or English) name of a category or item code.

    >>> name_of("0103"), name_of("07", "en")
    ('占道经营', 'Noise')
    """
    entry = ITEMS.get(code) or CATEGORIES[code]
    return entry.name_en if lang == "en" else entry.name_zh


@cache
def _names() -> tuple[dict[str, str], dict[str, str], list[tuple[str, str]]]:
    """(exact name -> code, normalised name -> code, [(normalised name, code)])."""
    exact: dict[str, str] = {}
    for c in CATEGORIES.values():
        exact[c.name_zh] = c.code
        exact[c.name_en.lower()] = c.code
    for it in ITEMS.values():
        exact.setdefault(it.name_zh, it.code)
        exact.setdefault(it.name_en.lower(), it.code)
    for alias, code in NAME_ALIASES.items():
        exact.setdefault(alias, code)
    norm = {normalise_name(k): v for k, v in exact.items()}
    return exact, norm, sorted(norm.items(), key=lambda kv: (-len(kv[0]), kv[1]))


def _codes(code: str) -> tuple[str, str | None]:
    return (code[:2], code) if len(code) == 4 else (code, None)


def _by_code(text: str) -> str | None:
    digits = unicodedata.normalize("NFKC", text).strip()
    if digits.endswith(".0"):
        digits = digits[:-2]
    if not digits.isdigit():
        return None
    if len(digits) <= 2 and digits.zfill(2) in CATEGORIES:
        return digits.zfill(2)
    if 3 <= len(digits) <= 4 and digits.zfill(4) in ITEMS:
        return digits.zfill(4)
    return None


def _one(text: str) -> str | None:
    """Code of one part by code, exact or normalised name (``None`` if none)."""
    exact, norm, _ = _names()
    return _by_code(text) or exact.get(text.strip()) or exact.get(text.strip().lower()) \
        or norm.get(normalise_name(text))


@cache
def match_name(text: str) -> NameMatch:
    """Match a category or item written in a file to the whistle list.

    Tried in order: a code (``01``, ``0101``, ``101``); the exact name (Chinese or English);
    the normalised name (:func:`normalise_name`); for compound texts such as
    ``城市管理-市容环境-暴露垃圾`` each part, the most specific match winning when the parts
    agree; a text containing exactly one listed name; the closest name by
    :class:`difflib.SequenceMatcher` when it reaches :data:`CLOSE_RATIO` and leads the
    runner-up by :data:`CLOSE_MARGIN`. Anything else is ``unsure`` with the closest
    name as the suggestion.

    Examples
    --------
    >>> m = match_name("占道经营"); (m.category_code, m.item_code, m.how)
    ('01', '0103', 'exact')
    >>> m = match_name("市容环境 - 暴露垃圾"); (m.item_code, m.how)
    ('0101', 'exact')
    >>> m = match_name("噪声扰乱"); (m.category_code, m.item_code, m.how)
    ('07', None, 'close')
    >>> m = match_name("电梯坏了"); (m.category_code, m.how, m.suggestion)
    (None, 'unsure', '0302')
    """
    raw = str(text)
    exact, norm, ordered = _names()
    code = _by_code(raw)
    if code:
        return NameMatch(raw, *_codes(code), how="code")
    stripped = raw.strip()
    code = exact.get(stripped) or exact.get(stripped.lower())
    if code:
        return NameMatch(raw, *_codes(code), how="exact")
    key = normalise_name(raw)
    if key in norm:
        return NameMatch(raw, *_codes(norm[key]), how="normalised")
    parts = [p for p in _SEPARATORS.split(unicodedata.normalize("NFKC", raw)) if p.strip()]
    if len(parts) > 1:
        found = [c for c in (_one(p) for p in parts) if c]
        items = {c for c in found if len(c) == 4}
        cats = {c[:2] for c in found}
        if len(items) == 1 and len(cats) == 1:
            return NameMatch(raw, *_codes(items.pop()), how="exact")
        if not items and len(cats) == 1:
            return NameMatch(raw, cats.pop(), None, how="exact")
    if not key:
        return NameMatch(raw, None, None, how="unsure", suggestion=FALLBACK_ITEM, score=0.0)
    inside = {c for n, c in ordered if len(n) >= 2 and n in key}
    inside_items = {c for c in inside if len(c) == 4}
    if len(inside_items) == 1:
        it = inside_items.pop()
        if {c[:2] for c in inside} == {it[:2]}:
            return NameMatch(raw, *_codes(it), how="contains")
    elif not inside_items and len(inside) == 1:
        return NameMatch(raw, inside.pop(), None, how="contains")
    scored = sorted(((difflib.SequenceMatcher(None, key, n).ratio(), c) for n, c in ordered),
                    key=lambda sc: (-sc[0], sc[1]))
    best, best_code = scored[0]
    runner = next((s for s, c in scored if c != best_code), 0.0)
    if best >= CLOSE_RATIO and best - runner >= CLOSE_MARGIN:
        return NameMatch(raw, *_codes(best_code), how="close", suggestion=best_code, score=best)
    return NameMatch(raw, None, None, how="unsure",
                     suggestion=best_code if best >= SUGGEST_RATIO else FALLBACK_ITEM, score=best)
