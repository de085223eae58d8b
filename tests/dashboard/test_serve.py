"""``gridpulse serve``: the demo goes into an empty store once, then streamlit serves the app."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

from gridpulse.cli import build_parser
from gridpulse.commands import serve
from layers.store import open_store


def test_the_command_line() -> None:
    args = build_parser().parse_args(["serve", "--port", "9000", "--preset", "small", "--store", "x.gpkg"])
    assert (args.port, args.preset, args.store, args.no_demo) == (9000, "small", "x.gpkg", False)
    cmd = serve.streamlit_command(port=9000)
    assert cmd[:4] == [sys.executable, "-m", "streamlit", "run"] and cmd[4].endswith("dashboard/app.py")
    flags = dict(zip(cmd[5::2], cmd[6::2], strict=True))
    assert flags["--server.headless"] == "true" and flags["--server.port"] == "9000"
    assert flags["--browser.gatherUsageStats"] == "false"
    assert flags["--server.enableStaticServing"] == "true"


def test_progress_bar_accepts_the_shapes_generators_use() -> None:
    out = io.StringIO()
    bar = serve.ProgressBar(out, width=10)
    bar(0.5, "grids")
    assert "[#####.....]  50.0% grids" in out.getvalue()
    bar(3, 4)
    assert "75.0%" in out.getvalue()
    bar(fraction=1.0, message="done")
    bar.close()
    assert out.getvalue().endswith("100.0% done\n")


def test_an_empty_store_gets_the_demo_once(tmp_path) -> None:
    url = str(tmp_path / "fresh.gpkg")
    seen: list[float] = []
    out = io.StringIO()
    assert serve.ensure_demo(url, preset="small", lang="en", progress=lambda f, m: seen.append(f), out=out)
    assert seen and seen == sorted(seen) and seen[-1] == 1.0  # one bar over the whole run
    assert "loading the demo district (small)" in out.getvalue()
    s = open_store(url)
    assert s.count("grids") > 0
    s.close()
    assert not serve.ensure_demo(url, preset="small", lang="zh", out=out)  # already has data
    assert "数据库已有数据" in out.getvalue()


def test_serve_runs_streamlit_on_the_port(demo_store, tmp_path) -> None:
    store = tmp_path / "s.gpkg"
    shutil.copy(demo_store, store)
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        port = sk.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDPULSE_")}
    env["HOME"] = str(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gridpulse", "serve", "--port", str(port), "--store", str(store),
         "--address", "127.0.0.1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        ok = False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as r:
                    ok = r.status == 200
                    break
            except OSError:
                time.sleep(0.3)
        assert ok, "streamlit did not answer"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/app/static/leaflet/leaflet.js", timeout=5) as r:
            assert r.status == 200 and "javascript" in r.headers["Content-Type"]
    finally:
        proc.terminate()
        out = proc.communicate(timeout=20)[0].decode()
    assert "http://localhost:" + str(port) in out or "localhost" in out


def _listening(port: int) -> set[str]:
    """Local addresses with a socket listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found: set[str] = set()
    for name, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = open(name).read().splitlines()[1:]  # noqa: SIM115
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr, hexport = local.split(":")
            if state == "0A" and int(hexport, 16) == port and len(addr) == width:
                if width == 8:
                    found.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(addr)[::-1]))
                else:
                    raw = b"".join(bytes.fromhex(addr[i:i + 8])[::-1] for i in range(0, 32, 8))
                    found.add(socket.inet_ntop(socket.AF_INET6, raw))
    return found


def test_serve_listens_on_localhost_only_and_prints_demo_accounts_once(demo_store, tmp_path) -> None:
    from layers import accounts

    store = tmp_path / "s.gpkg"
    shutil.copy(demo_store, store)
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        port = sk.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDPULSE_")}
    env["HOME"] = str(tmp_path)
    proc = subprocess.Popen(  # no --address
        [sys.executable, "-m", "gridpulse", "--lang", "en", "serve", "--port", str(port),
         "--store", str(store)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180  # 14 password hashes and a cold streamlit, on 2 cores
        while time.monotonic() < deadline and proc.poll() is None and not _listening(port):
            time.sleep(0.3)
        time.sleep(0.5)
        assert _listening(port) == {"127.0.0.1"}, _listening(port)
    finally:
        proc.terminate()
        out = proc.communicate(timeout=20)[0].decode()
    assert "Demo accounts" in out and "/wall?kiosk=" in out
    line = next(x for x in out.splitlines() if x.split()[:1] == ["planner"])
    password = line.split()[1]
    with open_store(str(store)) as s:
        assert accounts.get_account(s, "planner").role == "planner"
        assert accounts.resolve_session(s, accounts.sign_in(s, "planner", password)) is not None
        demo = {a.username: a.role for a in accounts.list_accounts(s)
                if a.username in accounts.DEMO_USERS.values()}
        assert demo == {u: r for r, u in accounts.DEMO_USERS.items()}  # one per role
    # a second start creates nothing and prints no password again
    again = io.StringIO()
    assert serve.demo_accounts(str(store), lang="en", port=port, out=again) == {}
    assert again.getvalue() == ""
