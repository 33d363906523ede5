"""The load generator: real WebSocket clients, timed from this one process.

Every function here opens its own clients, bounds every wait in time, and
closes what it opened. A "server" is anything with ws_url(room) and origin:
workshop.servers.DaphneServer or bench.floor.FloorServer.
"""
import asyncio
import json
import os
import time

from websockets.asyncio.client import connect

from workshop.clients import allow_open_files

# No compression (daphne does not offer it, so the floor server must not
# either), no proxy from the environment, short closing handshakes.
CLIENT_OPTIONS = {"compression": None, "proxy": None, "open_timeout": 15, "close_timeout": 2}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- Processes, seen from /proc ---------------------------------------------------

def cpu_seconds(pid):
    """User + system CPU time a process has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        # The command name (field 2) may hold spaces; count from after it.
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid):
    """Resident memory of a process."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def machine_busy_seconds():
    """CPU time all cores of the machine have spent busy so far (/proc/stat)."""
    with open("/proc/stat") as stat:
        ticks = [int(field) for field in stat.readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle and iowait
    return (sum(ticks[:8]) - idle) / CLOCK_TICKS  # guest time is already in user


class CpuMeter:
    """CPU used by some processes, by this one, and by the whole machine.

    Figures are percent of one core over the interval (200 = both cores of a
    2-core machine). "others" is what the machine spent outside the processes
    named here: other people's work on a shared machine, the noise.
    """

    def __init__(self, pids):
        self.pids = dict(pids)  # name -> pid

    def start(self):
        self.begin = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self.begin_self = time.process_time()
        self.begin_machine = machine_busy_seconds()
        self.begin_wall = time.perf_counter()

    def stop(self):
        """Return ({name: CPU seconds}, {name: percent of one core})."""
        wall = time.perf_counter() - self.begin_wall
        used = {name: cpu_seconds(pid) - self.begin[name] for name, pid in self.pids.items()}
        used["load generator"] = time.process_time() - self.begin_self
        used["others"] = max(0.0, machine_busy_seconds() - self.begin_machine - sum(used.values()))
        return used, {name: round(100 * seconds / wall) for name, seconds in used.items()}


# --- Clients ----------------------------------------------------------------------

async def open_clients(targets, at_once=50):
    """Open one WebSocket per (server, room) or (server, room, headers); at most
    `at_once` handshakes at a time. Headers: a logged-in user's session cookie
    (workshop.clients.SiteUser.headers()), for step 8 on.

    Returns (open sockets, errors). Opening thousands at once would overflow
    the server's listen backlog and measure that instead.
    """
    gate = asyncio.Semaphore(at_once)

    async def open_one(server, room, headers=None):
        async with gate:
            return await connect(server.ws_url(room), origin=server.origin,
                                 additional_headers=headers, **CLIENT_OPTIONS)

    results = await asyncio.gather(
        *(open_one(*target) for target in targets), return_exceptions=True
    )
    sockets = [result for result in results if not isinstance(result, BaseException)]
    errors = [result for result in results if isinstance(result, BaseException)]
    return sockets, errors


async def close_clients(sockets):
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


async def stop(tasks):
    """Cancel the reader tasks and wait until they have all ended."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def frame(text):
    return json.dumps({"message": text})


# --- 1. Sync versus async under I/O waits -----------------------------------------

async def io_wait_round(server, room, clients, timeout):
    """`clients` sockets each send one message at once; seconds until every echo is back."""
    sockets, errors = await open_clients([(server, room)] * clients)
    try:
        if errors:
            raise RuntimeError(
                f"{len(errors)} of {clients} clients could not connect: {errors[0]!r}"
            )
        start = time.perf_counter()
        await asyncio.gather(*(ws.send(frame(f"c{i}")) for i, ws in enumerate(sockets)))
        replies = await asyncio.wait_for(
            asyncio.gather(*(ws.recv() for ws in sockets)), timeout
        )
        elapsed = time.perf_counter() - start
        expected = [{"message": f"c{i}"} for i in range(clients)]
        if [json.loads(reply) for reply in replies] != expected:
            raise RuntimeError(f"unexpected replies: {replies[:3]}")
        return elapsed
    finally:
        await close_clients(sockets)


# --- 2 and 3. Fan-out: one sender, many receivers in one room --------------------

def percentile(sorted_values, fraction):
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def latency_figures(latencies):
    """p50, p99 and max of latencies in seconds, in milliseconds (None if empty)."""
    ordered = sorted(latencies)
    return {
        "p50": _ms(percentile(ordered, 0.50)),
        "p99": _ms(percentile(ordered, 0.99)),
        "max": _ms(ordered[-1] if ordered else None),
    }


async def drained(complete, last_receipt, drain_timeout, deadline):
    """Wait until complete() is true, or nothing has come for drain_timeout
    seconds since last_receipt(), or the clock passes deadline."""
    while not complete():
        now = time.perf_counter()
        if now - last_receipt() > drain_timeout or now > deadline:
            return
        await asyncio.sleep(0.02)


class Room:
    """One sender and its receivers' sockets in one room; every receipt timed.

    Each message carries its own name ("burst-17"); the room notes when it
    was sent and when each receiver got it, on this process's clock.
    """

    def __init__(self, sender, inboxes):
        self.sender, self.inboxes = sender, inboxes
        self.sent_at = {}  # message -> when it was sent
        self.latencies = []  # seconds, one per receipt, of the phase being run
        self.seen = [set() for _ in inboxes]  # messages each receiver has had
        self.duplicates = 0
        self.late = 0  # receipts of an earlier phase, after it was closed
        self.last_receipt = None
        self.phase_name = None
        self.warmed = [asyncio.Event() for _ in inboxes]

    async def listen(self, index):
        async for data in self.inboxes[index]:
            now = time.perf_counter()
            text = json.loads(data)["message"]
            if text == "warm-up":
                self.warmed[index].set()
            elif text in self.seen[index]:
                self.duplicates += 1
            elif not text.startswith(f"{self.phase_name}-"):
                self.seen[index].add(text)
                self.late += 1
            else:
                self.seen[index].add(text)
                self.latencies.append(now - self.sent_at[text])
                self.last_receipt = now

    def missing(self, name, messages, limit=5):
        """A few (receiver, message) pairs that have not arrived, to debug losses."""
        pairs = (
            (index, f"{name}-{number}")
            for number in range(messages) for index in range(len(self.inboxes))
        )
        return [pair for pair in pairs if pair[1] not in self.seen[pair[0]]][:limit]

    async def ignore_own_copies(self):  # the sender is in the room too
        async for _ in self.sender:
            pass

    async def warm_up(self, timeout=20):
        """One message first: it checks that the room reaches every receiver,
        and warms the paths (imports, Redis connections) before any timing."""
        await self.sender.send(frame("warm-up"))
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in self.warmed)), timeout)

    async def phase(self, name, messages, rate, meter, drain_timeout, time_limit):
        """Send `messages` at `rate` per second (None: all at once); wait; report."""
        self.latencies.clear()
        self.duplicates = self.late = 0
        self.last_receipt = None
        self.phase_name = name
        meter.start()
        start = time.perf_counter()
        for number in range(messages):
            if rate:
                delay = start + number / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            text = f"{name}-{number}"
            self.sent_at[text] = time.perf_counter()
            await self.sender.send(frame(text))
        sent = time.perf_counter()

        expected = messages * len(self.inboxes)
        await drained(lambda: len(self.latencies) >= expected, lambda: self.last_receipt or sent,
                      drain_timeout, start + time_limit)
        cpu_used, cpu_percent = meter.stop()

        received = len(self.latencies)
        elapsed = (self.last_receipt or sent) - start
        # The servers' CPU time per delivery: steadier than the rates when
        # other work shares the cores, since waiting for a core costs no CPU.
        server_cpu = sum(v for who, v in cpu_used.items() if who.startswith("server"))
        return {
            "messages": messages,
            "rate": rate,
            "receivers": len(self.inboxes),
            "expected": expected,
            "received": received,
            "lost": expected - received,
            "duplicates": self.duplicates,
            "late_from_earlier_phase": self.late,
            "missing_sample": self.missing(name, messages) if received < expected else [],
            "seconds": round(elapsed, 3),
            "send_seconds": round(sent - start, 3),
            "deliveries_per_s": round(received / elapsed) if elapsed > 0 else 0,
            "latency_ms": latency_figures(self.latencies),
            "cpu_percent": cpu_percent,
            "server_cpu_us_per_delivery": (
                round(1e6 * server_cpu / received, 1) if received else None
            ),
        }


async def fan_out(
    sender_server, receiver_servers, room_name, receivers, phases, cpu_pids=(),
    drain_timeout=3.0, time_limit=60.0,
):
    """One sender and `receivers` clients in one room, through some phases.

    phases: [(name, messages, rate)], run one after the other on the same
    sockets; rate is messages per second, or None for a burst (as fast as
    the sender's socket takes them). Receivers are spread over
    receiver_servers in turn; the sender uses sender_server.
    Lost: receipts still missing once none has come for drain_timeout seconds.
    Returns {phase name: figures}.
    """
    targets = [
        (receiver_servers[i % len(receiver_servers)], room_name) for i in range(receivers)
    ]
    sockets, errors = await open_clients(targets + [(sender_server, room_name)])
    try:
        if errors:
            raise RuntimeError(f"{len(errors)} clients could not connect: {errors[0]!r}")
        *inboxes, sender = sockets
        room = Room(sender, inboxes)
        readers = [asyncio.create_task(room.listen(i)) for i in range(len(inboxes))]
        readers.append(asyncio.create_task(room.ignore_own_copies()))
        try:
            await room.warm_up()
            return {
                name: await room.phase(
                    name, messages, rate, CpuMeter(cpu_pids), drain_timeout, time_limit
                )
                for name, messages, rate in phases
            }
        finally:
            await stop(readers)
    finally:
        await close_clients(sockets)


def _ms(seconds):
    return None if seconds is None else round(1000 * seconds, 1)


# --- 6. Flood control: chatters, and one flooder among them ----------------------

class Chatters:
    """Users chatting in one room, each at a steady rate; every receipt of
    another chatter's message timed, on this process's clock.

    Frames are step 8's: {"id", "author", "message", "key"}, and
    {"presence": [...]} as people come and go (passed over). A chatter's own
    message comes back to it as its acknowledgement: not counted.
    """

    def __init__(self, names, sockets, flooder=None):
        self.names, self.sockets, self.flooder = names, sockets, flooder
        self.sent_at = {}  # message -> when it was sent
        self.latencies = []  # seconds, one per receipt
        self.seen = [set() for _ in sockets]
        self.duplicates = self.flood_heard = 0
        self.refused = []  # error frames a chatter got (the flood limit: there should be none)
        self.last_receipt = None
        self.warmed = [asyncio.Event() for _ in sockets]
        self.warmed[0].set()  # the first chatter says the warm-up message

    async def listen(self, index):
        own = self.names[index]
        async for data in self.sockets[index]:
            now = time.perf_counter()
            message = json.loads(data)
            if "presence" in message:
                continue
            if "error" in message:
                self.refused.append(message)
            elif message["author"] == own:
                pass  # its own, acknowledged
            elif message["message"] == "warm-up":
                self.warmed[index].set()
            elif message["author"] == self.flooder:
                self.flood_heard += 1  # what the flood limit let through
            elif message["message"] in self.seen[index]:
                self.duplicates += 1
            else:
                self.seen[index].add(message["message"])
                self.latencies.append(now - self.sent_at[message["message"]])
                self.last_receipt = now

    async def warm_up(self, timeout=20):
        """One message first, from the first chatter to all the others."""
        await self.sockets[0].send(json.dumps({"message": "warm-up", "key": "warm-up"}))
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in self.warmed)), timeout)

    async def chat(self, index, start, messages, rate):
        """`messages` at `rate` per second; the chatters' turns are spread
        evenly over each second, so the room hears a steady stream."""
        offset = index / (len(self.sockets) * rate)
        for number in range(messages):
            delay = start + offset + number / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            text = f"{self.names[index]} {number}"
            self.sent_at[text] = time.perf_counter()
            # With a key, as the page sends every message (room.html).
            await self.sockets[index].send(json.dumps({"message": text, "key": text}))


class Flooder:
    """One user's tabs, each sending as fast as the server answers.

    Each tab keeps `unanswered` messages in flight: the next one leaves as
    soon as the server answers one, with its acknowledgement (accepted) or an
    error frame with "retry_after" (refused). Not faster: a client that does
    not wait only fills the socket's buffers, and the server still takes the
    frames one by one.
    """

    def __init__(self, sockets, unanswered):
        self.sockets = sockets
        self.slots = [asyncio.Semaphore(unanswered) for _ in sockets]
        self.sent = self.accepted = 0
        self.refused = []  # the retry_after of each refusal
        self.first_sent = self.last_sent = self.last_answer = None

    def in_flight(self):
        return self.sent - self.accepted - len(self.refused)

    async def listen(self, tab):
        async for data in self.sockets[tab]:
            answer = json.loads(data)
            # Only this tab's own answers: the room's messages, the other
            # tabs' accepted ones among them, reach every tab.
            if not str(answer.get("key", "")).startswith(f"flood{tab}-"):
                continue
            self.last_answer = time.perf_counter()
            if "error" in answer:
                self.refused.append(answer.get("retry_after"))
            else:
                self.accepted += 1
            self.slots[tab].release()

    async def flood(self, tab, until):
        number = 0
        while True:
            await self.slots[tab].acquire()
            now = time.perf_counter()
            if now >= until:
                return
            self.first_sent = self.first_sent or now
            self.last_sent = now
            key = f"flood{tab}-{number}"
            await self.sockets[tab].send(json.dumps({"message": f"flood {number}", "key": key}))
            self.sent += 1
            number += 1


async def flood_round(server, room_name, chatters, rate, seconds, flooder=None, tabs=4,
                      unanswered=8, window=10, cpu_pids=(), drain_timeout=3.0):
    """Logged-in chatters (workshop.clients.SiteUser, signed up) in one room,
    each sending `rate` messages a second for `seconds`; with a flooder (a
    SiteUser too), its `tabs` sockets in the same room flood meanwhile.

    window: the flood limit's window in seconds (step 8's chat/flood.py), to
    count the windows the flood spans. Lost: receipts still missing once none
    has come for drain_timeout seconds. Returns the figures.
    """
    targets = [(server, room_name, user.headers()) for user in chatters]
    if flooder:
        targets += [(server, room_name, flooder.headers())] * tabs
    sockets, errors = await open_clients(targets)
    try:
        if errors:
            raise RuntimeError(f"{len(errors)} clients could not connect: {errors[0]!r}")
        room = Chatters([user.username for user in chatters], sockets[:len(chatters)],
                        flooder.username if flooder else None)
        flood = Flooder(sockets[len(chatters):], unanswered) if flooder else None
        readers = [asyncio.create_task(room.listen(i)) for i in range(len(chatters))]
        if flood:
            readers += [asyncio.create_task(flood.listen(tab)) for tab in range(tabs)]
        try:
            await room.warm_up()
            meter = CpuMeter(cpu_pids)
            meter.start()
            start = time.perf_counter()
            messages = int(seconds * rate)
            senders = [room.chat(i, start, messages, rate) for i in range(len(chatters))]
            if flood:
                senders += [flood.flood(tab, start + seconds) for tab in range(tabs)]
            await asyncio.gather(*senders)
            sent = time.perf_counter()
            expected = messages * len(chatters) * (len(chatters) - 1)
            await drained(
                lambda: len(room.latencies) >= expected and not (flood and flood.in_flight()),
                lambda: max(filter(None, [room.last_receipt, flood and flood.last_answer, sent])),
                drain_timeout, sent + 60,
            )
            cpu_used, cpu_percent = meter.stop()
        finally:
            await stop(readers)
    finally:
        await close_clients(sockets)

    received = len(room.latencies)
    elapsed = (room.last_receipt or sent) - start
    figures = {
        "chatters": len(chatters),
        "rate": rate,
        "seconds": seconds,
        "messages": messages * len(chatters),
        "expected": expected,
        "received": received,
        "lost": expected - received,
        "duplicates": room.duplicates,
        "chatters_refused": len(room.refused),
        "refused_sample": room.refused[:3],
        "deliveries_per_s": round(received / elapsed) if elapsed > 0 else 0,
        "latency_ms": latency_figures(room.latencies),
        "cpu_percent": cpu_percent,
        "flood": None,
    }
    if flood:
        span = (flood.last_sent - flood.first_sent) if flood.sent else 0
        refused = flood.refused
        figures["flood"] = {
            "tabs": tabs,
            "unanswered_per_tab": unanswered,
            "sent": flood.sent,
            "sent_per_s": round(flood.sent / seconds),
            "accepted": flood.accepted,
            "refused": len(refused),
            "unanswered": flood.in_flight(),
            # A fixed window opens with the first message after the last one
            # closed: a flood of `span` seconds opens this many.
            "windows": int(span // window) + 1 if flood.sent else 0,
            "retry_after_s": [min(refused), max(refused)] if refused else None,
            "heard_by_chatters": room.flood_heard,
        }
    return figures


# --- Experiment: deliveries while other clients come and go ------------------------

async def churn_delivery(server, receivers, churners, seconds, rate, drain_timeout=3.0):
    """Paced messages to a steady room while, on the same server, `churners`
    clients of another room connect and disconnect over and over.

    Closing a tab is the most ordinary thing a chat's users do: this checks
    that it costs the users who stay nothing. Returns what the steady room lost.
    """
    sockets, errors = await open_clients([(server, "steady")] * (receivers + 1))
    if errors:
        await close_clients(sockets)
        raise RuntimeError(f"{len(errors)} clients could not connect: {errors[0]!r}")
    *inboxes, sender = sockets
    room = Room(sender, inboxes)
    readers = [asyncio.create_task(room.listen(i)) for i in range(receivers)]
    readers.append(asyncio.create_task(room.ignore_own_copies()))
    stop = asyncio.Event()

    async def come_and_go():
        cycles = 0
        while not stop.is_set():
            visitors, _ = await open_clients([(server, "visitors")] * churners)
            await asyncio.sleep(0.05)
            await close_clients(visitors)
            cycles += 1
        return cycles

    try:
        await room.warm_up()
        churn = asyncio.create_task(come_and_go())
        try:
            figures = await room.phase(
                "steady", int(seconds * rate), rate, CpuMeter({}), drain_timeout, seconds + 30
            )
        finally:
            stop.set()
            cycles = await churn
    finally:
        await stop(readers)
        await close_clients(sockets)
    incomplete = {
        number for number in range(figures["messages"])
        if any(f"steady-{number}" not in seen for seen in room.seen)
    }
    return {
        "messages": figures["messages"],
        "receivers": receivers,
        "expected": figures["expected"],
        "lost": figures["lost"],
        "messages_with_losses": len(incomplete),
        "churn_cycles": cycles,
        "visitors_per_cycle": churners,
        "latency_ms": figures["latency_ms"],
    }


# --- 4. Connections held -----------------------------------------------------------

async def hold_connections(server, pid, room, count, settle=1.0, at_once=50):
    """Open `count` idle WebSockets to one room; memory per connection; all alive?"""
    limit = allow_open_files(count + 200)
    if limit < count + 50:
        raise RuntimeError(f"open-file limit {limit} is too low for {count} connections")

    # Warm up: the first connection loads code and opens Redis connections.
    warm, errors = await open_clients([(server, room)])
    if errors:
        raise RuntimeError(f"could not connect: {errors[0]!r}")
    await close_clients(warm)
    await asyncio.sleep(settle)
    rss_before = rss_bytes(pid)

    start = time.perf_counter()
    sockets, errors = await open_clients([(server, room)] * count, at_once=at_once)
    open_seconds = time.perf_counter() - start
    try:
        await asyncio.sleep(settle)
        rss_after = rss_bytes(pid)

        # Still alive? One message into the room must reach every socket.
        speaker, speaker_errors = await open_clients([(server, room)])
        reached = 0
        if not speaker_errors:
            await speaker[0].send(frame("still there?"))

            async def hears(ws):
                try:
                    await asyncio.wait_for(ws.recv(), 20)
                    return True
                except Exception:
                    return False

            reached = sum(await asyncio.gather(*(hears(ws) for ws in sockets)))
            await close_clients(speaker)
    finally:
        await close_clients(sockets)

    opened = len(sockets)
    return {
        "attempted": count,
        "opened": opened,
        "failed": len(errors),
        "first_error": repr(errors[0]) if errors else None,
        "open_seconds": round(open_seconds, 2),
        "opened_per_s": round(opened / open_seconds) if open_seconds else None,
        "reached_by_broadcast": reached,
        "rss_before_mib": round(rss_before / 2**20, 1),
        "rss_after_mib": round(rss_after / 2**20, 1),
        "kib_per_connection": (
            round((rss_after - rss_before) / 1024 / opened, 1) if opened else None
        ),
        "open_file_limit": limit,
    }
