"""The layer model: one schema per layer, the single source of truth.

Every reader, validator, store engine, the demo generator and ``docs/layers.md``
take their columns, dtypes, allowed values, codes and personal-data markers from
here. ``python -m layers.schema`` regenerates ``docs/layers.md``; a test checks
that the committed file matches.

Examples
--------
>>> SCHEMAS["grids"].key
'code'
>>> SCHEMAS["grids"].field("community_code").ref
('communities', 'code')
>>> [f.name for f in SCHEMAS["workers"].personal_fields()]
['name', 'phone', 'id_number']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from geo import domain as _domain
from layers import taxonomy

DType = Literal["str", "code", "int", "float", "bool", "datetime"]
GeomType = Literal["Polygon", "Point", "LineString", "Point|Polygon"]

#: H3 resolutions stored as integer columns ``h3_<res>`` on every point layer.
H3_RESOLUTIONS: tuple[int, ...] = (7, 8, 9, 10)

#: Stages of the closed loop: defined once in :mod:`geo.domain` (with the stage sets).
STAGES: tuple[str, ...] = _domain.STAGES
WHISTLES: tuple[str, ...] = ("none", "work", "tough")  # 无 / 工作推进哨 / 攻坚克难哨
SOURCES: tuple[str, ...] = ("hotline_12345", "patrol", "resident_app", "sensor")
GRID_KINDS: tuple[str, ...] = ("comprehensive", "dedicated")
DEDICATED_TYPES: tuple[str, ...] = (
    "office_tower",  # 商务楼宇
    "business_district",  # 商圈
    "industrial_park",  # 产业园区
    "school",  # 学校
    "hospital",  # 医院
    "government",  # 机关单位
    "park",  # 公园景区
    "commercial_street",  # 商业街
    "campus",  # 高校园区
    "other",
)
WORKER_ROLES: tuple[str, ...] = ("grid_leader", "full_time", "part_time")
POSTS: tuple[str, ...] = ("A", "B")
BUILDING_KINDS: tuple[str, ...] = ("lowrise", "midrise", "highrise", "tower", "nonresidential")
FACILITY_KINDS: tuple[str, ...] = (
    "community_service_centre",  # 社区党群服务中心
    "police_post",  # 警务室
    "clinic",  # 社区卫生服务站
    "school",  # 中小学
    "kindergarten",  # 幼儿园
    "elderly_care",  # 养老服务站
    "market",  # 菜市场
    "park",  # 公园
)
#: Kinds of compound gates (小区出入口): pedestrian only, vehicle only, or both.
GATE_KINDS: tuple[str, ...] = ("pedestrian", "vehicle", "mixed")
ROAD_KINDS: tuple[str, ...] = ("arterial", "secondary", "local", "path", "river", "railway")
DEPARTMENTS: tuple[str, ...] = (
    "urban_management",  # 城管
    "housing",  # 住建
    "public_security",  # 公安
    "market_regulation",  # 市场监管
    "ecology_environment",  # 生态环境
    "water",  # 水务
    "landscaping",  # 园林绿化
    "transport",  # 交通
    "civil_affairs",  # 民政
    "emergency",  # 应急管理
    "subdistrict_office",  # 街道办事处
    "community",  # 社区居委会
)


@dataclass(frozen=True)
class Field:
    """One column of a layer.

    Parameters
    ----------
    name
        Canonical column name (ASCII, snake_case).
    dtype
        Logical type. ``"code"`` is a string of exactly ``digits`` decimal digits.
    doc_zh, doc_en
        What the column means, in Chinese and English.
    required
        The column must be present in an input file.
    nullable
        Empty cells are allowed.
    allowed
        The closed set of allowed values, if any.
    digits
        Exact number of digits for ``"code"`` fields.
    ref
        ``(layer, field)`` this value must exist in (a parent code or foreign key).
    personal
        Personal information under PIPL: masked on screens and exports for users
        who do not need it.
    aliases
        Other headers recognised in files people send (Chinese headers first).
    min, max
        Inclusive numeric bounds.
    """

    name: str
    dtype: DType
    doc_zh: str
    doc_en: str
    required: bool = True
    nullable: bool = False
    allowed: tuple[str, ...] | None = None
    digits: int | None = None
    ref: tuple[str, str] | None = None
    personal: bool = False
    aliases: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class LayerSchema:
    """The schema of one layer.

    Parameters
    ----------
    name
        Canonical layer name (also the table name in the store).
    title_zh, title_en
        Human names.
    geometry
        Geometry type, or ``None`` for attribute-only tables. ``"Polygon"``
        accepts MultiPolygon too; ``"Point|Polygon"`` accepts either.
    key
        Column holding the unique id.
    fields
        The columns, in order, not counting ``geometry`` and the ``h3_<res>``
        columns that the store derives for point layers.
    append_only
        Rows are never updated or deleted (the event log).
    """

    name: str
    title_zh: str
    title_en: str
    geometry: GeomType | None
    key: str
    fields: tuple[Field, ...] = field(default_factory=tuple)
    append_only: bool = False

    def field(self, name: str) -> Field:
        """Return the field called ``name`` (``KeyError`` if there is none)."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"layer {self.name!r} has no field {name!r}")

    @property
    def columns(self) -> list[str]:
        """Canonical column names in order (without geometry and H3 columns)."""
        return [f.name for f in self.fields]

    @property
    def h3_columns(self) -> list[str]:
        """Names of the derived H3 columns (point layers only)."""
        if self.geometry in ("Point", "Point|Polygon"):
            return [f"h3_{r}" for r in H3_RESOLUTIONS]
        return []

    def personal_fields(self) -> list[Field]:
        """Fields that hold personal information."""
        return [f for f in self.fields if f.personal]

    def alias_map(self) -> dict[str, str]:
        """Map every recognised header (lower-cased, stripped) to its canonical name."""
        out: dict[str, str] = {}
        for f in self.fields:
            for a in (f.name, *f.aliases):
                out[a.strip().lower()] = f.name
        return out


def _f(name: str, dtype: DType, zh: str, en: str, **kw: object) -> Field:
    return Field(name, dtype, zh, en, **kw)  # type: ignore[arg-type]


_NAME = _f("name", "str", "名称", "Name", aliases=("名称", "名字", "name_zh"))

SCHEMAS: dict[str, LayerSchema] = {}


def _add(s: LayerSchema) -> None:
    SCHEMAS[s.name] = s


_add(
    LayerSchema(
        "districts", "区", "Districts", "Polygon", "code",
        (
            _f("code", "code", "区划代码（6位，GB/T 2260）", "6-digit adcode (GB/T 2260)",
               digits=6, aliases=("区划代码", "代码", "adcode", "编码")),
            _NAME,
        ),
    )
)
_add(
    LayerSchema(
        "subdistricts", "街道", "Sub-districts", "Polygon", "code",
        (
            _f("code", "code", "街道代码（9位）", "9-digit sub-district code",
               digits=9, aliases=("街道代码", "代码", "编码")),
            _NAME,
            _f("district_code", "code", "所属区代码", "Parent district code",
               digits=6, ref=("districts", "code"), aliases=("所属区代码", "区代码")),
        ),
    )
)
_add(
    LayerSchema(
        "communities", "社区", "Communities", "Polygon", "code",
        (
            _f("code", "code", "社区代码（12位）", "12-digit community code",
               digits=12, aliases=("社区代码", "代码", "编码")),
            _NAME,
            _f("subdistrict_code", "code", "所属街道代码", "Parent sub-district code",
               digits=9, ref=("subdistricts", "code"), aliases=("所属街道代码", "街道代码")),
        ),
    )
)
_add(
    LayerSchema(
        "grids", "网格", "Grids", "Polygon", "code",
        (
            _f("code", "code", "网格代码（15位，DB11/T 2157）", "15-digit grid code (DB11/T 2157)",
               digits=15, aliases=("网格代码", "网格编码", "代码", "编码")),
            _NAME,
            _f("kind", "str", "网格类型：综合网格/专属网格", "comprehensive or dedicated",
               allowed=GRID_KINDS, aliases=("网格类型", "类型")),
            _f("dedicated_type", "str", "专属网格类别", "Type of a dedicated grid",
               nullable=True, required=False, allowed=DEDICATED_TYPES, aliases=("专属类别",)),
            _f("community_code", "code", "所属社区代码", "Parent community code",
               digits=12, ref=("communities", "code"), aliases=("所属社区代码", "社区代码")),
            _f("leader", "str", "网格长姓名", "Grid leader's name", nullable=True,
               required=False, personal=True, aliases=("网格长",)),
            _f("workers", "int", "网格员人数", "Number of grid workers", min=0,
               required=False, aliases=("网格员人数", "网格员数")),
            _f("households", "int", "户数", "Households", min=0, aliases=("户数",)),
            _f("population", "int", "人口", "Residents", min=0, aliases=("人口", "人口数", "常住人口")),
        ),
    )
)
_add(
    LayerSchema(
        "buildings", "楼栋", "Buildings", "Point|Polygon", "id",
        (
            _f("id", "str", "楼栋编号", "Building id", aliases=("楼栋编号", "编号")),
            _f("kind", "str", "楼栋类型", "Building type", allowed=BUILDING_KINDS,
               required=False, nullable=True, aliases=("楼栋类型",)),
            _f("compound_id", "str", "所属小区（不可拆分单元）", "Residential compound (an unsplittable unit)",
               required=False, nullable=True, ref=("compounds", "id"), aliases=("小区编号", "小区")),
            _f("floors", "int", "层数", "Floors", min=0, required=False, nullable=True,
               aliases=("层数",)),
            _f("households", "int", "户数", "Households", min=0, aliases=("户数",)),
            _f("population", "int", "人口", "Residents", min=0, aliases=("人口", "人口数")),
            _f("grid_code", "code", "所属网格代码", "Grid code", digits=15,
               ref=("grids", "code"), aliases=("网格代码", "所属网格")),
        ),
    )
)
_add(
    LayerSchema(
        "compounds", "小区", "Residential compounds", "Polygon", "id",
        (
            _f("id", "str", "小区编号", "Compound id", aliases=("小区编号", "编号")),
            _f("name", "str", "小区名称", "Compound name", aliases=("小区名称", "名称", "名字")),
            _f("community_code", "code", "所属社区代码", "Community code", digits=12,
               ref=("communities", "code"), required=False, nullable=True,
               aliases=("所属社区代码", "社区代码")),
        ),
    )
)
_add(
    LayerSchema(
        "gates", "小区出入口", "Compound gates", "Point", "id",
        (
            _f("id", "str", "出入口编号", "Gate id", aliases=("出入口编号", "大门编号", "编号")),
            _f("compound_id", "str", "所属小区编号", "Compound id", ref=("compounds", "id"),
               aliases=("所属小区编号", "小区编号", "小区")),
            _f("kind", "str", "出入口类型：人行/车行/人车混行", "pedestrian, vehicle or mixed",
               allowed=GATE_KINDS, required=False, nullable=True,
               aliases=("出入口类型", "类型")),
            _f("name", "str", "出入口名称", "Gate name", required=False, nullable=True,
               aliases=("出入口名称", "名称")),
            _f("open_hours", "str", "开放时间（如 06:00-23:00）", "Opening hours (e.g. 06:00-23:00)",
               required=False, nullable=True, aliases=("开放时间", "opening_hours")),
        ),
    )
)
_add(
    LayerSchema(
        "facilities", "公共服务设施", "Facilities", "Point", "id",
        (
            _f("id", "str", "设施编号", "Facility id", aliases=("设施编号", "编号")),
            _f("kind", "str", "设施类型", "Facility type", allowed=FACILITY_KINDS,
               aliases=("设施类型", "类型")),
            _NAME,
            _f("community_code", "code", "所属社区代码", "Community code", digits=12,
               ref=("communities", "code"), required=False, nullable=True,
               aliases=("社区代码",)),
        ),
    )
)
_add(
    LayerSchema(
        "roads", "道路", "Roads", "LineString", "id",
        (
            _f("id", "str", "道路编号", "Road id", aliases=("道路编号", "编号")),
            _f("kind", "str", "道路类型（river/railway 为障碍）", "Road type (river and railway are barriers)",
               allowed=ROAD_KINDS, aliases=("道路类型", "类型")),
            _f("name", "str", "道路名称", "Road name", required=False, nullable=True,
               aliases=("道路名称", "名称")),
            _f("walkable", "bool", "可步行", "Walkable", required=False, aliases=("可步行",)),
        ),
    )
)
_add(
    LayerSchema(
        "workers", "网格员", "Grid workers", None, "id",
        (
            _f("id", "str", "人员编号", "Worker id", aliases=("人员编号", "工号", "编号")),
            _f("name", "str", "姓名", "Name", personal=True, aliases=("姓名",)),
            _f("phone", "str", "手机号", "Phone", personal=True, nullable=True, required=False,
               aliases=("手机号", "电话", "联系电话")),
            _f("id_number", "str", "身份证号", "ID number", personal=True, nullable=True,
               required=False, aliases=("身份证号", "身份证")),
            _f("role", "str", "岗位：网格长/专职/兼职", "grid_leader, full_time or part_time",
               allowed=WORKER_ROLES, aliases=("岗位", "角色")),
            _f("grid_code", "code", "所属网格代码", "Grid code", digits=15,
               ref=("grids", "code"), aliases=("网格代码", "所属网格")),
            _f("post", "str", "AB岗", "A/B post", allowed=POSTS, nullable=True,
               required=False, aliases=("AB岗", "岗位类别")),
        ),
    )
)
_add(
    LayerSchema(
        "incidents", "事件", "Incidents", "Point", "service_request_id",
        (
            # Open311 GeoReport v2 core
            _f("service_request_id", "str", "事件编号", "Service request id (Open311)",
               aliases=("事件编号", "工单号", "工单编号", "编号", "案件编号", "受理编号", "工单流水号",
                        "流水号", "id", "ticket_id", "case_id", "request_id")),
            _f("status", "str", "Open311 状态 open/closed", "Open311 status",
               allowed=("open", "closed"), required=False),
            _f("service_code", "str", "事项代码（= item_code）", "Open311 service code (= item_code)",
               required=False, nullable=True),
            _f("service_name", "str", "事项名称", "Open311 service name", required=False,
               nullable=True, aliases=("事项名称",)),
            _f("description", "str", "问题描述", "Description", nullable=True, required=False,
               aliases=("问题描述", "描述", "诉求内容", "反映内容", "来电内容", "诉求描述", "工单内容")),
            _f("requested_datetime", "datetime", "受理时间", "Requested time",
               aliases=("受理时间", "来电时间", "上报时间", "发生时间", "创建时间", "登记时间", "created_at", "reported_at")),
            _f("updated_datetime", "datetime", "更新时间", "Updated time", nullable=True,
               required=False, aliases=("更新时间",)),
            _f("expected_datetime", "datetime", "应办结时间", "Expected (due) time",
               nullable=True, required=False,
               aliases=("应办结时间", "办理时限", "办理期限", "办结时限", "截止时间")),
            _f("address", "str", "地址", "Address", nullable=True, required=False,
               aliases=("地址", "事发地址", "详细地址", "事发地点", "问题地址", "诉求地址")),
            # GridPulse extensions
            _f("category_code", "str", "吹哨清单大类代码", "Whistle-list category code",
               allowed=taxonomy.CATEGORY_CODES,
               aliases=("大类代码", "类别代码", "类别", "大类", "问题类型", "问题分类", "问题类别",
                        "诉求类型", "诉求分类", "诉求类别", "事项分类", "工单分类", "反映类别",
                        "业务类型", "category", "type")),
            _f("item_code", "str", "吹哨清单事项代码", "Whistle-list item code",
               allowed=taxonomy.ITEM_CODES, aliases=("事项代码", "小类代码", "事项", "小类", "item", "subcategory")),
            _f("level", "int", "等级 1–3", "Level 1–3", min=1, max=3,
               aliases=("等级", "级别", "紧急程度", "缓急程度", "重要程度", "优先级", "priority", "urgency")),
            _f("source", "str", "来源", "Source", allowed=SOURCES,
               aliases=("来源", "渠道", "受理渠道", "来源渠道", "诉求渠道", "来电渠道", "channel")),
            _f("stage", "str", "流程阶段", "Workflow stage", allowed=STAGES,
               aliases=("阶段", "状态", "办理状态", "工单状态", "处理状态", "办结状态", "案件状态")),
            _f("whistle", "str", "吹哨类型", "Whistle kind", allowed=WHISTLES, required=False,
               aliases=("吹哨类型",)),
            _f("department", "str", "承办部门", "Responsible department", allowed=DEPARTMENTS,
               nullable=True, required=False,
               aliases=("承办部门", "责任部门", "承办单位", "办理单位", "主办单位", "处理部门", "责任单位",
                        "办理部门", "agency", "agency_responsible")),
            _f("grid_code", "code", "所属网格代码", "Grid code", digits=15, ref=("grids", "code"),
               nullable=True, required=False, aliases=("网格代码", "所属网格", "网格编码")),
            _f("reporter_name", "str", "反映人姓名", "Reporter's name", personal=True,
               nullable=True, required=False, aliases=("反映人", "来电人", "姓名", "联系人", "诉求人")),
            _f("reporter_phone", "str", "反映人电话", "Reporter's phone", personal=True,
               nullable=True, required=False, aliases=("联系电话", "来电号码", "电话", "联系方式", "诉求人电话")),
            _f("closed_datetime", "datetime", "结案时间", "Closed time", nullable=True,
               required=False, aliases=("结案时间", "办结时间", "完成时间", "办结日期", "closed_at")),
            _f("reworks", "int", "返工次数", "Rework count", min=0, required=False),
            _f("extensions", "int", "延期次数", "Extension count", min=0, required=False),
        ),
    )
)
_add(
    LayerSchema(
        "incident_events", "事件流转记录", "Incident events", None, "event_id",
        (
            _f("event_id", "str", "记录编号", "Event id"),
            _f("service_request_id", "str", "事件编号", "Incident id",
               ref=("incidents", "service_request_id")),
            _f("action", "str", "操作", "Action"),
            _f("from_stage", "str", "原阶段", "Stage before", allowed=STAGES, nullable=True),
            _f("to_stage", "str", "新阶段", "Stage after", allowed=STAGES),
            _f("actor", "str", "操作人", "Actor", personal=True),
            _f("time", "datetime", "时间", "Time"),
            _f("note", "str", "备注", "Note", nullable=True, required=False),
        ),
        append_only=True,
    )
)
_add(
    LayerSchema(
        "patrol_points", "巡查轨迹点", "Patrol GPS fixes", "Point", "fix_id",
        (
            _f("fix_id", "str", "定位点编号", "Fix id", required=False),
            _f("worker_id", "str", "网格员编号", "Worker id", ref=("workers", "id"),
               aliases=("人员编号", "网格员编号", "工号")),
            _f("time", "datetime", "定位时间", "Fix time", aliases=("定位时间", "时间")),
            _f("accuracy_m", "float", "定位精度（米）", "Accuracy (m)", min=0, nullable=True,
               required=False, aliases=("精度",)),
        ),
    )
)

#: Headers recognised as longitude / latitude in tables (CSV, XLSX).
LON_ALIASES: tuple[str, ...] = ("lon", "lng", "long", "longitude", "x", "经度", "东经")
LAT_ALIASES: tuple[str, ...] = ("lat", "latitude", "y", "纬度", "北纬")

#: The parent of each administrative level, and the field that points to it.
HIERARCHY: tuple[tuple[str, str, str], ...] = (
    ("subdistricts", "district_code", "districts"),
    ("communities", "subdistrict_code", "subdistricts"),
    ("grids", "community_code", "communities"),
)


def render_markdown() -> str:
    """Render ``docs/layers.md`` from the schemas."""
    lines = [
        "# Layers (图层)",
        "",
        "Generated from `layers/schema.py` by `python -m layers.schema`; a test checks this file",
        "is current. Do not edit by hand.",
        "",
        f"Point layers also carry `h3_<res>` int64 columns for resolutions {list(H3_RESOLUTIONS)},",
        "computed once at ingest. Coordinates are stored in WGS-84 (EPSG:4326).",
        "Fields marked **personal** hold personal information (PIPL) and are masked for users who",
        "do not need them.",
        "",
    ]
    for s in SCHEMAS.values():
        lines += [
            f"## `{s.name}` — {s.title_zh} / {s.title_en}",
            "",
            f"Geometry: {s.geometry or 'none (table)'}; key: `{s.key}`"
            + ("; append-only" if s.append_only else ""),
            "",
            "| column | type | required | null | allowed / rule | 说明 | meaning | personal |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for f in s.fields:
            rule = []
            if f.digits:
                rule.append(f"{f.digits} digits")
            if f.allowed:
                rule.append(", ".join(f"`{a}`" for a in f.allowed[:12])
                            + (" …" if len(f.allowed) > 12 else ""))
            if f.min is not None or f.max is not None:
                rule.append(f"[{f.min if f.min is not None else ''}, {f.max if f.max is not None else ''}]")
            if f.ref:
                rule.append(f"→ `{f.ref[0]}.{f.ref[1]}`")
            lines.append(
                f"| `{f.name}` | {f.dtype} | {'yes' if f.required else 'no'} | "
                f"{'yes' if f.nullable else 'no'} | {'; '.join(rule)} | {f.doc_zh} | {f.doc_en} | "
                f"{'**personal**' if f.personal else ''} |"
            )
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    from pathlib import Path

    out = Path(__file__).resolve().parent.parent / "docs" / "layers.md"
    out.write_text(render_markdown(), encoding="utf-8")
    print(f"wrote {out}")
