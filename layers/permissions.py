"""Who may do what, where: roles, scopes on the administrative ladder, one check.

Every account has a **role** (:data:`ROLES`), a **scope** -- a code on the ladder that the
account looks after (district 6 digits, sub-district 9, community 12, grid 15; codes nest by
prefix, so ``320106001`` contains the grid ``320106001002003``) -- and, for department
handlers, a **department** (:data:`layers.schema.DEPARTMENTS`).

:func:`can` is the one permission check. Application functions (:mod:`layers.app`) call it
before they change anything; pages call it to decide what to show, but hiding a button is
never the check. :func:`filter_frame` limits what a read shows to the account's scope.

==========================  ==============  ==================  =============================================
role                        workflow role   scope               may (besides the wall, explorer, hotspots)
==========================  ==============  ==================  =============================================
admin 系统管理员              command_centre  any                 everything: accounts, import, unmask, plans
district_leader 区领导        district_leader district            cases (instruct, evaluate), patrols, planner view
subdistrict_secretary 书记    subdistrict_*   sub-district        cases incl. 攻坚克难哨, patrols, export
subdistrict_director 主任     subdistrict_*   sub-district        cases incl. 攻坚克难哨, patrols, export
subdistrict_leader 班子成员   subdistrict_*   sub-district        cases (工作推进哨), patrols, export
command_centre 指挥中心       command_centre  sub-district        cases (assign, verify, extensions), patrols, data
community_secretary 社区书记  community       community           cases of the community, patrols, case contacts
grid_leader 网格长            grid_worker     grid or community   cases of the grid (collect, verify), patrols
grid_worker_full 专职网格员   grid_worker     grid                cases of the grid (collect, verify), own patrols
grid_worker_part 兼职网格员   grid_worker     grid                cases of the grid (collect, verify), own patrols
department 职能部门承办人     department      district or below   cases of its department only
planner 规划人员              --              any                 planner saves/rollbacks, boundary imports, data
analyst 分析人员              --              any                 read only, masked exports
kiosk 指挥大屏                --              any                 the wall only, no personal data
==========================  ==============  ==================  =============================================

Examples
--------
>>> a = Account("w1", role="grid_worker_full", scope_code="320106001001001")
>>> can(a, "case.whistle", scope_code="320106001001001").allowed
False
>>> can(a, "case.collect", scope_code="320106001001001").allowed
True
>>> can(a, "case.collect", scope_code="320106001001002").key
'auth.decision.out_of_scope'
>>> print(can(a, "case.whistle").message("en"))
the role “full-time grid worker” may not act on a case (blow the whistle)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from layers.errors import GridPulseError
from layers.i18n import catalogue, normalize_lang, t
from layers.schema import DEPARTMENTS

if TYPE_CHECKING:  # pandas is imported where it is used: the CLI parser imports this module
    import pandas as pd

#: Scope levels by code length.
LEVELS: dict[int, str] = {6: "district", 9: "subdistrict", 12: "community", 15: "grid"}
LEVEL_DIGITS: dict[str, int] = {v: k for k, v in LEVELS.items()}

#: Account roles, in the order the ladder reads (catalogue ``auth.role.<code>``).
ROLES: tuple[str, ...] = (
    "admin", "district_leader", "subdistrict_secretary", "subdistrict_director",
    "subdistrict_leader", "command_centre", "community_secretary", "grid_leader",
    "grid_worker_full", "grid_worker_part", "department", "planner", "analyst", "kiosk",
)

#: The workflow role (:data:`layers.workflow.ROLES`) each account role acts as on a case.
WORKFLOW_ROLE: dict[str, str | None] = {
    "admin": "command_centre",
    "district_leader": "district_leader",
    "subdistrict_secretary": "subdistrict_secretary",
    "subdistrict_director": "subdistrict_director",
    "subdistrict_leader": "subdistrict_leader",
    "command_centre": "command_centre",
    "community_secretary": "community",
    "grid_leader": "grid_worker",
    "grid_worker_full": "grid_worker",
    "grid_worker_part": "grid_worker",
    "department": "department",
    "planner": None,
    "analyst": None,
    "kiosk": None,
}

#: Scope levels each role may hold (``None`` in the tuple: no scope = the whole store).
SCOPE_LEVELS: dict[str, tuple[str | None, ...]] = {
    "admin": (None, "district", "subdistrict"),
    "district_leader": ("district",),
    "subdistrict_secretary": ("subdistrict",),
    "subdistrict_director": ("subdistrict",),
    "subdistrict_leader": ("subdistrict",),
    "command_centre": ("subdistrict", "district"),
    "community_secretary": ("community",),
    "grid_leader": ("grid", "community"),
    "grid_worker_full": ("grid",),
    "grid_worker_part": ("grid",),
    "department": ("district", "subdistrict", None),
    "planner": (None, "district", "subdistrict", "community"),
    "analyst": (None, "district", "subdistrict", "community"),
    "kiosk": (None, "district", "subdistrict", "community"),
}

PAGES: tuple[str, ...] = ("explorer", "wall", "incidents", "hotspots", "patrol", "data", "planner")
_ALL = frozenset(ROLES)
_PEOPLE = _ALL - {"kiosk"}
_LEADERS = frozenset({"district_leader", "subdistrict_secretary", "subdistrict_director",
                      "subdistrict_leader", "command_centre"})
_GRID = frozenset({"grid_leader", "grid_worker_full", "grid_worker_part"})

#: Which roles may do each (non-case) action. ``case.<action>`` is decided by the workflow
#: role (:data:`WORKFLOW_ROLE`) plus scope and department; see :func:`can`.
RULES: dict[str, frozenset[str]] = {
    "view.wall": _ALL,
    "view.explorer": _PEOPLE,
    "view.hotspots": _PEOPLE,
    "view.incidents": _PEOPLE - {"planner"},
    "view.patrol": _LEADERS | _GRID | {"admin", "community_secretary", "analyst"},
    "view.data": frozenset({"admin", "planner", "analyst", "command_centre"}),
    "view.planner": frozenset({"admin", "planner", "analyst", "district_leader",
                               "subdistrict_secretary", "subdistrict_director"}),
    "import": frozenset({"admin", "planner", "command_centre"}),
    "export": frozenset({"admin", "planner", "analyst", "command_centre", "district_leader",
                         "subdistrict_secretary", "subdistrict_director", "subdistrict_leader"}),
    "unmask": frozenset({"admin"}),
    # the contacts of one case: its own handlers (decided with scope and department)
    "unmask.case": frozenset({"admin", "command_centre", "community_secretary", "department"})
    | _GRID,
    "plan.save": frozenset({"admin", "planner"}),
    "plan.rollback": frozenset({"admin", "planner"}),
    "accounts": frozenset({"admin"}),
}
#: Layers each importing role may replace or append to (admin: every layer).
IMPORT_LAYERS: dict[str, frozenset[str]] = {
    "planner": frozenset({"districts", "subdistricts", "communities", "grids", "buildings",
                          "facilities", "roads"}),
    "command_centre": frozenset({"incidents", "patrol_points", "workers"}),
}


@dataclass(frozen=True)
class Account:
    """A signed-in person (or the wall kiosk): what the permission check needs.

    Parameters
    ----------
    username
        Unique login name.
    role
        One of :data:`ROLES`.
    scope_code
        District / sub-district / community / grid code; ``""`` for the whole store.
    department
        For ``department`` handlers, one of :data:`layers.schema.DEPARTMENTS`.
    display_name
        The person's name as shown (personal data: masked in tables others see).
    disabled
        A disabled account may do nothing.
    """

    username: str
    role: str
    scope_code: str = ""
    department: str = ""
    display_name: str = ""
    disabled: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def workflow_role(self) -> str | None:
        """The :data:`layers.workflow.ROLES` code this account acts as on cases."""
        return WORKFLOW_ROLE.get(self.role)

    @property
    def level(self) -> str | None:
        """``district`` / ``subdistrict`` / ``community`` / ``grid``, or ``None`` (everything)."""
        return LEVELS.get(len(self.scope_code)) if self.scope_code else None

    @property
    def is_kiosk(self) -> bool:
        """True for the read-only wall kiosk."""
        return self.role == "kiosk"

    @property
    def name(self) -> str:
        """Display name, else the user name."""
        return self.display_name or self.username

    def covers(self, code: str | None) -> bool:
        """True when ``code`` (any level) lies inside this account's scope.

        A code above the scope (the sub-district of a grid worker) is not covered.
        """
        if not self.scope_code:
            return True
        return code is not None and str(code).startswith(self.scope_code)


@dataclass(frozen=True)
class Decision:
    """The answer of :func:`can`: ``allowed``, and why (a catalogue key and its params)."""

    allowed: bool
    key: str = "auth.decision.allowed"
    params: Mapping[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.allowed

    def message(self, lang: str | None = None) -> str:
        """Why, in ``lang``."""
        return t(self.key, lang, **_render(self.params, lang))

    def fix(self, lang: str | None = None) -> str | None:
        """What to do instead (``None`` when the catalogue has no advice)."""
        key = f"{self.key}.fix"
        return t(key, lang, **_render(self.params, lang)) if key in catalogue() else None


class PermissionDenied(GridPulseError, PermissionError):
    """An action was refused by :func:`can`; nothing changed.

    ``decision`` says why; ``str(error)`` is English, :meth:`message` renders any language.
    """

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        super().__init__(decision.key, **decision.params)

    def message(self, lang: str | None = None) -> str:
        """"Refused: <reason>. Nothing was changed." in ``lang``."""
        return t("auth.decision.refused", lang, reason=self.decision.message(lang))

    def fix(self, lang: str | None = None) -> str | None:
        """What to do instead, in ``lang``."""
        return self.decision.fix(lang)


def role_label(role: str, lang: str | None = None) -> str:
    """``auth.role.<role>`` in ``lang`` (the code itself when unknown)."""
    key = f"auth.role.{role}"
    return t(key, lang) if key in catalogue() else role


def scope_label(code: str, lang: str | None = None) -> str:
    """``区 320106`` / ``sub-district 320106001`` ...; the whole district for ``""``."""
    if not code:
        return t("auth.decision.whole_district", lang)
    level = LEVELS.get(len(code))
    return f"{t(f'auth.level.{level}', lang)} {code}" if level else code


def _render(params: Mapping[str, Any], lang: str | None) -> dict[str, Any]:
    out = dict(params)
    if isinstance(out.get("role"), str):
        out["role"] = role_label(out["role"], lang)
    if isinstance(out.get("action"), str):
        out["action"] = _action_label(out["action"], lang)
    for k in ("department", "mine"):
        if isinstance(out.get(k), str):
            dkey = f"incidents.department.{out[k]}"
            out[k] = t(dkey, lang) if dkey in catalogue() else out[k]
    if isinstance(out.get("scope"), str):
        out["scope"] = scope_label(out["scope"], lang)
    return out


def _action_label(action: str, lang: str | None) -> str:
    head, _, rest = action.partition(".")
    if head == "case":
        wkey = f"incidents.action.{rest}"
        what = t(wkey, lang) if wkey in catalogue() else rest
        sep = "（{}）" if normalize_lang(lang) == "zh" else " ({})"
        return t("auth.action.case", lang) + sep.format(what)
    if head == "view":
        pkey = f"auth.page.{rest}"
        page = t(pkey, lang) if pkey in catalogue() else rest
        sep = "「{}」" if normalize_lang(lang) == "zh" else " {}"
        return t("auth.action.view", lang) + sep.format(page)
    key = f"auth.action.{action.replace('.', '_')}"
    if key in catalogue():
        return t(key, lang)
    key = f"auth.action.{head}"
    return t(key, lang) if key in catalogue() else action


def _deny(key: str, **params: Any) -> Decision:
    return Decision(False, f"auth.decision.{key}", params)


def can(account: Account, action: str, *, scope_code: str | None = None,
        department: str | None = None, layer: str | None = None) -> Decision:
    """May ``account`` do ``action`` (on something at ``scope_code``, of ``department``)?

    Parameters
    ----------
    account
        Who asks.
    action
        ``view.<page>``, ``case.<workflow action>``, ``import``, ``export``, ``unmask``,
        ``unmask.case``, ``plan.save``, ``plan.rollback`` or ``accounts``.
    scope_code
        The code of what is acted on (a case's grid code, a layer's community...); ``None``
        when the action is not about one place (the check then looks at the role only).
    department
        The case's department (``case.*`` and ``unmask.case``).
    layer
        The layer (``import``).

    Returns
    -------
    Decision
        Truthy when allowed; otherwise ``key``/``params`` say why, in zh and en.
    """
    if account.disabled:
        return _deny("disabled")
    role = account.role
    if action.startswith("case."):
        wf = account.workflow_role
        if wf is None:
            return _deny("role_not_allowed", role=role, action=action)
        from layers.workflow import TRANSITIONS_BY_ACTION

        step = TRANSITIONS_BY_ACTION.get(action[5:])
        if step is not None and wf not in step.roles:
            return _deny("role_not_allowed", role=role, action=action)
    else:
        allowed = RULES.get(action)
        if allowed is None or role not in allowed:
            return _deny("role_not_allowed", role=role, action=action)
    if action == "import" and layer is not None and role != "admin" and \
            layer not in IMPORT_LAYERS.get(role, frozenset()):
        return _deny("layer_not_allowed", role=role, layer=layer)
    if scope_code is not None and not account.covers(scope_code):
        return _deny("out_of_scope", target=str(scope_code), scope=account.scope_code)
    if role == "department" and (action.startswith("case.") or action == "unmask.case") \
            and action != "case.collect" and department is not None \
            and department != account.department:
        return _deny("other_department", department=department, mine=account.department)
    if role == "community_secretary" and action.startswith("case.") and department is not None \
            and department != "community" and _handler_only(action[5:]):
        # the community handles (部门报到...) the cases sent to the residents' committee only
        return _deny("other_department", department=department, mine="community")
    return Decision(True)


def _handler_only(action: str) -> bool:
    from layers.workflow import TRANSITIONS_BY_ACTION

    step = TRANSITIONS_BY_ACTION.get(action)
    return step is not None and step.roles <= frozenset({"department", "community"})


def require(account: Account, action: str, **kwargs: Any) -> None:
    """:func:`can`, raising :class:`PermissionDenied` when refused."""
    decision = can(account, action, **kwargs)
    if not decision:
        raise PermissionDenied(decision)


def pages(account: Account) -> list[str]:
    """The pages (:data:`PAGES`) ``account`` may open, in order."""
    return [p for p in PAGES if can(account, f"view.{p}")]


# -- scope filters -----------------------------------------------------------------------------

#: The column holding each layer's place on the ladder (a code scopes compare by prefix).
SCOPE_COLUMN: dict[str, str] = {
    "incidents": "grid_code", "workers": "grid_code", "buildings": "grid_code",
    "grids": "code", "facilities": "community_code",
}


def scope_mask(account: Account, df: pd.DataFrame, layer: str) -> pd.Series:
    """Boolean mask of the rows of ``df`` (rows of ``layer``) that ``account`` may see.

    Incidents: inside the scope, and for department handlers of their department.
    Workers, buildings, grids, facilities: inside the scope. Patrol fixes: of workers inside
    the scope (needs ``worker_grid`` -- pass the ``workers`` frame through
    :func:`filter_frame`). Other layers (boundaries, roads): every row.
    """
    import pandas as pd

    keep = pd.Series(True, index=df.index)
    if account.disabled:
        return ~keep
    col = SCOPE_COLUMN.get(layer)
    if account.scope_code and col is not None and col in df.columns:
        keep &= df[col].astype("str").str.startswith(account.scope_code).fillna(False)
    if layer == "incidents" and account.role == "department" and "department" in df.columns:
        keep &= (df["department"] == account.department).fillna(False)
    return keep.astype(bool)


def filter_frame(account: Account, df: pd.DataFrame, layer: str, *,
                 workers: pd.DataFrame | None = None) -> pd.DataFrame:
    """The rows of ``df`` (a ``layer`` frame) inside ``account``'s scope (a view; copy to change).

    ``patrol_points`` rows are kept when their ``worker_id`` is one of ``workers`` (the
    workers layer; it is scope-filtered here).

    Examples
    --------
    >>> import pandas as pd
    >>> inc = pd.DataFrame({"grid_code": ["320106001001001", "320106002001001"],
    ...                     "department": ["water", "housing"]})
    >>> filter_frame(Account("c", role="community_secretary", scope_code="320106001001"), inc,
    ...              "incidents").index.tolist()
    [0]
    >>> filter_frame(Account("d", role="department", scope_code="320106", department="housing"),
    ...              inc, "incidents").index.tolist()
    [1]
    """
    if layer == "patrol_points" and account.scope_code:
        if workers is None or "worker_id" not in df.columns:
            return df.iloc[0:0]
        ok = filter_frame(account, workers, "workers")["id"]
        return df[df["worker_id"].isin(set(ok))]
    mask = scope_mask(account, df, layer)
    return df if bool(mask.all()) else df[mask.to_numpy()]


def scope_where(account: Account, layer: str, *, grid_codes: Iterable[str] | None = None
                ) -> dict[str, Any]:
    """Column filters (``Store.read(where=...)``) that push the scope down into the engine.

    ``grid_codes`` are every grid code of the store; the ones inside the scope become an
    ``IN`` list (the engines filter by equality, not prefix). Department handlers get their
    department. Returns ``{}`` when nothing needs filtering.
    """
    where: dict[str, Any] = {}
    col = SCOPE_COLUMN.get(layer)
    if account.scope_code and col == "grid_code" and grid_codes is not None:
        where[col] = sorted(c for c in grid_codes if str(c).startswith(account.scope_code))
    if layer == "incidents" and account.role == "department":
        where["department"] = account.department
    return where


class AccountError(GridPulseError, ValueError):
    """An account operation failed (bad input, wrong password, locked...); nothing changed.

    ``key`` is the catalogue key (``auth.account.*``); :meth:`message` renders any language.
    """

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key if key.startswith("auth.") else f"auth.account.{key}", **params)

    def _rendered(self, lang: str | None) -> dict[str, Any]:
        out = dict(self.params)
        if isinstance(out.get("role"), str):
            out["role"] = role_label(out["role"], lang)
        if isinstance(out.get("level"), str):
            out["level"] = t(f"auth.level.{out['level']}", lang)
        return out


# -- validation of account fields ---------------------------------------------------------------


def check_fields(role: str, scope_code: str, department: str) -> None:
    """Raise ``ValueError`` (a catalogue message) when role, scope and department do not fit."""
    if role not in ROLES:
        raise AccountError("bad_role", role=role, roles=", ".join(ROLES))
    level = LEVELS.get(len(scope_code)) if scope_code else None
    if (scope_code and (not scope_code.isdigit() or level is None)) or \
            level not in SCOPE_LEVELS[role]:
        want = next((lv for lv in SCOPE_LEVELS[role] if lv), "district")
        raise AccountError("bad_scope", role=role, scope=scope_code or "—",
                           level=want, digits=LEVEL_DIGITS[want])
    if role == "department" and department not in DEPARTMENTS:
        raise AccountError("bad_department", department=department or "—",
                           departments=", ".join(DEPARTMENTS))


__all__ = [
    "LEVELS", "PAGES", "ROLES", "RULES", "WORKFLOW_ROLE", "Account", "Decision",
    "PermissionDenied", "can", "check_fields", "filter_frame", "pages", "require",
    "role_label", "scope_label", "scope_mask", "scope_where",
]
