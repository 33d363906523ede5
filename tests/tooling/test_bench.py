"""bench: the quick benchmark runs end to end and its figures are complete and sane.

Only sanity here (everything measured, nothing lost at the paced rate, async
ahead of sync): how fast is the benchmark's business, not the tests'.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import skip_or_fail
from workshop.postgres import find_postgres_bin
from workshop.steps import REPO
from workshop.redis import find_redis_server

FANOUT = ["step03", "redis", "pubsub", "step05", "floor"]
SCALEOUT = ["one", "two"]
HISTORY = ["step06-history", "step07-sqlite", "step07-postgres"]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """Run `python -m bench --quick` once, into a temporary directory (about 20 s)."""
    if find_redis_server() is None:
        skip_or_fail("no redis-server to start (see `make redis`)")
    out = tmp_path_factory.mktemp("bench")
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=100,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out, result.stdout, json.loads((out / "results.json").read_text())


def test_writes_every_file_and_no_traceback(quick_run):
    out, stdout, results = quick_run
    for name in ["results.json", "results.md", "io_wait.png", "fanout.png", "scaleout.png"]:
        assert (out / name).stat().st_size > 0, name
    assert (out / "io_wait.png").read_bytes().startswith(b"\x89PNG")
    markdown = (out / "results.md").read_text()
    for heading in ["Sync versus async", "Fan-out", "Scale-out", "Idle connections"]:
        assert heading in markdown
    assert results["machine"]["cores"] >= 1 and results["machine"]["python"]
    assert "Traceback" not in stdout


def test_a_progress_line_per_configuration(quick_run):
    _, stdout, results = quick_run
    assert stdout.count("[fanout]") == len(FANOUT)
    assert stdout.count("[scaleout]") == len(SCALEOUT)
    assert stdout.count("[io]") == len(results["io"]["rows"])
    assert "[connections]" in stdout


def test_async_is_faster_than_sync_under_io_waits(quick_run):
    _, _, results = quick_run
    rows = {row["clients"]: row for row in results["io"]["rows"]}
    assert rows[10]["async_median_s"] < rows[10]["sync_median_s"]
    # Sync serialises the 100 ms waits, so 10 clients need a second at least.
    assert rows[10]["sync_median_s"] >= 0.95


@pytest.mark.parametrize("section, keys", [("fanout", FANOUT), ("scaleout", SCALEOUT)])
def test_every_configuration_delivers_everything_at_the_paced_rate(quick_run, section, keys):
    _, _, results = quick_run
    configs = {config["key"]: config for config in results[section]["configs"]}
    assert sorted(configs) == sorted(keys)
    for key, config in configs.items():
        for phase in ("paced", "burst"):
            figures = config["summary"][phase]
            assert figures["deliveries_per_s"] > 0, (key, phase)
            assert 0 < figures["latency_ms"]["p50"] <= figures["latency_ms"]["p99"]
            assert figures["latency_ms"]["p99"] <= figures["latency_ms"]["max"]
            assert figures["duplicates"] == 0, (key, phase)
        assert config["summary"]["paced"]["lost"] == 0, key


def test_holds_every_connection_it_opens(quick_run):
    _, _, results = quick_run
    held = results["connections"]
    assert held["opened"] == held["attempted"] > 0
    assert held["reached_by_broadcast"] == held["opened"]
    assert held["rss_after_mib"] >= held["rss_before_mib"] > 0


@pytest.mark.parametrize("step", ["step03_channel_layer", "step04_redis_backend"])
def test_the_serialise_once_copy_still_applies_to_the_step(step):
    # The experiment edits a copy of the step's consumer by text replacement:
    # if the step's consumer changes, this says so before the experiment does.
    from bench.experiment import serialise_once_copy

    with serialise_once_copy(REPO / step) as copy:
        code = (copy / "chat" / "consumers.py").read_text()
        compile(code, "consumers.py", "exec")
        assert 'await self.send(text_data=event["text"])' in code
    assert not copy.exists()
    assert "event[\"text\"]" not in (REPO / step / "chat" / "consumers.py").read_text()


def test_the_tuning_copies_each_take_one_tuning_out_of_step5():
    # Text edits again: if step 5 changes, this says so before the experiment does.
    from bench.experiment import TUNINGS, without_tunings

    step5 = REPO / "step05_production"
    for name, (path, code) in TUNINGS.items():
        with without_tunings(step5, name) as copy:
            edited = (copy / path).read_text()
            compile(edited, path, "exec")
            assert len(edited) < len((step5 / path).read_text())
            assert ("async def dispatch(" if name == "dispatch" else "gc.freeze()") not in edited
            others = {p.relative_to(copy) for p in copy.rglob("*.py")} - {Path(path)}
            assert all((copy / o).read_bytes() == (step5 / o).read_bytes() for o in others)
        assert not copy.exists()


def test_history_runs_step6_and_step7_on_each_database(tmp_path):
    """Section 5 on its own (the quick run leaves it out): about 40 s."""
    if find_redis_server() is None:
        skip_or_fail("no redis-server to start (see `make redis`)")
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "history", "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout
    section = json.loads((tmp_path / "results.json").read_text())["history"]
    expected = HISTORY if find_postgres_bin() else HISTORY[:2]
    assert [config["key"] for config in section["configs"]] == expected
    for config in section["configs"]:
        for phase in ("paced", "burst"):
            assert config["summary"][phase]["duplicates"] == 0, (config["key"], phase)
        assert config["summary"]["paced"]["lost"] == 0, config["key"]
    assert "## 5. History" in (tmp_path / "results.md").read_text()


def test_the_flood_section_knows_step8s_limit_and_window():
    # The quick run leaves the flood section out (it signs up 51 users first):
    # `python -m bench --quick --only flood` runs it. What it must agree on
    # with step 8 is checked here, in no time.
    from bench.run import FLOOD_LIMIT, FLOOD_WINDOW

    step8 = REPO / "step08_users"
    assert f"WINDOW = {FLOOD_WINDOW}  #" in (step8 / "chat" / "flood.py").read_text()
    settings = (step8 / "mysite" / "settings.py").read_text()
    assert f'os.environ.get("CHAT_FLOOD_LIMIT", "{FLOOD_LIMIT}")' in settings


def flood_run(p99, flood=None):
    """One round's figures, shaped as bench.load.flood_round() returns them."""
    return {
        "chatters": 50, "expected": 1000, "lost": 0, "duplicates": 0, "chatters_refused": 0,
        "deliveries_per_s": 1200, "latency_ms": {"p50": p99 / 2, "p99": p99, "max": p99 + 1},
        "cpu_percent": {"server 1": 30, "server 2": 30, "redis": 2, "load generator": 5,
                        "others": 1},
        "flood": flood,
    }


def test_the_flood_tables_put_the_flooder_beside_the_chatters_alone():
    from bench.report import markdown
    from bench.run import summarise_flood

    flood = {"sent": 3000, "sent_per_s": 200, "accepted": 40, "refused": 2960, "unanswered": 0,
             "windows": 2, "heard_by_chatters": 2000}
    alone, flooded = [flood_run(20.0), flood_run(30.0)], [flood_run(40.0, flood)] * 2
    section = {"chatters": 50, "rate": 0.5, "seconds": 15, "tabs": 4, "limit": 20, "window": 10,
               "repeats": 2, "configs": [
                   {"key": "flood-alone", "label": "alone", "runs": alone,
                    "summary": summarise_flood(alone, alone)},
                   {"key": "flood-flooder", "label": "flooder", "runs": flooded,
                    "summary": summarise_flood(flooded, alone)}]}
    summary = section["configs"][1]["summary"]
    assert summary["p99_vs_alone"] == 1.67 and summary["p99_vs_alone_range"] == [1.33, 2.0]
    assert summary["flood"]["accepted"] == summary["flood"]["accepted_at_most"] == 80
    text = markdown({"mode": "quick", "seconds": 1, "machine": {
        "date": "today", "cores": 2, "cpu": "cpu", "system": "system", "python": "3",
        "packages": {}, "redis_server": "8", "load_average_before": [0]}, "flood": section})
    assert "## 6. Flood control: one flooder among 50 chatters" in text
    assert "| flooder | 1,200 | 20.0 / 40.0 / 41.0 ms | 1.67× (1.33×–2.00×) |" in text
    assert "| 1 | 3,000 | 200 | 40 | 40 (2 × 20) | 2,960 | 40 |" in text
