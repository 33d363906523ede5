"""Write a run's results: results.json, results.md (tables) and PNG plots."""
import json
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no window
import matplotlib.pyplot as plt  # noqa: E402

PLOT_STYLE = {"figure.figsize": (8, 3), "figure.dpi": 80, "font.size": 9}
COLOURS = {"sync": "#c0504d", "async": "#4f81bd", "ideal": "#999999"}


def write_results(results, out, name="results"):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / f"{name}.json", out / f"{name}.md"]
    written[0].write_text(json.dumps(results, indent=1) + "\n")
    written[1].write_text(markdown(results))
    with plt.rc_context(PLOT_STYLE):
        if "io" in results:
            written.append(plot_io(results["io"], out / "io_wait.png"))
        if "fanout" in results:
            written.append(plot_fanout(results["fanout"], out / "fanout.png"))
        if "scaleout" in results:
            written.append(plot_scaleout(results["scaleout"], out / "scaleout.png"))
    return written


# --- Markdown ----------------------------------------------------------------------

def number(value, digits=0):
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def milliseconds(value):
    """Tenths below 100 ms, whole milliseconds above (the noise is larger)."""
    return number(value, 1 if value is not None and value < 100 else 0)


def machine_lines(results):
    m = results["machine"]
    packages = ", ".join(f"{name} {v}" for name, v in m["packages"].items())
    return [
        f"Measured {m['date']} ({results['mode']} run, {results['seconds']} s) on "
        f"{m['cores']} cores ({m['cpu']}), {m['system']}, Python {m['python']}, "
        f"redis-server {m['redis_server']}; {packages}.",
        "",
        f"Load average before {m['load_average_before']}, after "
        f"{m.get('load_average_after')}: the machine is shared, and the load "
        "generator runs on the same cores as the servers (see \"others\" below).",
    ]


def markdown(results):
    lines = [
        "# Benchmark results",
        "",
        *machine_lines(results),
        "",
        "Unless a table says otherwise, figures are medians of repeated rounds; "
        "within a round the configurations run one after the other, and ratios are "
        "taken within a round. What each figure means: bench/README.md.",
        "",
    ]
    if "io" in results:
        lines += io_table(results["io"])
    if "fanout" in results:
        lines += ["## 2. Fan-out: one sender, one room", ""]
        lines += fanout_tables(results["fanout"], "RedisChannelLayer")
        lines += ["![Fan-out](fanout.png)", ""]
    if "scaleout" in results:
        lines += ["## 3. Scale-out: one daphne or two, one Redis", ""]
        lines += fanout_tables(results["scaleout"], "1 daphne")
        lines += ["![Scale-out](scaleout.png)", ""]
    if "connections" in results:
        lines += connections_table(results["connections"])
    if "history" in results:
        lines += ["## 5. History: what storing each message costs", ""]
        lines += fanout_tables(results["history"], "step06-history")
    if "flood" in results:
        lines += flood_tables(results["flood"])
    if "experiment" in results:
        lines += [f"## Experiment: {results['experiment']['title']}", ""]
        lines += fanout_tables(results["experiment"], "the step as it is")
    if "churn" in results:
        lines += churn_table(results["churn"])
    return "\n".join(lines) + "\n"


def io_table(io):
    lines = [
        "## 1. Sync versus async under I/O waits",
        "",
        f"Each of N clients sends one message at once; the consumer waits "
        f"{io['slow_call_ms']} ms (blocking in sync, awaiting in async) and echoes it. "
        f"Time until every echo is back, median of {io['repeats']} rounds; the speedup "
        "is sync time / async time within a round.",
        "",
        "| N clients | sync | async | speedup | limit (N) | of the limit |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in io["rows"]:
        lines.append(
            f"| {row['clients']} | {row['sync_median_s']:.2f} s | {row['async_median_s']:.3f} s "
            f"| {row['speedup']:.1f}× | {row['limit']}× | {100 * row['of_limit']:.0f} % |"
        )
    return lines + ["", "![Sync versus async](io_wait.png)", ""]


def fanout_tables(section, baseline_name):
    """The paced and the burst table; baseline_name heads the burst's ratio column."""
    receivers, rate = section["receivers"], section["rate"]
    lines = []
    for phase, title in (
        ("paced", f"Paced: {section['paced_messages']} messages at {rate}/s, "
                  f"so {receivers * rate:,} deliveries/s offered"),
        ("burst", f"Burst: {section['burst_messages']} messages sent at once, "
                  f"{receivers * section['burst_messages']:,} deliveries"),
    ):
        # Paced, every configuration that keeps up delivers the offered rate:
        # no ratio to show. A burst's ratio is taken within each round.
        ratio = phase == "burst"
        lines += [
            f"**{title}** ({receivers} receivers and the sender in one room; "
            f"medians of {section['repeats']} rounds, range in brackets; "
            "CPU in % of one core)",
            "",
            "| configuration | deliveries/s"
            + (f" | vs {baseline_name}, same round" if ratio else "")
            + " | latency p50 / p99 / max | lost | server CPU per delivery "
            "| CPU %: servers / Redis / load gen. / others |",
            "|---|---:" + ("|---:" if ratio else "") + "|---:|---:|---:|---|",
        ]
        for config in section["configs"]:
            s = config["summary"][phase]
            cpu = s["cpu_percent"]
            servers = sum(v for k, v in cpu.items() if k.startswith("server"))
            p50, p99, worst = (milliseconds(s["latency_ms"][q]) for q in ("p50", "p99", "max"))
            if "p99_range_ms" in s:  # results written before it was recorded have none
                p99 += spread(s["p99_range_ms"], milliseconds)
            latency = f"{p50} / {p99} / {worst}"
            cells = [config["label"], number(s["deliveries_per_s"])
                     + spread(s["deliveries_per_s_range"], number)]
            if ratio:
                cells.append(f"{s['vs_baseline']:.2f}×" + spread(s["vs_baseline_range"], times))
            cells += [
                f"{latency} ms",
                f"{s['lost']} of {s['expected']:,}",
                f"{s['server_cpu_us_per_delivery']:.0f} µs",
                f"{servers:.0f} / {cpu.get('redis', 0):.0f} / "
                f"{cpu['load generator']:.0f} / {cpu['others']:.0f}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def flood_tables(section):
    """The chatters with and without the flooder, then the flooder's messages by round."""
    chatters, rate, tabs = section["chatters"], section["rate"], section["tabs"]
    lines = [
        f"## 6. Flood control: one flooder among {chatters} chatters",
        "",
        f"{chatters} logged-in users in one room on step08 (2 uvicorn workers, Redis, "
        f"SQLite), each sending {number(rate, 1)} message/s for {number(section['seconds'])} s; "
        f"the flooder, one more user, sends from {tabs} tabs in the same room as fast as "
        f"the server answers. Flood limit: {section['limit']} messages per user per "
        f"{section['window']} s. Latency: from a chatter's send to its receipt by each "
        f"other chatter. Medians of {section['repeats']} rounds, range in brackets; the "
        "two configurations alternate within each round. CPU in % of one core.",
        "",
        "| configuration | chatters' deliveries/s | latency p50 / p99 / max "
        "| p99 vs alone, same round | lost | chatters refused "
        "| CPU %: servers / Redis / load gen. / others |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for config in section["configs"]:
        s = config["summary"]
        cpu = s["cpu_percent"]
        servers = sum(v for k, v in cpu.items() if k.startswith("server"))
        p50, p99, worst = (milliseconds(s["latency_ms"][q]) for q in ("p50", "p99", "max"))
        p99 += spread(s["p99_range_ms"], milliseconds)
        ratio = "–" if s["flood"] is None or s["p99_vs_alone"] is None else (
            times(s["p99_vs_alone"]) + spread(s["p99_vs_alone_range"], times))
        lines.append(
            f"| {config['label']} | {number(s['deliveries_per_s'])} | {p50} / {p99} / {worst} ms "
            f"| {ratio} | {s['lost']} of {s['expected']:,} | {s['chatters_refused']} "
            f"| {servers:.0f} / {cpu.get('redis', 0):.0f} / {cpu['load generator']:.0f} "
            f"/ {cpu['others']:.0f} |"
        )
    lines += [
        "",
        f"**The flooder's messages**, by round ({tabs} tabs, one allowance; at most "
        f"{section['limit']} accepted per window, a window opening with the first message "
        "after the last one closed):",
        "",
        "| round | sent | sent/s | accepted | at most (limit × windows) | refused "
        "| heard by each chatter |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    flooded = next(c for c in section["configs"] if c["summary"]["flood"])
    for index, run in enumerate(flooded["runs"], 1):
        flood = run["flood"]
        lines.append(
            f"| {index} | {flood['sent']:,} | {flood['sent_per_s']:,} | {flood['accepted']} "
            f"| {section['limit'] * flood['windows']} ({flood['windows']} × {section['limit']}) "
            f"| {flood['refused']:,} | {flood['heard_by_chatters'] / run['chatters']:.0f} |"
        )
    return lines + [""]


def times(value):
    return f"{value:.2f}×"


def spread(low_high, show):
    low, high = low_high
    return f" ({show(low)}–{show(high)})" if low != high else ""


def churn_table(churn):
    lines = [
        "## Experiment: deliveries while other clients come and go",
        "",
        f"A steady room of {churn['receivers']} receivers gets {churn['rate']} messages/s "
        f"for {churn['seconds']} s while, on the same server, 10 other clients connect, "
        f"wait 50 ms and disconnect, over and over. {churn['repeats']} rounds, added up.",
        "",
        "| configuration | deliveries lost | messages with losses | visitor cycles "
        "| consumers slow to stop (daphne log) |",
        "|---|---:|---:|---:|---:|",
    ]
    for c in churn["configs"]:
        lines.append(
            f"| {c['label']} | {c['lost']} of {c['expected']:,} "
            f"| {c['messages_with_losses']} of {c['messages']:,} | {c['churn_cycles']:,} "
            f"| {c['slow_stops_logged']} |"
        )
    return lines + [""]


def connections_table(c):
    return [
        "## 4. Idle connections held by one step04 daphne",
        "",
        "| attempted | opened | reached by one broadcast | opening rate "
        "| daphne RSS before → after | per connection |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {c['attempted']:,} | {c['opened']:,} | {c['reached_by_broadcast']:,} "
        f"| {number(c['opened_per_s'])}/s | {c['rss_before_mib']} → {c['rss_after_mib']} MiB "
        f"| {c['kib_per_connection']} KiB |",
        "",
        f"Open-file limit of the load generator: {c['open_file_limit']:,}."
        + (f" First failure: {c['first_error']}" if c["first_error"] else ""),
        "",
    ]


# --- Plots --------------------------------------------------------------------------

def plot_io(io, path):
    rows = io["rows"]
    n = [row["clients"] for row in rows]
    figure, (left, right) = plt.subplots(1, 2)
    left.plot(n, [row["sync_median_s"] for row in rows], "o-", color=COLOURS["sync"],
              label="sync (blocks)")
    left.plot(n, [row["async_median_s"] for row in rows], "o-", color=COLOURS["async"],
              label="async (awaits)")
    left.set(xlabel="clients sending at once (N)", ylabel="seconds until all answered",
             title="Total time")
    left.legend()
    right.plot(n, n, "--", color=COLOURS["ideal"], label="limit: N")
    right.plot(n, [row["speedup"] for row in rows], "o-", color=COLOURS["async"],
               label="measured")
    right.set(xlabel="clients sending at once (N)", ylabel="sync time / async time",
              title="Speedup of async")
    right.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def _rounds(config, phase, figure):
    """A figure of every round, e.g. figure=lambda run: run["deliveries_per_s"]."""
    return [figure(run[phase]) for run in config["runs"]]


def _bars(axis, section, values_by_config, title, ylabel, log=False):
    """Bars at the medians (written under each bar), whiskers from the lowest
    to the highest round."""
    configs = section["configs"]
    medians = [statistics.median(values) for values in values_by_config]
    whiskers = [
        [m - min(values) for m, values in zip(medians, values_by_config)],
        [max(values) - m for m, values in zip(medians, values_by_config)],
    ]
    axis.bar(range(len(configs)), medians, yerr=whiskers, capsize=3,
             color=COLOURS["async"], ecolor=COLOURS["ideal"])
    axis.set_xticks(range(len(configs)),
                    [f"{c['short']}\n{m:,.0f}/s" for c, m in zip(configs, medians)],
                    fontsize=7)
    axis.set(title=title, ylabel=ylabel)
    if log:
        axis.set_yscale("log")
        axis.set_ylim(bottom=100)


def _latency_bars(axis, section):
    """p50 and p99 at the paced rate, medians of the rounds, side by side."""
    configs = section["configs"]
    x = range(len(configs))
    for offset, quantile, colour in ((-0.2, "p50", "async"), (0.2, "p99", "sync")):
        axis.bar([i + offset for i in x],
                 [c["summary"]["paced"]["latency_ms"][quantile] for c in configs],
                 0.4, label=quantile, color=COLOURS[colour])
    axis.set_xticks(list(x), [c["short"] for c in configs], fontsize=7)
    axis.set(title=f"Latency at {section['rate']} messages/s (medians)",
             ylabel="ms, send to receipt")
    axis.legend()


def _throughput(section):
    return [_rounds(c, "burst", lambda run: run["deliveries_per_s"]) for c in section["configs"]]


def plot_fanout(section, path):
    figure, (left, right) = plt.subplots(1, 2)
    _bars(left, section, _throughput(section), f"Burst of {section['burst_messages']} messages",
          "deliveries per second (log scale)", log=True)
    _latency_bars(right, section)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def plot_scaleout(section, path):
    figure, (left, right) = plt.subplots(1, 2)
    _bars(left, section, _throughput(section), f"Burst of {section['burst_messages']} messages",
          "deliveries per second")
    _latency_bars(right, section)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path
