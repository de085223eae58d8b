"""The intake API for real: ``uvicorn`` in a child process on a free port, hit with httpx.

One server per module on a hand-drawn two-grid GeoPackage (tests/_intake_world.py); the
store functions behind it are tested on both engines in tests/layers/test_intake.py.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import argon2
import httpx
import pytest

from tests._intake_world import IN_A, IN_B, fill
from tests._servers import http_server

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str], Path]]:
    from gridpulse.api import uvicorn_command
    from layers import accounts
    from layers.store import open_store

    path = tmp_path_factory.mktemp("api") / "store.gpkg"
    saved = accounts.HASHER
    accounts.HASHER = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    try:
        with open_store(str(path)) as s:
            tokens = fill(s)
    finally:
        accounts.HASHER = saved
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDPULSE_")}
    env.update(GRIDPULSE_STORE=str(path), PYTHONPATH=str(ROOT))
    with http_server(uvicorn_command(port=port), port=port, env=env, cwd=ROOT,
                     log=tmp_path_factory.mktemp("log") / "api.log") as url:
        yield url, tokens, path


def _h(token: str, lang: str = "en", **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept-Language": lang, **extra}


def test_services_and_docs_work_offline(api) -> None:
    url, tok, _ = api
    r = httpx.get(f"{url}/open311/v2/services.json", headers=_h(tok["hotline"], "zh-CN"))
    assert r.status_code == 200 and len(r.json()) == 45 and r.json()[0]["service_name"] == "暴露垃圾"
    assert httpx.get(f"{url}/open311/v2/services.json").status_code == 401
    docs = httpx.get(f"{url}/docs")
    assert docs.status_code == 200 and "/open311/v2/requests.json" in docs.text
    assert "http" not in docs.text.replace("http://", "").split("<body>")[0]  # no CDN assets
    assert "<script" not in docs.text
    spec = httpx.get(f"{url}/openapi.json").json()
    assert {"/open311/v2/requests.json", "/api/v1/fixes",
            "/api/v1/cases/{request_id}/actions"} <= set(spec["paths"])


def test_a_retried_post_makes_one_case(api) -> None:
    url, tok, path = api
    from layers.store import open_store

    body = {"service_code": "0101", "lat": IN_A[1], "long": IN_A[0], "description": "垃圾"}
    h = _h(tok["hotline"], **{"Idempotency-Key": "retry-me"})
    with open_store(str(path)) as s:
        before = s.count("incidents") if s.has_layer("incidents") else 0
    first = httpx.post(f"{url}/open311/v2/requests.json", headers=h, json=body)
    again = httpx.post(f"{url}/open311/v2/requests.json", headers=h, json=body)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() and again.headers["Idempotent-Replayed"] == "true"
    srid = first.json()[0]["service_request_id"]
    with open_store(str(path)) as s:
        assert s.count("incidents") == before + 1
    one = httpx.get(f"{url}/open311/v2/requests/{srid}.json", headers=_h(tok["hotline"]))
    assert one.status_code == 200 and one.json()[0]["service_code"] == "0101"
    # the same key with another body is refused
    other = httpx.post(f"{url}/open311/v2/requests.json", headers=h, json={**body, "level": 2})
    assert other.status_code == 422
    assert other.json()["errors"][0]["code"] == "api.error.idempotency_reused"


def test_a_form_encoded_post_as_georeport_sends_it(api) -> None:
    url, tok, _ = api
    r = httpx.post(f"{url}/open311/v2/requests.json", headers=_h(tok["hotline"]),
                   data={"service_code": "0401", "lat": str(IN_B[1]), "long": str(IN_B[0]),
                         "address_string": "乙路 1 号", "phone": "13900001111"})
    assert r.status_code == 201
    req = r.json()[0]["request"]
    assert req["address"] == "乙路 1 号" and "13900001111" not in r.text


def test_scope_and_errors_are_structured_in_both_languages(api) -> None:
    url, tok, _ = api
    out = httpx.post(f"{url}/open311/v2/requests.json", headers=_h(tok["hotline-a"], "zh"),
                     json={"service_code": "0101", "lat": IN_B[1], "long": IN_B[0]})
    assert out.status_code == 403
    err = out.json()["errors"][0]
    assert err["code"] == "auth.decision.out_of_scope" and "320106002" in err["message"]
    listed = httpx.get(f"{url}/open311/v2/requests.json", headers=_h(tok["hotline-a"]))
    assert listed.status_code == 200
    assert all(r["extended_attributes"]["grid_code"].startswith("320106001") for r in listed.json())
    bad = httpx.post(f"{url}/open311/v2/requests.json", headers=_h(tok["hotline"], "en"),
                     json={"service_code": "0101", "lat": 32.055})
    assert bad.status_code == 422
    assert bad.json() == {"errors": [{
        "code": "api.error.missing_field", "message": "The field long is missing", "row": None,
        "column": "long", "fix": "Send long with the request"}]}
    junk = httpx.post(f"{url}/open311/v2/requests.json", headers=_h(tok["hotline"]),
                      content=b"{not json", )
    assert junk.status_code == 400 and junk.json()["errors"][0]["code"] == "api.error.bad_json"


def test_fixes_in_batches_and_the_size_limit(api) -> None:
    url, tok, _ = api
    fixes = [{"worker_id": "w1", "time": f"2026-12-03T09:{m:02d}:{s:02d}+08:00",
              "lat": IN_A[1], "long": IN_A[0]} for m in range(10) for s in range(0, 60, 2)]
    r = httpx.post(f"{url}/api/v1/fixes", headers=_h(tok["w1"]), json={"fixes": fixes})
    assert r.status_code == 201 and r.json() == {"accepted": 300, "duplicates": 0}
    other = httpx.post(f"{url}/api/v1/fixes", headers=_h(tok["w1"]),
                       json={"fixes": [{**fixes[0], "worker_id": "W2"}]})
    assert other.status_code == 422 and other.json()["errors"][0]["row"] == 0
    big = httpx.post(f"{url}/api/v1/fixes", headers=_h(tok["w1"]),
                     content=b'{"fixes": [' + b" " * (3 * 1024 * 1024) + b"]}")
    assert big.status_code == 413 and big.json()["errors"][0]["code"] == "api.error.too_large"
    small_limit = httpx.post(f"{url}/open311/v2/requests.json", headers=_h(tok["hotline"]),
                             json={"description": "x" * 100_000})
    assert small_limit.status_code == 413


def test_a_department_system_reports_back(api) -> None:
    url, tok, _ = api
    srid = httpx.post(f"{url}/open311/v2/requests.json", headers=_h(tok["hotline"]),
                      json={"service_code": "0101", "lat": IN_A[1],
                            "long": IN_A[0]}).json()[0]["service_request_id"]
    act = f"{url}/api/v1/cases/{srid}/actions"
    assert httpx.post(act, headers=_h(tok["hotline"]), json={
        "action": "assign", "department": "urban_management"}).status_code == 200
    r = httpx.post(act, headers=_h(tok["dept"]), json={"action": "start_handling"})
    assert r.status_code == 200 and r.json()["request"]["extended_attributes"]["stage"] == "handling"
    wrong = httpx.post(act, headers=_h(tok["dept"]), json={"action": "start_handling"})
    assert wrong.status_code == 409
    refused = httpx.post(act, headers=_h(tok["dept"]), json={"action": "verify_pass"})
    assert refused.status_code == 403
    assert httpx.post(f"{url}/api/v1/cases/nope/actions", headers=_h(tok["dept"]),
                      json={"action": "start_handling"}).status_code == 404


def test_the_simulation_drives_the_api(api) -> None:
    """A short, sped-up simulated morning: cases, fixes every 30 s, steps of the loop."""
    import numpy as np
    import pandas as pd

    from gridpulse import simulate
    from layers import accounts
    from layers.store import open_store

    url, _, path = api
    saved = accounts.HASHER
    accounts.HASHER = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    try:
        with open_store(str(path)) as s:
            plan = simulate.plan_from_store(s)
            cases0, fixes0 = s.count("incidents"), s.count("patrol_points")
    finally:
        accounts.HASHER = saved
    plan.hourly = np.full(24, 120.0)  # 2 a minute: enough to see in 6 simulated minutes
    stats = simulate.run(url, plan, speed=600, hours=0.1, tick_s=0.1,
                         rng=np.random.default_rng(3), start=pd.Timestamp("2026-12-03 09:00"))
    assert stats.errors == 0, stats.refused
    assert stats.cases > 0 and stats.fixes == 6 * len(plan.workers)
    with open_store(str(path)) as s:
        assert s.count("incidents") - cases0 == stats.cases
        assert s.count("patrol_points") - fixes0 == stats.fixes


def test_serve_starts_the_api_next_to_the_dashboard_on_localhost(tmp_path) -> None:
    import sys

    from tests.dashboard.test_serve import _listening

    store = tmp_path / "s.gpkg"
    from layers.store import open_store

    with open_store(str(store)) as s:
        from tests._intake_world import layers

        s.write(layers(), mode="replace", actor="tests")
    port, api_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDPULSE_")}
    env.update(HOME=str(tmp_path), PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "gridpulse", "--lang", "en", "serve", "--port", str(port),
         "--api-port", str(api_port), "--store", str(store), "--no-demo"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None and not (
                _listening(port) and _listening(api_port)):
            time.sleep(0.3)
        assert _listening(api_port) == {"127.0.0.1"} and _listening(port) == {"127.0.0.1"}
        assert httpx.get(f"http://127.0.0.1:{api_port}/health", timeout=5).json() == {"status": "ok"}
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0].decode()
    assert f"127.0.0.1:{api_port}/docs" in out
    time.sleep(1)
    assert not _listening(api_port), "the API outlived serve"


def test_open311_answers_in_georeport_xml(api) -> None:
    """``.xml`` (and ``Accept: application/xml``) give the specification's XML layout, with
    hostile text escaped, and XML errors."""
    import xml.etree.ElementTree as ET

    url, tok, _ = api
    svc = httpx.get(f"{url}/open311/v2/services.xml", headers=_h(tok["hotline"], "en"))
    assert svc.status_code == 200 and svc.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(svc.content)
    assert root.tag == "services" and len(root.findall("service")) == 45
    first = root.find("service")
    assert [c.tag for c in first] == ["service_code", "service_name", "description", "metadata",
                                      "type", "keywords", "group"]
    assert first.findtext("service_code") == "0101" and first.findtext("metadata") == "false"
    hostile = 'a<b>&c]]></request><x y="1">\'"; ${x}`'
    r = httpx.post(f"{url}/open311/v2/requests.xml", headers=_h(tok["hotline"]),
                   data={"service_code": "0401", "lat": str(IN_B[1]), "long": str(IN_B[0]),
                         "description": hostile})
    assert r.status_code == 201 and r.headers["content-type"].startswith("application/xml")
    made = ET.fromstring(r.content)
    assert made.tag == "service_requests" and len(made) == 1
    srid = made.find("request").findtext("service_request_id")
    assert made.find("request/request").findtext("description") == hostile
    one = httpx.get(f"{url}/open311/v2/requests/{srid}",
                    headers=_h(tok["hotline"], Accept="application/xml"))
    req = ET.fromstring(one.content).find("request")
    assert req.findtext("service_request_id") == srid and req.findtext("description") == hostile
    assert req.findtext("status") == "open" and req.findtext("media_url") == ""
    assert req.findtext("extended_attributes/stage") == "collected"
    as_json = httpx.get(f"{url}/open311/v2/requests/{srid}.json", headers=_h(tok["hotline"]))
    assert as_json.json()[0]["description"] == hostile
    listed = ET.fromstring(httpx.get(f"{url}/open311/v2/requests.xml",
                                     headers=_h(tok["hotline"])).content)
    assert srid in [r.findtext("service_request_id") for r in listed.findall("request")]
    missing = httpx.get(f"{url}/open311/v2/requests/nope.xml", headers=_h(tok["hotline"]))
    err = ET.fromstring(missing.content)
    assert missing.status_code == 404 and err.tag == "errors"
    assert err.findtext("error/code") == "404" and err.findtext("error/key") == "api.error.not_found"
    assert httpx.get(f"{url}/open311/v2/services.xml").status_code == 401


def test_a_district_without_history_still_gets_a_simulated_day(tmp_path) -> None:
    """``plan_from_store`` on grids and workers but no incidents: every whistle-list item,
    reported inside the grids (it used to fail choosing from no items at all)."""
    import shapely

    from gridpulse import simulate
    from layers import accounts, taxonomy
    from layers.store import open_store

    saved = accounts.HASHER
    accounts.HASHER = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    try:
        with open_store(str(tmp_path / "new.gpkg")) as s:
            fill(s)
            assert s.count("incidents") == 0
            plan = simulate.plan_from_store(s)
    finally:
        accounts.HASHER = saved
    assert sorted(plan.items) == sorted(taxonomy.ITEMS)
    assert abs(plan.item_p.sum() - 1) < 1e-9
    grids = shapely.union_all(list(plan.grids.values()))
    for item in plan.items:
        assert len(plan.places[item]) and all(
            grids.contains(shapely.Point(x, y)) for x, y in plan.places[item])
