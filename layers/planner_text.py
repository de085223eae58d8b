"""The planner's shared text: violation sentences and comparison-table cells.

Used by the ``gridpulse repartition`` command and the 网格调整 page, so both say the same
thing in the same words (messages ``planner.*`` in the catalogue).

Examples
--------
>>> fmt_value("within_band_share", 0.875)
'87.5%'
>>> fmt_value("max_walk_m", None, missing="-")
'-'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from layers.i18n import default_lang, t


def violation_text(rec: Mapping[str, Any], lang: str | None = None) -> str:
    """One violation record as a sentence: what is wrong, then why.

    Parameters
    ----------
    rec : Mapping
        A violation record of :mod:`geo.partition` (``code``, optional ``reason`` and
        ``quantity``, and the message's parameters).
    lang : str, optional
        ``zh`` or ``en`` (default: the environment's).

    Returns
    -------
    str
        ``what：why`` (``what: why`` in English), or ``what`` when there is no reason.
    """
    params = {k: ("-" if v is None else v) for k, v in rec.items()}
    if "quantity" in rec:
        params["quantity"] = t(f"planner.quantity.{rec['quantity']}", lang)
    what = t(f"planner.violation.{rec['code']}", lang, **params)
    why = t(f"planner.reason.{rec['reason']}", lang, **params) if rec.get("reason") else ""
    sep = "：" if (lang or default_lang()) == "zh" else ": "
    return f"{what}{sep}{why}" if why else what


def fmt_value(col: str, value: Any, *, missing: str = "—", infinite: str = "∞",
              polsby_digits: int = 3) -> str:
    """One cell of the comparison table.

    Parameters
    ----------
    col : str
        The metric: ``*_share`` is shown as a percentage, ``polsby*`` with ``polsby_digits``
        decimals, anything else as a whole number with thousands separators.
    value : Any
        The number (``None`` or NaN is missing).
    missing, infinite : str
        What to show for a missing and an infinite value.
    polsby_digits : int
        Decimals of a Polsby-Popper score.

    Returns
    -------
    str
        The formatted cell.
    """
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return missing
    if isinstance(value, float) and np.isinf(value):
        return infinite
    if col.endswith("_share"):
        return f"{100 * float(value):.1f}%"
    if col.startswith("polsby"):
        return f"{float(value):.{polsby_digits}f}"
    return f"{float(value):,.0f}"
