"""Real use, measured: idle sockets, a storm of connections, churn (issue 12).

    python -m bench.realuse step03_channel_layer --idle 60 --storm 1000 --churn 30
    python -m bench.realuse step04_redis_backend --outage 5 --stalled 70 --repeat 3
    python -m bench.realuse step04_redis_backend --churn 30 --let-the-pop-finish

Each probe runs a step folder on a real daphne (and, for the Redis steps, a
real redis-server of its own), with real WebSocket clients, and prints what a
room full of attendees would see:

- idle: sockets opened and left alone; how many the server closed, and when;
- storm: that many handshakes at once, then every client aborts (no close
  frame); how many were accepted, and how many group members stay in Redis;
- churn: steady clients chat while others join and leave the same room;
  deliveries the steady ones lost, and tracebacks in the server log;
- outage: Redis stops, then comes back; what open chats and newcomers get,
  and how soon the same server chats again;
- stalled: a client stops reading; the server's memory, and when it drops it.

Probes that are not asked for (0) do not run; each runs on a daphne of its own.
"""
import argparse
import asyncio
import collections
import json
import time
from contextlib import ExitStack
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bench.experiment import pop_finishing_copy
from workshop.clients import allow_open_files
from workshop.redis import RedisServer, group_members
from workshop.servers import DaphneServer
from workshop.steps import REPO

OPTIONS = {"compression": None, "proxy": None, "open_timeout": 60, "close_timeout": 2}


async def open_socket(server, room, **options):
    return await connect(server.ws_url(room), origin=server.origin, **{**OPTIONS, **options})


async def idle(server, sockets=10, seconds=60):
    opened = [await open_socket(server, "idle") for _ in range(sockets)]
    start = time.monotonic()
    closed_at = {}

    async def watch(index, ws):
        try:
            await ws.recv()
        except ConnectionClosed:
            closed_at[index] = (round(time.monotonic() - start, 1), ws.close_code)

    watchers = [asyncio.create_task(watch(i, ws)) for i, ws in enumerate(opened)]
    await asyncio.sleep(seconds)
    for task in watchers:
        task.cancel()
    await asyncio.gather(*watchers, return_exceptions=True)
    # Still chatting? One message from the first open socket must reach all open ones.
    alive = [ws for i, ws in enumerate(opened) if i not in closed_at]
    reached = 0
    if alive:
        await alive[0].send(json.dumps({"message": "still there?"}))
        for ws in alive:
            try:
                await asyncio.wait_for(ws.recv(), 10)
                reached += 1
            except (asyncio.TimeoutError, ConnectionClosed):
                pass
    for ws in opened:
        await ws.close()
    return {"sockets": sockets, "seconds": seconds, "closed": sorted(closed_at.values()),
            "reached_after": reached}


async def storm(server, count=1000, redis_url=None, settle=15):
    allow_open_files(count + 500)
    results = await asyncio.gather(
        *(open_socket(server, f"storm{i % 10}") for i in range(count)), return_exceptions=True
    )
    sockets = [r for r in results if not isinstance(r, BaseException)]
    refused = collections.Counter(
        r.response.status_code if isinstance(r, InvalidStatus) else type(r).__name__
        for r in results if isinstance(r, BaseException)
    )
    for ws in sockets:
        ws.transport.abort()
    members = None
    if redis_url:
        # Daphne learns of the aborts and runs each consumer's disconnect().
        deadline = time.monotonic() + settle
        while True:
            members = sum(
                count for group, count in group_members(redis_url).items()
                if group.startswith("chat_storm")
            )
            if members == 0 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
    return {"attempted": count, "accepted": len(sockets), "refused": dict(refused),
            "members_left": members}


async def churn(server, seconds=30, steady=5, churners=50, interval=0.2):
    room = "churn"
    senders = [await open_socket(server, room, max_queue=None) for _ in range(steady)]
    received = [collections.Counter() for _ in senders]
    sent = []
    stop = asyncio.Event()

    async def listen(index, ws):
        try:
            async for frame in ws:
                received[index][json.loads(frame)["message"]] += 1
        except ConnectionClosed:
            pass

    async def speak(index, ws):
        number = 0
        while not stop.is_set():
            text = f"{index}:{number}"
            await ws.send(json.dumps({"message": text}))
            sent.append(text)
            number += 1
            await asyncio.sleep(interval)

    visits = 0
    errors = collections.Counter()

    async def come_and_go(number):
        nonlocal visits
        while not stop.is_set():
            try:
                ws = await open_socket(server, room, open_timeout=20)
                await asyncio.sleep(0.05 * (number % 5))
                if number % 3 == 0:
                    ws.transport.abort()  # a tab closed without goodbye
                else:
                    await ws.close()
                visits += 1
            except Exception as error:  # noqa: BLE001 (counted, reported)
                errors[type(error).__name__] += 1
                await asyncio.sleep(0.1)

    listeners = [asyncio.create_task(listen(i, ws)) for i, ws in enumerate(senders)]
    await asyncio.sleep(0.5)
    visitors = [asyncio.create_task(come_and_go(n)) for n in range(churners)]
    speakers = [asyncio.create_task(speak(i, ws)) for i, ws in enumerate(senders)]
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*speakers, *visitors)
    # Let the last deliveries arrive: wait until nothing new came for 3 s.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        before = sum(map(sum, (c.values() for c in received)))
        await asyncio.sleep(3)
        if sum(map(sum, (c.values() for c in received))) == before:
            break
    for ws in senders:
        await ws.close()
    await asyncio.gather(*listeners, return_exceptions=True)
    expected = len(sent) * steady
    got = sum(min(1, counts[text]) for counts in received for text in sent)
    missing = sorted({text for counts in received for text in sent if not counts[text]})
    return {"seconds": seconds, "visits": visits, "visit_errors": dict(errors),
            "expected": expected, "lost": expected - got, "missing_messages": len(missing),
            "duplicates": sum(n - 1 for counts in received for n in counts.values() if n > 1)}


async def outage(server, redis, seconds=5):
    """Redis stops for `seconds`: what open chats and newcomers get, and how
    soon after Redis is back the same server chats again."""
    alice = await open_socket(server, "outage")
    start = time.monotonic()
    redis.stop()
    try:
        try:
            await asyncio.wait_for(alice.recv(), 15)
        except ConnectionClosed:
            pass
        closed = (alice.close_code, round(time.monotonic() - start, 2))
        try:
            await (await open_socket(server, "outage", open_timeout=15)).close()
            newcomer = "accepted"
        except InvalidStatus as refused:
            newcomer = refused.response.status_code
        await asyncio.sleep(seconds)
    finally:
        redis.start()
    back = time.monotonic()
    attempts = 0
    failures = []
    while True:
        attempts += 1
        try:
            ws = await open_socket(server, "outage", open_timeout=15)
            await ws.send(json.dumps({"message": "back?"}))
            await asyncio.wait_for(ws.recv(), 5)
            await ws.close()
            break
        except (InvalidStatus, ConnectionClosed, asyncio.TimeoutError) as error:
            failures.append(repr(error)[:120])
            await asyncio.sleep(0.1)
    return {"open_chat_closed": closed, "newcomer": newcomer,
            "chat_again_after_s": round(time.monotonic() - back, 2), "attempts": attempts,
            "failed_attempts": failures}


async def stalled(server, seconds=70, rate=200, size=1000):
    """A client that stops reading while the room it is in gets `rate`
    messages of `size` characters a second: the server's memory, and when
    (if ever) the server drops it."""
    from bench.load import rss_bytes

    pid = server.process.pid
    sleeper = await open_socket(server, "stalled")
    sleeper.transport.pause_reading()  # a frozen tab: the kernel buffers fill, then TCP stalls
    speaker = await open_socket(server, "stalled", max_queue=None)
    drain = asyncio.create_task(speaker.recv())  # the speaker reads its own echoes
    rss = [(0, round(rss_bytes(pid) / 2**20, 1))]
    start = time.monotonic()
    sent = 0
    dropped_at = None

    async def read_echoes():
        try:
            async for _ in speaker:
                pass
        except ConnectionClosed:
            pass

    drain.cancel()
    reader = asyncio.create_task(read_echoes())
    while time.monotonic() - start < seconds:
        await speaker.send(json.dumps({"message": "x" * size}))
        sent += 1
        await asyncio.sleep(1 / rate)
        elapsed = time.monotonic() - start
        if int(elapsed) > rss[-1][0] and int(elapsed) % 5 == 0:
            rss.append((int(elapsed), round(rss_bytes(pid) / 2**20, 1)))
        if dropped_at is None and sleeper.transport.is_closing():
            dropped_at = round(elapsed, 1)
    sleeper.transport.resume_reading()
    await speaker.close()
    reader.cancel()
    await asyncio.sleep(3)
    after = round(rss_bytes(pid) / 2**20, 1)
    return {"rate_per_s": rate, "size": size, "sent": sent,
            "room_traffic_kb_per_s": round(rate * (size + 15) / 1000),
            "rss_mib_over_time": rss, "rss_mib_3s_after": after,
            "sleeper_dropped_at_s": dropped_at}


def tracebacks(log):
    return log.count("Traceback")


def errors_in(log):
    """{the last line of each traceback, and each warning: how often}."""
    found = collections.Counter()
    lines = log.splitlines()
    for number, line in enumerate(lines):
        if line.startswith("Traceback"):
            end = number + 1
            while end < len(lines) and (lines[end].startswith(" ") or "Traceback" in lines[end]
                                        or lines[end].startswith("During handling")
                                        or not lines[end].strip()
                                        or lines[end].startswith("The above")):
                end += 1
            if end < len(lines):
                found[lines[end][:140]] += 1
        elif "WARNING" in line or "ERROR" in line:
            found[" ".join(line.split()[2:])[:90]] += 1
    return dict(found.most_common(8))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", help="a step folder, e.g. step04_redis_backend")
    parser.add_argument("--idle", type=float, default=0, help="seconds of the idle probe")
    parser.add_argument("--storm", type=int, default=0, help="connections of the storm")
    parser.add_argument("--churn", type=float, default=0, help="seconds of the churn probe")
    parser.add_argument("--outage", type=float, default=0, help="seconds Redis stays down")
    parser.add_argument("--stalled", type=float, default=0,
                        help="seconds of a client that stops reading")
    parser.add_argument("--let-the-pop-finish", action="store_true",
                        help="on a copy whose layer lets a cancelled read finish")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    folder = Path(args.step)
    if not folder.is_absolute():
        folder = REPO / folder
    for repeat in range(args.repeat):
        with ExitStack() as stack:
            served = folder
            if args.let_the_pop_finish:
                served = stack.enter_context(pop_finishing_copy(folder))
            uses_redis = "RedisChannelLayer" in (served / "mysite" / "settings.py").read_text()
            env = {"DJANGO_SETTINGS_MODULE": "mysite.settings"}
            redis_url = None
            if uses_redis:
                redis = stack.enter_context(RedisServer())
                env["REDIS_URL"] = redis_url = redis.url
            for probe in ("idle", "storm", "churn", "outage", "stalled"):
                amount = getattr(args, probe)
                if not amount:
                    continue
                server = stack.enter_context(DaphneServer(served, env=env))
                if probe == "idle":
                    result = asyncio.run(idle(server, seconds=amount))
                elif probe == "stalled":
                    result = asyncio.run(stalled(server, amount))
                elif probe == "outage":
                    result = asyncio.run(outage(server, redis, amount))
                elif probe == "storm":
                    result = asyncio.run(storm(server, int(amount), redis_url))
                else:
                    result = asyncio.run(churn(server, amount))
                    if redis_url:
                        time.sleep(3)
                        result["members_left"] = group_members(redis_url).get(
                            "chat_churn", 0)
                log = server.log()
                result["tracebacks"] = tracebacks(log)
                result["log"] = errors_in(log)
                killed = [line for line in log.splitlines() if "took too long" in line]
                if killed:
                    result["first_killed"] = killed[0][-400:]
                label = folder.name + (" (pop finishing)" if args.let_the_pop_finish else "")
                print(f"[{label} #{repeat + 1}] {probe}: {json.dumps(result)}", flush=True)
                server.stop()


if __name__ == "__main__":
    main()
