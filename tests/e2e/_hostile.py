"""A store whose every free-text field is hostile: the fixture of the hostile-text browser test.

:func:`hostile_layers` takes the small demo district (:func:`data.demo.generate`) and overwrites
every free-text value of every layer - sub-district, community and grid names, grid leaders,
building and compound ids, facility ids and names, road ids and names, worker ids, names, phones
and ID numbers, incident ids, service codes and names, descriptions, addresses, reporters, event
ids, actors and notes, GPS fix ids - with :data:`PAYLOADS`: HTML tags with event handlers,
``</script>``, backticks and ``${...}``, quotes, Markdown images and links to an outside host,
10,000-character strings, right-to-left override and zero-width characters. Codes that the
schema fixes (``\\d{12}`` community codes...) and the allowed-value columns (stages, kinds) stay
valid, and every id that another layer references is renamed there too, so the pages work as
they do on the demo. Datetimes are moved so that the data's "now" is the real clock's (the
demo's fixed clock applies only to the demo itself).

Every payload that could run script writes its field's name into ``window.__pwned`` (or calls
``alert``), and every one that could fetch asks for :data:`OUTSIDE` - the browser test checks
both. :func:`write_hostile_store` writes it all through the real :class:`~layers.store.Store`
API, plus a saved grids version and an audit row with hostile notes.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

#: An address no request may reach (TEST-NET-2, RFC 5737).
OUTSIDE = "http://198.51.100.1"

#: Long values are this many characters.
LONG_CHARS = 10_000

#: Payload templates; ``{k}`` is the field the value sits in (``grids.name``).
PAYLOADS: tuple[str, ...] = (
    "<img src=\"" + OUTSIDE + "/{k}.png\" onerror=\"window.__pwned='{k}'\">",
    "</script><script>window.__pwned='{k}'</script>",
    "`+(window.__pwned='{k}')+`",
    "${{window.__pwned='{k}'}}",
    "\"'><svg onload=\"window.__pwned='{k}'\"><b onmouseover=alert('{k}')>quote'\"",
    "![beacon](" + OUTSIDE + "/{k}.png) [link](" + OUTSIDE + "/{k}) <" + OUTSIDE + "/auto>",
    "\u202e{k}\u200b\u200d\ufeff<iframe src=\"javascript:parent.__pwned='{k}'\"></iframe>\u2066",
    "<a href=\"javascript:window.__pwned='{k}'\">{k}</a> {{name}} %s :red[x] $x^2$ **b**",
    "<style>@import '" + OUTSIDE + "/{k}.css';</style><link rel=stylesheet href=\"" + OUTSIDE + "/{k}.css\">",
)
#: Index of the payload that is made :data:`LONG_CHARS` long (most rows keep the short form).
LONG_INDEX = 0


def payload(k: str, i: int, *, long: bool = False) -> str:
    """Payload ``i`` (cycling) for field ``k``; ``long`` pads it to :data:`LONG_CHARS` characters."""
    s = PAYLOADS[i % len(PAYLOADS)].format(k=k)
    if long:
        s = (s + "长" * LONG_CHARS)[:LONG_CHARS - len(s)] + s  # the payload at both ends
    return s


def _texts(k: str, n: int, *, unique: bool, long_every: int | None) -> list[str]:
    out = []
    for i in range(n):
        long = long_every is not None and i % long_every == LONG_INDEX and not unique
        s = payload(k, i, long=long)
        out.append(f"{s}#{i}" if unique else s)
    return out


def _set(df: pd.DataFrame, col: str, k: str, *, unique: bool = False, keep_null: bool = False,
         long_every: int | None = None) -> dict[str, str]:
    """Overwrite ``df[col]`` in place; returns old → new for the renamed values."""
    old = df[col].astype(object).tolist()
    new = _texts(k, len(df), unique=unique, long_every=long_every)
    if keep_null:
        new = [None if (o is None or (isinstance(o, float) and o != o)) else v for o, v in zip(old, new, strict=True)]
    df[col] = pd.Series(new, index=df.index, dtype=object)
    return {str(o): v for o, v in zip(old, new, strict=True) if v is not None}


def hostile_layers(layers: dict[str, pd.DataFrame], *, now: pd.Timestamp | None = None) -> dict[str, pd.DataFrame]:
    """A copy of the demo ``layers`` with hostile text in every free-text field (see the module)."""
    L = {k: v.copy() for k, v in layers.items()}
    for name in ("districts", "subdistricts", "communities"):
        _set(L[name], "name", f"{name}.name", long_every=3)
    g = L["grids"]
    _set(g, "name", "grids.name", long_every=9)
    _set(g, "leader", "grids.leader")

    b = L["buildings"]
    _set(b, "id", "buildings.id", unique=True)
    compounds = b["compound_id"].astype(object)
    distinct = sorted(compounds.dropna().unique())
    rename = {c: f"{payload('buildings.compound_id', i)}#{i}" for i, c in enumerate(distinct)}
    b["compound_id"] = pd.Series([rename.get(c) for c in compounds], index=b.index, dtype=object)
    if "compounds" in L:  # the compounds and their gates follow the buildings' hostile ids
        c = L["compounds"]
        c["id"] = pd.Series([rename.get(x, f"{payload('compounds.id', i)}#x{i}")
                             for i, x in enumerate(c["id"].astype(object))], index=c.index, dtype=object)
        _set(c, "name", "compounds.name", long_every=7)
        gt = L["gates"]
        gt["compound_id"] = pd.Series([rename.get(x) for x in gt["compound_id"].astype(object)],
                                      index=gt.index, dtype=object)
        _set(gt, "id", "gates.id", unique=True)
        _set(gt, "name", "gates.name")
        _set(gt, "open_hours", "gates.open_hours")

    f = L["facilities"]
    _set(f, "id", "facilities.id", unique=True)
    _set(f, "name", "facilities.name", long_every=5)
    r = L["roads"]
    _set(r, "id", "roads.id", unique=True)
    _set(r, "name", "roads.name", keep_null=True)

    w = L["workers"]
    workers = _set(w, "id", "workers.id", unique=True)
    _set(w, "name", "workers.name", long_every=20)
    _set(w, "phone", "workers.phone", keep_null=True)
    _set(w, "id_number", "workers.id_number")
    p = L["patrol_points"]
    p["worker_id"] = p["worker_id"].astype(str).map(workers).astype(object)
    _set(p, "fix_id", "patrol_points.fix_id", unique=True)

    inc = L["incidents"]
    cases = _set(inc, "service_request_id", "incidents.service_request_id", unique=True)
    for col in ("service_code", "service_name", "address", "reporter_name", "reporter_phone"):
        _set(inc, col, f"incidents.{col}", keep_null=col == "reporter_phone")
    _set(inc, "description", "incidents.description", long_every=500)
    ev = L["incident_events"]
    ev["service_request_id"] = ev["service_request_id"].astype(str).map(cases).astype(object)
    _set(ev, "event_id", "incident_events.event_id", unique=True)
    _set(ev, "actor", "incident_events.actor")
    _set(ev, "note", "incident_events.note", long_every=2000)

    if now is not None:  # the data's "now" (the demo's anchor) becomes ``now``
        from data.demo import DEMO_ANCHOR

        shift = (pd.Timestamp(now) - pd.Timestamp(DEMO_ANCHOR)).floor("min")
        for df in L.values():
            for col in df.columns:
                if pd.api.types.is_datetime64_any_dtype(df[col]):
                    df[col] = df[col] + shift
    return L


def write_hostile_store(path: Path | str, *, now: pd.Timestamp | None = None) -> dict[str, pd.DataFrame]:
    """Write the hostile small district into a new store at ``path``; returns the layers written.

    Besides the layers: a second version of ``grids`` saved with a hostile actor and note (the
    planner's version list) and an audit row with a hostile note (the Data page's audit log).
    """
    from data.demo import generate
    from layers.store import open_store

    if now is None:
        now = pd.Timestamp.now(tz="Asia/Shanghai").tz_localize(None)
    layers = hostile_layers(generate("small", seed=0), now=now)
    store = open_store(str(path))
    try:
        store.write(layers, mode="replace", actor=payload("audit.actor", 0), note=payload("audit.note", 5))
        grids = store.read("grids")
        store.save_version("grids", grids, actor=payload("versions.actor", 4), note=payload("versions.note", 0))
        store.save_version("grids", grids, actor=payload("versions.actor", 2), note=payload("versions.note", 3))
        from layers import plans
        from layers.permissions import Account

        for i, (who, why) in enumerate(((4, 0), (2, 3))):  # plan versions: the planner's history
            plans.save_plan(store, Account(payload("versions.actor", who), role="admin"),
                            plans.make_plan(store, grids), note=payload("versions.note", why),
                            confirm=True, effective=now - pd.Timedelta(days=30 * (1 - i)))
        store.record("export_unmasked", "incidents", rows=1, actor=payload("audit.actor", 1),
                     note=payload("audit.note", 6))
    finally:
        store.close()
    return layers
