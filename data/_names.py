"""Invented names for the demo district: places, roads, compounds and people.

Every name is built from syllable lists, so no sub-district, community, road or person
in the demo is real. Real sub-district names of Nanjing's Gulou district are excluded
on purpose (see ``_REAL_GULOU``), so an invented boundary is never taken for a real one.
"""

from __future__ import annotations

import numpy as np

# Syllables with a pleasant, place-name feel; pairs are drawn from them.
_PLACE_A = tuple("云锦梧桐青松杏兰芷澄晴星月枫荷柳竹梅桂榕溪泉霞鹭翠萱棠槐桑蔚朗禾麓岫澜芸")
_PLACE_B = tuple("锦桐枫澜川汀涛坛岸桥溪荫映石湾香苑园庭林岭塘洲渚坡畔湖苗泽晖")
# Real sub-district names of Gulou (and a few well-known Nanjing names): never generated.
_REAL_GULOU = frozenset(
    "华侨 湖南 中央 挹江 江东 凤凰 宁海 阅江 热河 幕府 建宁 小市 清凉 龙江 鼓楼 山西 "
    "莫愁 白鹭 秦淮 玄武 建邺 下关 宝塔 挹江门 草场 五塘 南湖 汉中".split()
)
_SURNAMES = tuple("王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程")
_GIVEN = tuple("伟芳娜敏静丽强磊军洋勇艳杰涛明超秀霞平刚桂英华玉兰萍红建文辉力鹏宇浩然欣怡晨阳佳雪梅琳婷宁凯")
_ROAD_SUFFIX = ("路", "街", "大道", "巷")
_COMPOUND_SUFFIX = ("苑", "园", "新村", "小区", "花园", "里", "公寓", "家园")
_DIGITS = "〇一二三四五六七八九"


def place_names(n: int, rng: np.random.Generator, *, suffix: str, taken: set[str] | None = None) -> list[str]:
    """``n`` distinct invented two-syllable names ending in ``suffix`` (e.g. ``"街道"``).

    Parameters
    ----------
    n
        How many names.
    rng
        Random generator.
    suffix
        Appended to each name.
    taken
        Stems already used elsewhere (updated in place), so levels do not repeat each other.
    """
    taken = set() if taken is None else taken
    out: list[str] = []
    tries = 0
    while len(out) < n:
        a = _PLACE_A[int(rng.integers(len(_PLACE_A)))]
        b = _PLACE_B[int(rng.integers(len(_PLACE_B)))]
        stem = a + b
        tries += 1
        if a == b or stem in _REAL_GULOU or (stem in taken and tries < 50 * (n + 10)):
            continue
        if stem in taken:  # the pool is exhausted: add a number
            stem = f"{stem}{_DIGITS[len(out) % 10]}"
        taken.add(stem)
        out.append(stem + suffix)
    return out


def road_names(n: int, rng: np.random.Generator, *, major: bool) -> list[str]:
    """``n`` distinct invented road names (``大道``/``路`` for major roads, ``街``/``巷`` otherwise)."""
    suffixes = ("路", "大道") if major else ("街", "巷", "路")
    taken: set[str] = set()
    stems = place_names(n, rng, suffix="", taken=taken)
    return [s + suffixes[int(rng.integers(len(suffixes)))] for s in stems]


def compound_names(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` invented residential-compound names (not necessarily distinct)."""
    a = np.array(_PLACE_A)[rng.integers(len(_PLACE_A), size=n)]
    b = np.array(_PLACE_B)[rng.integers(len(_PLACE_B), size=n)]
    s = np.array(_COMPOUND_SUFFIX)[rng.integers(len(_COMPOUND_SUFFIX), size=n)]
    return np.char.add(np.char.add(a, b), s)


def person_names(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` invented personal names: a common surname and one or two given characters."""
    sur = np.array(_SURNAMES)[rng.integers(len(_SURNAMES), size=n)]
    g1 = np.array(_GIVEN)[rng.integers(len(_GIVEN), size=n)]
    g2 = np.array(_GIVEN)[rng.integers(len(_GIVEN), size=n)]
    two = rng.random(n) < 0.7
    given = np.where(two, np.char.add(g1, g2), g1)
    return np.char.add(sur, given)


def fake_phones(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` obviously fake mobile numbers of the form ``1390000xxxx``."""
    tail = rng.integers(0, 10_000, size=n)
    return np.char.add("1390000", np.char.zfill(tail.astype(str), 4))
