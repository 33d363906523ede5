"""Run the benchmarks and write bench/results/: python -m bench [--quick].

    python -m bench                   the full run, into bench/results/ (make bench)
    python -m bench --quick           a short run, into bench/results/quick/
    python -m bench --out DIR         write somewhere else
    python -m bench --only fanout     some sections (io, fanout, scaleout, connections,
                                      history, flood), into bench/results/partial/
    python -m bench --experiment serialise-once    the steps versus copies (see README)
    python -m bench --experiment tuning            step05 versus copies without its tunings
    python -m bench --experiment churn             losses while clients come and go

Every server is a real process on 127.0.0.1 (daphne, uvicorn, redis-server,
postgres, the floor server) started here and stopped before the end, whatever
happens.
"""
import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

from workshop.clients import SiteUser, allow_open_files
from workshop.postgres import PostgresServer, find_postgres_bin
from workshop.production import local_settings, prepare
from workshop.redis import RedisServer, find_redis_server
from workshop.servers import DaphneServer, UvicornServer
from workshop.steps import REPO, step_folder

from . import load
from .experiment import serialise_once_copy, without_tunings
from .floor import FloorServer

RESULTS = REPO / "bench" / "results"
SLOW_SITE = REPO / "bench" / "slow_site"
STEP3 = step_folder(3)
STEP4 = step_folder(4)
STEP5 = step_folder(5)
STEP6 = step_folder(6)
STEP7 = step_folder(7)
STEP8 = step_folder(8)
SECTIONS = ("io", "fanout", "scaleout", "connections", "history", "flood")
# The quick run leaves out history, which prepares three production servers
# first, and flood, which prepares one and signs up 51 users or more: `--quick
# --only history` or `--quick --only flood` runs it alone.
QUICK_SECTIONS = ("io", "fanout", "scaleout", "connections")
EXPERIMENTS = ("serialise-once", "tuning", "churn")


@dataclass(frozen=True)
class Plan:
    io_clients: tuple  # N values for sync versus async
    io_repeats: int
    receivers: int  # in the fan-out room, plus one sender
    rate: int  # paced messages per second
    paced_messages: int
    burst_messages: int
    repeats: int  # of each fan-out and scale-out configuration
    warm_up: bool  # one unmeasured round per configuration first
    connections: int  # idle WebSockets to hold
    pause: float  # seconds between two runs, for the closing handshakes to settle
    flood_chatters: int  # users chatting in the flood section's room
    flood_rate: float  # messages per second each chatter sends
    flood_seconds: float  # how long they chat (and the flooder floods) in a round
    flood_tabs: int  # the flooder's sockets, all in the room
    flood_repeats: int  # rounds of the flood section's two configurations


PLANS = {
    "full": Plan(
        io_clients=(1, 2, 5, 10, 20, 50), io_repeats=3, receivers=100, rate=20,
        paced_messages=40, burst_messages=100, repeats=5, warm_up=True, connections=1000,
        pause=0.5, flood_chatters=50, flood_rate=0.5, flood_seconds=15, flood_tabs=4,
        flood_repeats=3,
    ),
    "quick": Plan(
        io_clients=(1, 10), io_repeats=1, receivers=100, rate=20,
        paced_messages=15, burst_messages=30, repeats=1, warm_up=False, connections=200,
        pause=0.1, flood_chatters=50, flood_rate=0.5, flood_seconds=5, flood_tabs=4,
        flood_repeats=1,
    ),
}

# The fan-out configurations: the tables' labels, and the plots' short ones.
SHORT = {
    "step03": "step03\nin-memory", "redis": "step04\nRedis", "pubsub": "step04\npub/sub",
    "step05": "step05\n2 uvicorn", "floor": "floor\nwebsockets", "one": "1 daphne", "two": "2 daphnes",
    "step03-once": "step03\nonce", "redis-once": "step04\nonce",
    "step05-checked": "step05\nchecked", "step05-unfrozen": "step05\nunfrozen",
    "step05-untuned": "step05\nuntuned",
    "step06-history": "step06", "step07-sqlite": "step07\nSQLite", "step07-postgres": "step07\nPostgreSQL",
}
LABELS = {
    "step03": "step03, InMemoryChannelLayer",
    "redis": "step04, RedisChannelLayer",
    "pubsub": "step04, RedisPubSubChannelLayer",
    "step05": "step05, RedisChannelLayer, 2 uvicorn workers",
    "floor": "floor: websockets only, no Django, no layer",
    "one": "step04 (RedisChannelLayer), 1 daphne",
    "two": "step04 (RedisChannelLayer), 2 daphnes, 1 Redis",
    "step03-once": "step03, serialised once (experiment)",
    "redis-once": "step04 RedisChannelLayer, serialised once (experiment)",
    "step05-checked": "step05 without its dispatch(): a database check per delivery (experiment)",
    "step05-unfrozen": "step05 without gc.freeze() (experiment)",
    "step05-untuned": "step05 without either (experiment)",
    "step06-history": "step06, 2 uvicorn workers, nothing stored",
    "step07-sqlite": "step07, 2 uvicorn workers, stored in SQLite",
    "step07-postgres": "step07, 2 uvicorn workers, stored in PostgreSQL",
    "flood-alone": "step08, chatters alone",
    "flood-flooder": "step08, chatters and one flooder",
}
# Step 8's flood control (chat/flood.py): LIMIT messages per user per WINDOW
# seconds. The limit is set, not inherited: an environment that raised it
# (a load test's, the test suite's) would measure no flood control at all.
FLOOD_LIMIT = 20  # step 8's default CHAT_FLOOD_LIMIT
FLOOD_WINDOW = 10  # chat/flood.py's WINDOW
FLOOD_WARM_UP_SECONDS = 5


def say(line):
    print(line, flush=True)


# --- Servers ---------------------------------------------------------------------

def step_env(**extra):
    # Always name the settings: a DJANGO_SETTINGS_MODULE left in the caller's
    # environment would otherwise win over the step's own (asgi.py uses setdefault).
    return {"DJANGO_SETTINGS_MODULE": "mysite.settings", **extra}


def bench_settings(module):
    """The environment that serves a step with settings of the benchmark's own
    (bench/<module>.py, which imports the step's and changes one thing)."""
    python_path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {"DJANGO_SETTINGS_MODULE": f"bench.{module}", "PYTHONPATH": python_path}


def redis_env(redis, layer="redis"):
    env = step_env(REDIS_URL=redis.url)
    if layer == "pubsub":
        env.update(bench_settings("step04_pubsub_settings"))
    return env


def production_server(project, redis):
    """A step from 5 on, as `make step5` serves it: 2 uvicorn workers, after a deploy's
    migrate and collectstatic."""
    env = {**os.environ, **step_env(REDIS_URL=redis.url), **local_settings()}
    prepare(project, env)
    return UvicornServer(project, workers=2, env=env)


def start_all(stack, servers):
    """Start servers side by side (each takes a second or two to import Django).

    Each one's __exit__ (stop it, remove its log) runs when `stack` closes.
    """
    for server in servers:
        stack.push(server)
    with ThreadPoolExecutor(len(servers)) as pool:
        list(pool.map(lambda server: server.start(), servers))
    return servers


def pid(server):
    return server.process.pid


def metered(servers, redis):
    """{key: (server, [server], {name: pid})}: each server alone in its room, its
    CPU and Redis's metered. uvicorn's parent only watches its workers: meter
    the workers."""
    configs = {}
    for key, server in servers.items():
        if isinstance(server, UvicornServer):
            pids = {f"server {n}": worker for n, worker in enumerate(server.worker_pids(), 1)}
        else:
            pids = {"server": pid(server)}
        configs[key] = (server, [server], {**pids, "redis": pid(redis)})
    return configs


# --- Measurements ------------------------------------------------------------------

def measure_io(plan):
    """1. The slow sync consumer versus the slow async one, N clients at once."""
    rows = {n: {"clients": n, "sync_s": [], "async_s": []} for n in plan.io_clients}
    with DaphneServer(SLOW_SITE, env=step_env()) as server:
        for repeat in range(plan.io_repeats):
            for n in plan.io_clients:
                for kind in ("sync", "async"):
                    # Sync needs N x 0.1 s; allow three times that, plus slack.
                    seconds = asyncio.run(load.io_wait_round(server, kind, n, 0.3 * n + 10))
                    rows[n][f"{kind}_s"].append(round(seconds, 4))
                row = rows[n]
                say(f"[io] {repeat + 1}/{plan.io_repeats} N={n:>2}: "
                    f"sync {row['sync_s'][-1]:.3f} s, async {row['async_s'][-1]:.3f} s, "
                    f"speedup {row['sync_s'][-1] / row['async_s'][-1]:.1f} (limit {n})")
    for row in rows.values():
        row["sync_median_s"] = statistics.median(row["sync_s"])
        row["async_median_s"] = statistics.median(row["async_s"])
        # Sync and async ran back to back in each round: the ratio of each round.
        row["speedup"] = round(statistics.median(
            sync / asynchronous for sync, asynchronous in zip(row["sync_s"], row["async_s"])
        ), 2)
        row["limit"] = row["clients"]
        row["of_limit"] = round(row["speedup"] / row["clients"], 3)
    return {"slow_call_ms": 100, "repeats": plan.io_repeats, "rows": list(rows.values())}


def phases(plan):
    return [("paced", plan.paced_messages, plan.rate), ("burst", plan.burst_messages, None)]


def run_configs(section, plan, configs, baselines, repeats):
    """Each configuration once per round, rounds repeated: ratios within a round.

    configs: {key: (sender server, receiver servers, {name: pid} to meter)}.
    baselines: {key: the key it is compared with}.
    """
    runs = {key: [] for key in configs}
    if plan.warm_up:
        # What a server does once, on its first clients (lazy imports, its
        # first full garbage collection), is not what a long-running server
        # does on every message: one round each, not measured.
        for key, (sender, receivers, _) in configs.items():
            asyncio.run(load.fan_out(
                sender, receivers, f"{section}-{key}-warm-up", plan.receivers, phases(plan)
            ))
            time.sleep(plan.pause)
    for repeat in range(repeats):
        for key, (sender, receivers, pids) in configs.items():
            room = f"{section}-{key}-{repeat}"
            result = asyncio.run(load.fan_out(
                sender, receivers, room, plan.receivers, phases(plan), cpu_pids=pids,
            ))
            runs[key].append(result)
            paced, burst = result["paced"], result["burst"]
            say(f"[{section}] {repeat + 1}/{repeats} {LABELS[key]}: "
                f"paced {paced['deliveries_per_s']:,}/s p99 {paced['latency_ms']['p99']} ms "
                f"lost {paced['lost']}; burst {burst['deliveries_per_s']:,}/s "
                f"lost {burst['lost']}")
            time.sleep(plan.pause)
    return {
        "receivers": plan.receivers,
        "rate": plan.rate,
        "paced_messages": plan.paced_messages,
        "burst_messages": plan.burst_messages,
        "repeats": repeats,
        "configs": [
            {"key": key, "label": LABELS[key], "short": SHORT[key], "runs": runs[key],
             "baseline": baselines[key], "summary": summarise(runs[key], runs[baselines[key]])}
            for key in configs
        ],
    }


def summarise(runs, baseline_runs):
    """Medians over the rounds, and the ratio to the baseline within each round."""
    summary = {}
    for phase in ("paced", "burst"):
        rates = [run[phase]["deliveries_per_s"] for run in runs]
        ratios = [
            run[phase]["deliveries_per_s"] / base[phase]["deliveries_per_s"]
            for run, base in zip(runs, baseline_runs)
            if base[phase]["deliveries_per_s"]
        ]
        cpu_names = runs[0][phase]["cpu_percent"].keys()
        p99s = [run[phase]["latency_ms"]["p99"] or 0 for run in runs]
        summary[phase] = {
            "deliveries_per_s": statistics.median(rates),
            "deliveries_per_s_range": [min(rates), max(rates)],
            "vs_baseline": round(statistics.median(ratios), 2) if ratios else None,
            "vs_baseline_range": (
                [round(min(ratios), 2), round(max(ratios), 2)] if ratios else None
            ),
            "latency_ms": {
                q: statistics.median(run[phase]["latency_ms"][q] or 0 for run in runs)
                for q in ("p50", "p99", "max")
            },
            # A pause that hits some rounds only (a garbage collection, say)
            # shows in the slowest round's p99, not in the median.
            "p99_range_ms": [min(p99s), max(p99s)],
            "server_cpu_us_per_delivery": statistics.median(
                run[phase]["server_cpu_us_per_delivery"] or 0 for run in runs
            ),
            "lost": sum(run[phase]["lost"] for run in runs),
            "duplicates": sum(run[phase]["duplicates"] for run in runs),
            "expected": sum(run[phase]["expected"] for run in runs),
            "cpu_percent": {
                name: statistics.median(run[phase]["cpu_percent"][name] for run in runs)
                for name in cpu_names
            },
        }
    return summary


def measure_fanout(plan, redis):
    """2. One room, one sender, many receivers, on each kind of server."""
    with ExitStack() as stack:
        servers = {
            "step03": DaphneServer(STEP3, env=step_env()),
            "redis": DaphneServer(STEP4, env=redis_env(redis)),
            "pubsub": DaphneServer(STEP4, env=redis_env(redis, "pubsub")),
            "step05": production_server(STEP5, redis),
            "floor": FloorServer(),
        }
        start_all(stack, list(servers.values()))
        configs = metered(servers, redis)
        return run_configs("fanout", plan, configs, dict.fromkeys(configs, "redis"), plan.repeats)


def measure_scaleout(plan, redis):
    """3. The same room on one daphne, then spread over two sharing one Redis."""
    with ExitStack() as stack:
        # Three processes, so that neither configuration starts on a server that
        # the other's clients have just left: RedisChannelLayer can drop a message
        # then (the churn experiment), and that is not what this section measures.
        alone, first, second = start_all(stack, [
            DaphneServer(STEP4, env=redis_env(redis)) for _ in range(3)
        ])
        configs = {
            "one": (alone, [alone], {"server": pid(alone), "redis": pid(redis)}),
            "two": (first, [first, second],
                    {"server": pid(first), "server 2": pid(second), "redis": pid(redis)}),
        }
        return run_configs("scaleout", plan, configs, dict.fromkeys(configs, "one"), plan.repeats)


def measure_connections(plan, redis):
    """4. Idle WebSockets held by one step04 daphne, and the memory they take."""
    with DaphneServer(STEP4, env=redis_env(redis)) as server:
        result = asyncio.run(load.hold_connections(server, pid(server), "idle", plan.connections))
    say(f"[connections] {result['opened']}/{result['attempted']} open "
        f"({result['opened_per_s']}/s), {result['reached_by_broadcast']} reached by a "
        f"broadcast, {result['kib_per_connection']} KiB each")
    return result


def measure_history(plan, redis):
    """5. What storing each message costs: step 6 against step 7 on SQLite and,
    if its server programs are installed, on PostgreSQL."""
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-history-")))
        databases = {"step06-history": None, "step07-sqlite": f"sqlite:///{folder / 'db.sqlite3'}"}
        if find_postgres_bin():
            postgres = stack.enter_context(PostgresServer())
            databases["step07-postgres"] = postgres.create_database("bench")
        else:
            say("[history] no PostgreSQL server programs: step07 on SQLite only")
        servers = {}
        for key, database_url in databases.items():
            env = step_env(REDIS_URL=redis.url, **local_settings())
            if database_url:
                env["DATABASE_URL"] = database_url
            project = STEP6 if key == "step06-history" else STEP7
            prepare(project, {**os.environ, **env})
            servers[key] = UvicornServer(project, env=env)
        start_all(stack, list(servers.values()))
        # The workers' CPU (PostgreSQL's backends land in "others").
        configs = metered(servers, redis)
        return run_configs("history", plan, configs, dict.fromkeys(configs, "step06-history"),
                           plan.repeats)


def measure_flood(plan, redis):
    """6. Flood control: a room of chatters on step 8, without and with one user
    flooding it from several tabs, round by round."""
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-flood-")))
        env = step_env(REDIS_URL=redis.url, DATABASE_URL=f"sqlite:///{folder / 'db.sqlite3'}",
                       CHAT_FLOOD_LIMIT=str(FLOOD_LIMIT), **local_settings())
        # Step 8 with a cheap password hasher, for the sign-ups alone.
        env.update(bench_settings("step08_quick_signup_settings"))
        prepare(STEP8, {**os.environ, **env})
        server, = start_all(stack, [UvicornServer(STEP8, env=env)])
        # Step 8 refuses anonymous sockets: everyone signs up first, through
        # Django's form, once per run. Each round's flooder is a user of its
        # own, so that no round starts inside a window an earlier one opened.
        rounds = plan.flood_repeats + (1 if plan.warm_up else 0)
        names = ([f"chatter-{n}" for n in range(plan.flood_chatters)]
                 + [f"flooder-{n}" for n in range(rounds)])
        begin = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            users = list(pool.map(lambda name: SiteUser(server, name).sign_up(), names))
        chatters, flooders = users[:plan.flood_chatters], users[plan.flood_chatters:]
        say(f"[flood] {len(users)} users signed up in {time.perf_counter() - begin:.1f} s")
        (_, _, pids), = metered({"step08": server}, redis).values()

        def one_round(room, seconds, flooder=None, meter=True):
            return asyncio.run(load.flood_round(
                server, room, chatters, plan.flood_rate, seconds, flooder=flooder,
                tabs=plan.flood_tabs, window=FLOOD_WINDOW, cpu_pids=pids if meter else (),
            ))

        if plan.warm_up:  # as in run_configs: the server's first clients, not measured
            one_round("flood-warm-up-alone", FLOOD_WARM_UP_SECONDS, meter=False)
            time.sleep(plan.pause)
            one_round("flood-warm-up-flooder", FLOOD_WARM_UP_SECONDS,
                      flooders.pop(), meter=False)
            time.sleep(plan.pause)
        runs = {"flood-alone": [], "flood-flooder": []}
        for repeat in range(plan.flood_repeats):
            for key in runs:
                flooder = flooders[repeat] if key == "flood-flooder" else None
                result = one_round(f"{key}-{repeat}", plan.flood_seconds, flooder)
                runs[key].append(result)
                flood = result["flood"]
                say(f"[flood] {repeat + 1}/{plan.flood_repeats} {LABELS[key]}: "
                    f"p50 {result['latency_ms']['p50']} ms p99 {result['latency_ms']['p99']} ms "
                    f"lost {result['lost']}"
                    + (f"; flooder sent {flood['sent']:,} ({flood['sent_per_s']:,}/s), "
                       f"accepted {flood['accepted']}, refused {flood['refused']:,}"
                       if flood else ""))
                time.sleep(plan.pause)
    alone = runs["flood-alone"]
    return {
        "chatters": plan.flood_chatters,
        "rate": plan.flood_rate,
        "seconds": plan.flood_seconds,
        "tabs": plan.flood_tabs,
        "limit": FLOOD_LIMIT,
        "window": FLOOD_WINDOW,
        "repeats": plan.flood_repeats,
        "configs": [
            {"key": key, "label": LABELS[key], "runs": runs[key],
             "summary": summarise_flood(runs[key], alone)}
            for key in runs
        ],
    }


def summarise_flood(runs, alone_runs):
    """The chatters' medians over the rounds, the p99 against the same round
    without the flooder, and the flooder's messages added up."""
    p99s = [run["latency_ms"]["p99"] or 0 for run in runs]
    ratios = [run["latency_ms"]["p99"] / alone["latency_ms"]["p99"]
              for run, alone in zip(runs, alone_runs) if alone["latency_ms"]["p99"]]
    summary = {
        "deliveries_per_s": statistics.median(run["deliveries_per_s"] for run in runs),
        "latency_ms": {
            q: statistics.median(run["latency_ms"][q] or 0 for run in runs)
            for q in ("p50", "p99", "max")
        },
        "p99_range_ms": [min(p99s), max(p99s)],
        "p99_vs_alone": round(statistics.median(ratios), 2) if ratios else None,
        "p99_vs_alone_range": [round(min(ratios), 2), round(max(ratios), 2)] if ratios else None,
        "lost": sum(run["lost"] for run in runs),
        "expected": sum(run["expected"] for run in runs),
        "duplicates": sum(run["duplicates"] for run in runs),
        "chatters_refused": sum(run["chatters_refused"] for run in runs),
        "cpu_percent": {
            name: statistics.median(run["cpu_percent"][name] for run in runs)
            for name in runs[0]["cpu_percent"]
        },
        "flood": None,
    }
    floods = [run["flood"] for run in runs if run["flood"]]
    if floods:
        summary["flood"] = {
            name: sum(flood[name] for flood in floods)
            for name in ("sent", "accepted", "refused", "unanswered", "windows",
                         "heard_by_chatters")
        }
        summary["flood"]["sent_per_s"] = statistics.median(f["sent_per_s"] for f in floods)
        # About the limit per window: one window opens as soon as the last has closed.
        summary["flood"]["accepted_at_most"] = FLOOD_LIMIT * summary["flood"]["windows"]
    return summary


def measure_serialise_once(plan, redis, repeats):
    """The experiment: each step's consumer, then a copy that serialises once."""
    with ExitStack() as stack:
        step3_copy = stack.enter_context(serialise_once_copy(STEP3))
        step4_copy = stack.enter_context(serialise_once_copy(STEP4))
        servers = {
            "step03": DaphneServer(STEP3, env=step_env()),
            "step03-once": DaphneServer(step3_copy, env=step_env()),
            "redis": DaphneServer(STEP4, env=redis_env(redis)),
            "redis-once": DaphneServer(step4_copy, env=redis_env(redis)),
        }
        start_all(stack, list(servers.values()))
        configs = metered(servers, redis)
        # Each copy against its own step, round by round.
        baselines = {"step03": "step03", "step03-once": "step03",
                     "redis": "redis", "redis-once": "redis"}
        section = run_configs("experiment", plan, configs, baselines, repeats)
        return {"title": "serialise the group message once", **section}


def measure_tuning(plan, redis, repeats):
    """The experiment: step05, copies without one or both of its two tunings,
    and the floor, round by round."""
    with ExitStack() as stack:
        copies = {
            "step05-checked": ("dispatch",),
            "step05-unfrozen": ("freeze",),
            "step05-untuned": ("dispatch", "freeze"),
        }
        servers = {"step05": production_server(STEP5, redis)}
        for key, tunings in copies.items():
            copy = stack.enter_context(without_tunings(STEP5, *tunings))
            servers[key] = production_server(copy, redis)
        servers["floor"] = FloorServer()
        start_all(stack, list(servers.values()))
        configs = metered(servers, redis)
        section = run_configs("experiment", plan, configs, dict.fromkeys(configs, "step05"),
                              repeats)
        return {"title": "step 5's tunings, one at a time", **section}


def measure_churn(redis, repeats, seconds=10, rate=50):
    """The experiment: does a room lose messages while other clients come and go?"""
    servers = {
        "step03": DaphneServer(STEP3, env=step_env()),
        "redis": DaphneServer(STEP4, env=redis_env(redis)),
        "pubsub": DaphneServer(STEP4, env=redis_env(redis, "pubsub")),
    }
    runs = {key: [] for key in servers}
    with ExitStack() as stack:
        start_all(stack, list(servers.values()))
        for repeat in range(repeats):
            for key, server in servers.items():
                result = asyncio.run(load.churn_delivery(server, 20, 10, seconds, rate))
                runs[key].append(result)
                say(f"[churn] {repeat + 1}/{repeats} {LABELS[key]}: {result['lost']} of "
                    f"{result['expected']:,} deliveries lost ({result['messages_with_losses']} "
                    f"messages), {result['churn_cycles']} cycles of 10 visitors")
        # daphne's log says when a consumer did not stop within 10 s of its disconnect.
        slow_stops = {
            key: server.log().count("took too long to shut down")
            for key, server in servers.items()
        }
    return {
        "receivers": 20, "rate": rate, "seconds": seconds, "repeats": repeats,
        "configs": [
            {"key": key, "label": LABELS[key], "runs": runs[key],
             "lost": sum(run["lost"] for run in runs[key]),
             "expected": sum(run["expected"] for run in runs[key]),
             "messages": sum(run["messages"] for run in runs[key]),
             "messages_with_losses": sum(run["messages_with_losses"] for run in runs[key]),
             "churn_cycles": sum(run["churn_cycles"] for run in runs[key]),
             "slow_stops_logged": slow_stops[key]}
            for key in servers
        ],
    }


# --- The machine -------------------------------------------------------------------

def machine():
    cpu = "unknown"
    if Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    binary = find_redis_server()
    redis_version = None
    if binary:
        output = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
        redis_version = next((w[2:] for w in output.split() if w.startswith("v=")), output.strip())
    packages = ["Django", "channels", "daphne", "channels-redis", "redis", "websockets",
                "Twisted", "autobahn", "asgiref", "msgpack", "uvicorn", "psycopg"]
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "cpu": cpu,
        "system": platform.platform(),
        "python": platform.python_version(),
        "packages": {name: version(name) for name in packages},
        "redis_server": redis_version,
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }


# --- Main ---------------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="a short run (under 30 s)")
    parser.add_argument("--out", type=Path, help="directory for the results")
    parser.add_argument("--only", help="comma-separated sections: " + ", ".join(SECTIONS))
    parser.add_argument("--experiment", choices=EXPERIMENTS,
                        help="run one of the experiments (see bench/README.md) instead")
    args = parser.parse_args(argv)

    mode = "quick" if args.quick else "full"
    plan = PLANS[mode]
    # Only a full run of every section replaces the committed results.
    if args.out:
        out = args.out
    elif args.quick:
        out = RESULTS / "quick"
    elif args.experiment:
        out = RESULTS / "experiment"
    else:
        out = RESULTS / "partial" if args.only else RESULTS
    sections = args.only.split(",") if args.only else list(
        QUICK_SECTIONS if args.quick else SECTIONS
    )
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")

    # Servers started from here inherit this limit: raise it before starting any.
    allow_open_files(plan.connections + 500)
    started = time.perf_counter()
    results = {"mode": mode, "plan": asdict(plan), "machine": machine()}
    say(f"Benchmarks ({mode}) on {results['machine']['cores']} cores, "
        f"load average {results['machine']['load_average_before']}; results in {out}")
    with RedisServer() as redis:
        if args.experiment == "serialise-once":
            results["experiment"] = measure_serialise_once(plan, redis, plan.repeats)
        elif args.experiment == "tuning":
            results["experiment"] = measure_tuning(plan, redis, plan.repeats)
        elif args.experiment == "churn":
            results["churn"] = measure_churn(redis, repeats=1 if args.quick else 3)
        else:
            measure = {"io": lambda: measure_io(plan),
                       "fanout": lambda: measure_fanout(plan, redis),
                       "scaleout": lambda: measure_scaleout(plan, redis),
                       "connections": lambda: measure_connections(plan, redis),
                       "history": lambda: measure_history(plan, redis),
                       "flood": lambda: measure_flood(plan, redis)}
            for section in sections:
                begin = time.perf_counter()
                results[section] = measure[section]()
                results[section]["section_seconds"] = round(time.perf_counter() - begin, 1)
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]

    from .report import write_results  # matplotlib loads only when there is something to plot

    name = args.experiment.replace("-", "_") if args.experiment else "results"
    written = write_results(results, out, name)
    say(f"Done in {results['seconds']} s. Wrote " + ", ".join(str(p) for p in written))
    return 0
