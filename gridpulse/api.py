"""The intake API over HTTP (FastAPI on uvicorn): a thin caller of :mod:`layers.intake`.

Endpoints
---------
* ``GET  /open311/v2/services.json`` -- the whistle list as Open311 services.
* ``POST /open311/v2/requests.json`` -- a new service request (JSON or form-encoded, as
  GeoReport v2 posts); answers 201 with ``[{service_request_id, service_notice, account_id,
  duplicate_of, request}]``.
* ``GET  /open311/v2/requests.json`` -- filters ``service_request_id`` (comma list),
  ``service_code``, ``status``, ``start_date``, ``end_date``.
* ``GET  /open311/v2/requests/{id}.json``.
* ``POST /api/v1/fixes`` -- ``{"fixes": [{worker_id, time, lat, long, accuracy_m}, ...]}``.
* ``POST /api/v1/cases/{id}/actions`` -- ``{"action": "report_for_duty", "note": ...}``.
* ``GET  /api/v1/kpis``, ``GET /api/v1/hotspots`` -- the case KPIs and the hot spots of the
  token's scope, through the same :mod:`layers.analysis` jobs as the CLI and the pages.
* ``GET  /api/v1/patrols``, ``POST /api/v1/plans/proposals`` -- patrol hours and re-partition
  proposals, likewise (:mod:`gridpulse._api_reports`).
* Every Open311 call also answers in GeoReport's XML: ``.xml`` instead of ``.json``, or
  no extension and ``Accept: application/xml`` (:mod:`gridpulse.open311_xml`).
* ``GET  /docs`` -- the OpenAPI description as a self-contained page (no CDN: offline-safe);
  ``GET /openapi.json`` the document itself; ``GET /health``.

Every call but ``/health``, ``/docs`` and ``/openapi.json`` needs ``Authorization: Bearer
<token>`` (:mod:`layers.apitokens`). POSTs honour ``Idempotency-Key``. Bodies above
:data:`LIMITS` answer 413. Errors are ``{"errors": [{code, message, row, column, fix}]}`` in
the language of ``Accept-Language`` (zh or en).

Run it with ``gridpulse api`` (or next to the dashboard with ``gridpulse serve``), or
``uvicorn --factory gridpulse.api:create_app`` with ``GRIDPULSE_STORE`` set.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gridpulse import open311_xml
from layers import intake
from layers.apitokens import resolve_api_token
from layers.errors import StoreError
from layers.i18n import normalize_lang, t
from layers.permissions import Account, PermissionDenied

#: Largest request body accepted, by path prefix (bytes); everything else: ``default``.
LIMITS: dict[str, int] = {"/api/v1/fixes": 2 * 1024 * 1024, "default": 64 * 1024}
#: A resolved token is trusted this long (seconds) before it is looked up again.
TOKEN_TTL_S = 5.0
DEFAULT_PORT = 8502


def wants_xml(path: str, accept: str | None) -> bool:
    """GeoReport's format: the path's ``.xml``/``.json``, else the ``Accept`` header (XML
    when an XML media type comes before any JSON one)."""
    if path.endswith(".xml"):
        return True
    if path.endswith(".json") or not accept:
        return False
    for part in accept.lower().split(","):
        media = part.split(";")[0].strip()
        if media.endswith("xml"):
            return True
        if media.endswith("json") or media == "*/*":
            return False
    return False


#: Root and item element of each Open311 answer in XML.
_XML_SHAPES = {"services": ("services", "service"), "requests": ("service_requests", "request")}


def _answer(request: Request, body: Any, status: int = 200, *, shape: str,
            **headers: str) -> Response:
    """``body`` as JSON, or as GeoReport XML when the request asks for it."""
    if wants_xml(request.url.path, request.headers.get("accept")):
        root, item = _XML_SHAPES[shape]
        return Response(open311_xml.to_xml(root, item, body), status_code=status,
                        media_type=open311_xml.MEDIA_TYPE, headers=headers or None)
    return _json(body, status, **headers)


def _lang(request: Request) -> str:
    raw = request.query_params.get("locale") or request.headers.get("accept-language") or "zh"
    return normalize_lang(raw.split(",")[0].split(";")[0].strip() or "zh")


class BodyLimit:
    """ASGI middleware: refuse bodies above :data:`LIMITS` with 413 and a JSON error, both by
    ``Content-Length`` and while streaming (a chunked upload cannot slip past)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        limit = next((v for k, v in LIMITS.items() if path.startswith(k)), LIMITS["default"])
        headers = dict(scope.get("headers") or [])
        lang = normalize_lang((headers.get(b"accept-language", b"zh").decode("latin-1")
                               .split(",")[0].split(";")[0].strip()) or "zh")
        xml = wants_xml(path, headers.get(b"accept", b"").decode("latin-1"))
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(send, int(declared), limit, lang, xml)
            return
        seen = 0
        refused = False

        async def counted() -> Message:
            nonlocal seen, refused
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    refused = True
                    raise _TooLarge(seen)
            return msg

        try:
            await self.app(scope, counted, send)
        except _TooLarge as e:
            await _too_large(send, e.size, limit, lang, xml)


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        self.size = size


async def _too_large(send: Send, size: int, limit: int, lang: str, xml: bool = False) -> None:
    body = intake.IntakeError.one("too_large", status=413, size=size, limit=limit,
                                  rows=intake.MAX_FIXES).to_json(lang)
    data = open311_xml.errors_xml(body, 413) if xml else \
        json.dumps(body, ensure_ascii=False).encode()
    ctype = open311_xml.MEDIA_TYPE if xml else "application/json; charset=utf-8"
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", ctype.encode()),
                            (b"content-length", str(len(data)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": data})


def _json(body: Any, status: int = 200, **headers: str) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers or None)


def _err(error: Exception, lang: str, xml: bool = False) -> Response:
    from layers.workflow import IllegalTransitionError

    if isinstance(error, intake.IntakeError):
        body, status = error.to_json(lang), error.status
    elif isinstance(error, PermissionDenied):
        body, status = intake.refusal_json(error, lang), 403
    elif isinstance(error, IllegalTransitionError):
        status = 404 if error.key.endswith("not_found") else 409
        body = intake.refusal_json(error, lang)
    elif isinstance(error, StoreError):
        body, status = intake.store_error_json(error, lang), 503
    else:
        raise error
    if xml:
        return Response(open311_xml.errors_xml(body, status), status_code=status,
                        media_type=open311_xml.MEDIA_TYPE)
    return _json(body, status)


class _Stores:
    """One store per worker thread (a PostGIS store holds one connection), opened lazily."""

    def __init__(self, url: str) -> None:
        from layers.store import open_store

        self.url = url
        self._local = threading.local()
        self._open = open_store
        self._all: list[Any] = []
        self._lock = threading.Lock()
        pg = url.startswith(("postgresql://", "postgres://"))
        self._serial: threading.RLock | None = None if pg else threading.RLock()
        self.main = self.get()

    def get(self) -> Any:
        s = getattr(self._local, "store", None)
        if s is None:
            s = self._open(self.url)
            self._local.store = s
            with self._lock:
                self._all.append(s)
        return s

    def run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """``fn(store, *args, **kwargs)`` with this thread's store; one at a time on a
        GeoPackage (its readers and writers in one process must not overlap)."""
        if self._serial is None:
            return fn(self.get(), *args, **kwargs)
        with self._serial:
            return fn(self.get(), *args, **kwargs)

    def close(self) -> None:
        with self._lock:
            for s in self._all:
                s.close()
            self._all.clear()


class Batcher:
    """Collects concurrent Open311 POSTs and writes them together
    (:func:`layers.intake.create_requests`: one transaction per account and batch).

    A request never waits for company: the first one is written at once, and those that
    arrive meanwhile form the next batch. Each caller gets its own result or error.
    """

    def __init__(self, stores: _Stores, *, max_items: int = 500) -> None:
        self.stores = stores
        self.max_items = max_items
        self.queue: asyncio.Queue[tuple[Any, asyncio.Future[Any]]] | None = None
        self.task: asyncio.Task[None] | None = None

    async def submit(self, item: Any) -> Any:
        """Queue ``(account, payload, request id, lang)``; the :class:`~layers.intake.Created`."""
        if self.queue is None or self.task is None or self.task.done():
            self.queue = asyncio.Queue()
            self.task = asyncio.create_task(self._loop(self.queue))
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self.queue.put((item, fut))
        return await fut

    async def _write(self, items: list[Any]) -> list[Any]:
        """``create_requests`` of the batch; when it fails as a whole (a bug met by one
        request), each request again alone, so the others still get their cases."""
        try:
            return list(await run_in_threadpool(self.stores.run, intake.create_requests, items))
        except Exception as e:  # noqa: BLE001 - handed to the callers
            if len(items) == 1:
                return [e]
        out: list[Any] = []
        for item in items:
            try:
                out += await run_in_threadpool(self.stores.run, intake.create_requests, [item])
            except Exception as e:  # noqa: BLE001 - this caller gets its error
                out.append(e)
        return out

    async def _loop(self, queue: asyncio.Queue[tuple[Any, asyncio.Future[Any]]]) -> None:
        while True:
            batch = [await queue.get()]
            while not queue.empty() and len(batch) < self.max_items:
                batch.append(queue.get_nowait())
            items = [b[0] for b in batch]
            results = await self._write(items)
            for (_, fut), res in zip(batch, results, strict=True):
                if fut.done():
                    continue
                if isinstance(res, BaseException):
                    fut.set_exception(res)
                else:
                    fut.set_result(res)


def create_app(store_url: str | None = None) -> FastAPI:
    """The intake API for the store at ``store_url`` (default: ``GRIDPULSE_STORE``)."""
    from layers.config import settings

    url = store_url or settings().store_url
    stores = _Stores(url)
    tokens: dict[str, tuple[float, Account | None]] = {}
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        stores.close()

    app = FastAPI(title=t("api.title", "en") + " · " + t("api.title", "zh"),
                  description=t("api.description", "zh") + "\n\n" + t("api.description", "en"),
                  version="1", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.stores = stores

    def account_of(request: Request) -> Account:
        auth = request.headers.get("authorization") or ""
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        hit = tokens.get(token)
        if hit is not None and time.monotonic() - hit[0] < TOKEN_TTL_S:
            acc = hit[1]
        else:
            acc = stores.run(resolve_api_token, token) if token else None
            if len(tokens) > 10_000:
                tokens.clear()
            tokens[token] = (time.monotonic(), acc)
        if acc is None:
            raise intake.IntakeError.one("no_token", status=401)
        return acc

    async def call(request: Request, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if fn is account_of:  # a token seen within TOKEN_TTL_S: no hop to a worker thread
            auth = request.headers.get("authorization") or ""
            hit = tokens.get(auth[7:].strip() if auth[:7].lower() == "bearer " else "")
            if hit is not None and hit[1] is not None and time.monotonic() - hit[0] < TOKEN_TTL_S:
                return hit[1]
        return await run_in_threadpool(fn, *args, **kwargs)

    async def with_store(fn: Any, *args: Any, **kwargs: Any) -> Any:
        """``fn(store, ...)`` in a worker thread, with that thread's store."""
        return await run_in_threadpool(stores.run, fn, *args, **kwargs)

    batcher = Batcher(stores)

    async def payload_of(request: Request, body: bytes) -> dict[str, Any]:
        ctype = request.headers.get("content-type", "")
        if "application/x-www-form-urlencoded" in ctype:
            return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        try:
            data = json.loads(body.decode("utf-8")) if body.strip() else {}
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise intake.IntakeError.one("bad_json", status=400, error=str(e)[:120]) from None
        if not isinstance(data, dict):
            raise intake.IntakeError.one("bad_json", status=400, error="not an object")
        return data

    async def on_error(request: Request, exc: Exception) -> Response:
        return _err(exc, _lang(request),
                    wants_xml(request.url.path, request.headers.get("accept")))

    from layers.workflow import IllegalTransitionError

    for cls in (intake.IntakeError, PermissionDenied, StoreError, IllegalTransitionError):
        app.add_exception_handler(cls, on_error)
    app.add_middleware(BodyLimit)

    async def post_idempotent(request: Request, work: Any) -> JSONResponse:
        body = await request.body()
        acc = await call(request, account_of, request)
        payload = await payload_of(request, body)
        key = request.headers.get("idempotency-key")
        fp = intake.fingerprint("POST", request.url.path, body)
        out = await with_store(intake.idempotent, acc, key, fp,
                               lambda seed: work(acc, payload, seed))
        headers = {"Idempotent-Replayed": "true"} if out.replayed else {}
        return _json(out.body, out.status, **headers)

    # -- routes --------------------------------------------------------------------------------

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/open311/v2/services.json", summary="Open311 services (the whistle list)",
             tags=["open311"])
    @app.get("/open311/v2/services.xml", summary="Open311 services (XML)", tags=["open311"])
    @app.get("/open311/v2/services", include_in_schema=False)
    async def get_services(request: Request) -> Response:
        lang = _lang(request)
        await call(request, account_of, request)
        return _answer(request, intake.services(lang), shape="services")

    @app.post("/open311/v2/requests.xml", status_code=201, tags=["open311"],
              summary="Report a case (XML answer)")
    @app.post("/open311/v2/requests", status_code=201, include_in_schema=False)
    @app.post("/open311/v2/requests.json", status_code=201, tags=["open311"],
              summary="Report a case (Open311 POST service request)",
              openapi_extra={"requestBody": {"content": {
                  "application/json": {"schema": {"type": "object", "required": [
                      "service_code", "lat", "long"], "properties": {
                      "service_code": {"type": "string", "example": "0101"},
                      "lat": {"type": "number"}, "long": {"type": "number"},
                      "description": {"type": "string"}, "address_string": {"type": "string"},
                      "requested_datetime": {"type": "string", "format": "date-time"},
                      "first_name": {"type": "string"}, "last_name": {"type": "string"},
                      "phone": {"type": "string"}, "level": {"type": "integer", "enum": [1, 2, 3]},
                      "source": {"type": "string", "example": "hotline_12345"}}}},
                  "application/x-www-form-urlencoded": {"schema": {"type": "object"}}}},
                  "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                                  "schema": {"type": "string"}}]})
    async def post_request(request: Request) -> Response:
        lang = _lang(request)
        body = await request.body()
        acc = await call(request, account_of, request)
        payload = await payload_of(request, body)
        key = request.headers.get("idempotency-key")
        path = request.url.path.removesuffix(".json").removesuffix(".xml")  # any format
        keyed = intake.Keyed(key, intake.fingerprint("POST", path, body)) \
            if key else None
        res = await batcher.submit((acc, payload, None, lang, keyed))
        if isinstance(res, intake.Outcome):  # the stored answer of an earlier attempt
            return _answer(request, res.body, res.status, shape="requests",
                           **{"Idempotent-Replayed": "true"})
        return _answer(request, res.answer, 201, shape="requests")

    @app.get("/open311/v2/requests.json", tags=["open311"],
             summary="Cases in the token's scope (Open311 GET service requests)")
    @app.get("/open311/v2/requests.xml", tags=["open311"], summary="Cases (XML)")
    @app.get("/open311/v2/requests", include_in_schema=False)
    async def get_requests(request: Request) -> Response:
        lang = _lang(request)
        acc = await call(request, account_of, request)
        q = request.query_params
        ids = [i.strip() for i in (q.get("service_request_id") or "").split(",") if i.strip()]
        out = await with_store(intake.list_requests, acc,
                         service_code=q.get("service_code"), status=q.get("status"),
                         start_date=q.get("start_date"), end_date=q.get("end_date"),
                         ids=ids or None, lang=lang)
        return _answer(request, out, shape="requests")

    @app.get("/open311/v2/requests/{request_id}", include_in_schema=False)  # registered last
    @app.get("/open311/v2/requests/{request_id}.json", tags=["open311"],
             summary="One case (Open311 GET service request)")
    @app.get("/open311/v2/requests/{request_id}.xml", tags=["open311"], summary="One case (XML)")
    async def get_one(request: Request, request_id: str) -> Response:
        lang = _lang(request)
        acc = await call(request, account_of, request)
        return _answer(request, await with_store(intake.get_request, acc, request_id, lang=lang),
                       shape="requests")

    @app.post("/api/v1/fixes", status_code=201, tags=["patrol"],
              summary="A batch of GPS fixes from grid workers' phones",
              openapi_extra={"requestBody": {"content": {"application/json": {"schema": {
                  "type": "object", "required": ["fixes"], "properties": {"fixes": {
                      "type": "array", "maxItems": intake.MAX_FIXES, "items": {
                          "type": "object", "required": ["worker_id", "time", "lat", "long"],
                          "properties": {"worker_id": {"type": "string"},
                                         "time": {"type": "string", "format": "date-time"},
                                         "lat": {"type": "number"}, "long": {"type": "number"},
                                         "accuracy_m": {"type": "number"},
                                         "fix_id": {"type": "string"}}}}}}}}}})
    async def post_fixes(request: Request) -> JSONResponse:
        lang = _lang(request)
        def work(acc: Account, payload: dict[str, Any], seed: str | None) -> intake.Outcome:
            fixes = payload.get("fixes")
            if not isinstance(fixes, list):
                raise intake.IntakeError.one("missing_field", field="fixes", column="fixes")
            return intake.Outcome(201, stores.run(intake.post_fixes, acc, fixes, lang=lang))

        return await post_idempotent(request, work)

    @app.post("/api/v1/cases/{request_id}/actions", tags=["cases"],
              summary="A step on a case (report for duty, start handling, report back ...)",
              openapi_extra={"requestBody": {"content": {"application/json": {"schema": {
                  "type": "object", "required": ["action"], "properties": {
                      "action": {"type": "string", "example": "report_for_duty"},
                      "note": {"type": "string"},
                      "time": {"type": "string", "format": "date-time"}}}}}}})
    async def post_action(request: Request, request_id: str) -> JSONResponse:
        lang = _lang(request)
        def work(acc: Account, payload: dict[str, Any], seed: str | None) -> intake.Outcome:
            return intake.Outcome(200, stores.run(intake.case_action, acc, request_id, payload,
                                                  lang=lang))

        return await post_idempotent(request, work)

    @app.get("/api/v1/kpis", tags=["analysis"],
             summary="Case KPIs in the token's scope (the case board's and `gridpulse kpis`' "
                     "numbers): ?from=&to=&now=&by=")
    async def get_kpis(request: Request) -> JSONResponse:
        acc = await call(request, account_of, request)
        return _json(await with_store(intake.kpis, acc, dict(request.query_params)))

    @app.get("/api/v1/hotspots", tags=["analysis"],
             summary="Gi* and emerging hot spots per H3 cell (the hotspot page's and "
                     "`gridpulse hotspots`' classes): ?res=&from=&to=&category=&emerging=")
    async def get_hotspots(request: Request) -> JSONResponse:
        acc = await call(request, account_of, request)
        return _json(await with_store(intake.hotspots, acc, dict(request.query_params)))

    from gridpulse._api_reports import make_router  # patrol hours, plan proposals

    app.include_router(make_router(lambda request: call(request, account_of, request), with_store))

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(docs_html(app.openapi()))

    return app


def docs_html(spec: dict[str, Any]) -> str:
    """A self-contained HTML page listing the OpenAPI operations (no external assets)."""
    e = html.escape
    rows = []
    for path, ops in spec.get("paths", {}).items():
        for method, op in ops.items():
            body = op.get("requestBody", {}).get("content", {})
            schema = next(iter(body.values()), {}).get("schema") if body else None
            rows.append(
                f"<section><h2><code class='m'>{e(method.upper())}</code> <code>{e(path)}</code></h2>"
                f"<p>{e(op.get('summary', ''))}</p>"
                + (f"<pre>{e(json.dumps(schema, ensure_ascii=False, indent=1))}</pre>"
                   if schema else "") + "</section>")
    info = spec.get("info", {})
    return ("<!doctype html><html lang='zh'><head><meta charset='utf-8'>"
            f"<title>{e(info.get('title', 'API'))}</title><style>"
            "body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
            "section{border-top:1px solid #ccd;padding:.5rem 0}.m{color:#0a5}"
            "pre{background:#f4f6fa;padding:.5rem;overflow:auto;font-size:.8rem}</style></head>"
            f"<body><h1>{e(info.get('title', ''))}</h1>"
            f"<p style='white-space:pre-line'>{e(info.get('description', ''))}</p>"
            "<p><a href='/openapi.json'>openapi.json</a></p>" + "".join(rows) + "</body></html>")


def serve(store_url: str, *, port: int = DEFAULT_PORT, address: str = "127.0.0.1",
          log_level: str = "warning", workers: int = 1) -> None:
    """Run the API with uvicorn (blocks): in this process, or in ``workers`` processes that
    share the port (each with its own store connections and case batcher; on a GeoPackage,
    which allows one writer at a time, more than one only adds lock waits)."""
    import os

    import uvicorn

    if workers <= 1:
        uvicorn.run(create_app(store_url), host=address, port=port, log_level=log_level,
                    access_log=False)
        return
    os.environ["GRIDPULSE_STORE"] = store_url  # read by create_app in each worker process
    uvicorn.run("gridpulse.api:create_app", factory=True, host=address, port=port,
                log_level=log_level, access_log=False, workers=workers)


def uvicorn_command(*, port: int, address: str = "127.0.0.1", workers: int = 1) -> list[str]:
    """The command line that runs the API in a child process (``GRIDPULSE_STORE`` from env),
    in ``workers`` processes sharing the port when more than one."""
    import sys

    return [sys.executable, "-m", "uvicorn", "--factory", "gridpulse.api:create_app",
            "--host", address, "--port", str(port), "--log-level", "warning",
            "--no-access-log", *(["--workers", str(workers)] if workers > 1 else [])]
