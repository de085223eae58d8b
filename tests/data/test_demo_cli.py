"""``gridpulse demo`` and ``data.demo.load_into`` against a real GeoPackage store."""

from __future__ import annotations

import geopandas as gpd
import shapely

from data import demo
from gridpulse.cli import main
from layers.store import open_store


def test_demo_command_fills_an_empty_store_and_refills_a_demo_store(tmp_path, capsys) -> None:
    path = tmp_path / "demo.gpkg"
    assert main(["--lang", "en", "demo", "--preset", "small", "--seed", "0", "--store", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "demo district written to" in out and "incidents:" in out
    assert "patrol tracks 100%" in err and "writing to the store 100%" in err  # progress on stderr
    layers = demo.generate("small", seed=0)
    with open_store(str(path)) as store:
        assert demo.is_demo(store)
        for name, df in layers.items():
            assert store.count(name) == len(df), name
        log = store.audit_log()
        assert (log["actor"] == demo.DEMO_ACTOR).all() and log["note"].str.startswith(demo.DEMO_NOTE).all()
    # again, with another seed: the append-only event log is replaced with the whole file
    assert main(["--lang", "zh", "demo", "--preset", "small", "--seed", "5", "--store", str(path)]) == 0
    assert "演示区已写入" in capsys.readouterr().out
    with open_store(str(path)) as store:
        assert demo.is_demo(store)
        assert store.count("incidents") == len(demo.generate("small", seed=5)["incidents"])


def test_demo_command_leaves_a_store_with_real_data_alone(tmp_path, capsys) -> None:
    path = tmp_path / "real.gpkg"
    real = gpd.GeoDataFrame({"code": ["320106"], "name": ["鼓楼区"]},
                            geometry=[shapely.box(118.7, 32.0, 118.8, 32.1)], crs=4326)
    with open_store(str(path)) as store:
        store.write({"districts": real}, actor="planner", note="imported")
        assert not demo.is_demo(store)
    assert main(["--lang", "en", "demo", "--preset", "small", "--store", str(path)]) == 1
    assert "not the demo" in capsys.readouterr().err
    with open_store(str(path)) as store:
        assert store.read("districts")["name"].tolist() == ["鼓楼区"]
        assert store.layer_names() == ["districts"]


def test_load_into_returns_the_row_counts_it_wrote(tmp_path) -> None:
    with open_store(str(tmp_path / "s.gpkg")) as store:
        assert not demo.is_demo(store)
        counts = demo.load_into(store, "small", seed=1)
        assert counts == {name: store.count(name) for name in counts}
        assert demo.is_demo(store)
