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

from dataclasses import dataclass


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
