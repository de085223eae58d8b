"""Masking personal information (PIPL) for people who do not need to see it.

Personal fields are the ones :data:`layers.schema.SCHEMAS` marks ``personal``. How a value is
masked depends on what it is, recognised from the field name:

* phone numbers (``phone``, ``reporter_phone``): only the last 4 characters stay,
  ``13812345678`` -> ``*******5678``;
* resident ID numbers (``id_number``): the first 4 (province and city) and last 4 stay,
  ``320102199001011234`` -> ``3201**********1234``;
* names and everything else personal (``name``, ``leader``, ``reporter_name``, ``actor``):
  only the surname (first character) stays, followed by one ``*`` whatever the length, so the
  mask does not tell how long the given name is: ``张三丰`` -> ``张*``, ``张三`` -> ``张*``.

Screens and exports call :func:`mask_personal` unless the user is allowed to see the data
(``gridpulse export --unmask``).

Examples
--------
>>> import pandas as pd
>>> df = pd.DataFrame({"id": ["W1"], "name": ["张三丰"], "phone": ["13812345678"],
...                    "id_number": ["320102199001011234"], "role": ["grid_leader"]})
>>> mask_personal(df, "workers").iloc[0].tolist()
['W1', '张*', '*******5678', '3201**********1234', 'grid_leader']
"""

from __future__ import annotations

import pandas as pd

from layers.schema import SCHEMAS

MASK = "*"


def mask_name(value: str) -> str:
    """Keep the surname only: ``张三`` -> ``张*``, ``张三丰`` -> ``张*``, ``欧阳娜娜`` -> ``欧*``.

    One ``*`` stands for the given name whatever its length; a one-character value is
    masked whole.

    Examples
    --------
    >>> mask_name("张三"), mask_name("张三丰"), mask_name("李"), mask_name("")
    ('张*', '张*', '*', '')
    """
    text = str(value).strip()
    if len(text) <= 1:
        return MASK * len(text)
    return text[0] + MASK


def mask_phone(value: str) -> str:
    """Keep the last 4 characters only: ``13812345678`` -> ``*******5678``.

    Numbers of 5 to 7 characters keep only their last 2; shorter ones are masked whole.

    Examples
    --------
    >>> mask_phone("13812345678"), mask_phone("025-83123456"), mask_phone("12345")
    ('*******5678', '********3456', '***45')
    """
    text = str(value).strip()
    if len(text) <= 4:
        return MASK * len(text)
    if len(text) <= 7:
        return MASK * max(len(text) - 2, 0) + text[-2:]
    return MASK * (len(text) - 4) + text[-4:]


def mask_id_number(value: str) -> str:
    """Keep the first 4 and last 4 characters: 18 digits -> ``3201**********1234``.

    Examples
    --------
    >>> mask_id_number("320102199001011234")
    '3201**********1234'
    >>> mask_id_number("1234567")
    '*******'
    """
    text = str(value).strip()
    if len(text) <= 8:
        return MASK * len(text)
    return text[:4] + MASK * (len(text) - 8) + text[-4:]


def masker_for(field_name: str):
    """The masking function for a personal field, by its name."""
    if "phone" in field_name:
        return mask_phone
    if field_name == "id_number":
        return mask_id_number
    return mask_name


def mask_personal(df: pd.DataFrame, layer: str) -> pd.DataFrame:
    """A copy of ``df`` with every personal field of ``layer`` masked.

    Missing values stay missing; other columns, the index and the geometry are untouched.
    Columns that are not present are skipped.

    Parameters
    ----------
    df
        Rows of ``layer`` (canonical column names), e.g. from ``Store.read``.
    layer
        Canonical layer name.

    Raises
    ------
    KeyError
        When ``layer`` is not a known layer.
    """
    if layer not in SCHEMAS:
        raise KeyError(f"unknown layer {layer!r}; expected one of {', '.join(SCHEMAS)}")
    out = df.copy()
    for f in SCHEMAS[layer].personal_fields():
        if f.name not in out.columns:
            continue
        col = out[f.name]
        out[f.name] = col.map(masker_for(f.name), na_action="ignore").astype("str")
    return out


def personal_columns(layer: str) -> list[str]:
    """Names of the personal fields of ``layer``.

    Examples
    --------
    >>> personal_columns("incidents")
    ['reporter_name', 'reporter_phone']
    """
    return [f.name for f in SCHEMAS[layer].personal_fields()]
