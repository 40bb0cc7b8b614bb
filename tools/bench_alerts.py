#!/usr/bin/env python3
"""Issue 19 figures, measured at the real daemon (BENCHMARKS.md, "Issue 19").

1. Commit-to-incident latency on `alerts_follow`: a daemon at FRAMESEEK_LOG=debug ingests the
   world's sample footage with one alert per labelled appearance while a follower is
   connected; for each incident line, the latency is its arrival at the follower minus the
   time of the daemon's last `batch committed` log line before the incident's log line (the
   commit of the batch that closed it).
2. Cost of 1,000 alerts on ingest: the sample videos (5 frames a second) ingested into a fresh
   state with 0 and with 1,000 alerts (added, then the daemon restarted, in both variants),
   alternating runs; the ratio of the median `ingest --wait` wall times, and of the median CPU
   time the daemon spent during the ingest (user + system, from /proc: on a shared machine
   the CPU time is the steadier figure, since other work stretches the wall time).

Usage: python3 tools/bench_alerts.py FRAMESEEK_BINARY FOOTAGE_DIR WORK_DIR [RUNS]
Environment: BENCH_ALERTS_SKIP_LATENCY=1 skips part 1; BENCH_ALERTS_MIN_CONFIDENCE=X gives the
1,000 alerts that threshold (default: the daemon's default, 0.5).
(FOOTAGE_DIR from `frameseek world footage --out FOOTAGE_DIR`; the bundled world model.)
"""

import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "assets/models/frameseek-tiny")


def start(binary, work, footage, interval, log_level="info"):
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    sock = os.path.join(work, "fs.sock")
    config = os.path.join(work, "fs.toml")
    with open(config, "w") as f:
        f.write(
            f'[daemon]\nsocket = "{sock}"\nstate_dir = "{work}/state"\nfootage_roots = ["{footage}"]\n'
            f'[model]\npath = "{MODEL}"\ndevice = "cpu"\nbatch_size = 16\n'
            f"[ingest]\nsample_interval = {interval}\n"
        )
    log = open(os.path.join(work, "log"), "w")
    env = dict(os.environ, FRAMESEEK_LOG=log_level)
    proc = subprocess.Popen([binary, "serve", "--config", config], stdout=subprocess.DEVNULL, stderr=log, env=env)
    for _ in range(600):
        if os.path.exists(sock):
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(sock)
                s.close()
                return proc, sock
            except OSError:
                pass
        time.sleep(0.05)
    raise SystemExit("daemon did not start")


def restart(binary, work, sock):
    log = open(os.path.join(work, "log"), "a")
    proc = subprocess.Popen([binary, "serve", "--config", os.path.join(work, "fs.toml")],
                            stdout=subprocess.DEVNULL, stderr=log)
    for _ in range(600):
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(sock)
            s.close()
            return proc
        except OSError:
            time.sleep(0.05)
    raise SystemExit("daemon did not restart")


def call(sock_path, requests):
    """Sends each request on one connection; returns the replies."""
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock_path)
    f = s.makefile("rw")
    out = []
    for r in requests:
        f.write(json.dumps(r) + "\n")
        f.flush()
        reply = json.loads(f.readline())
        if not reply.get("ok"):
            raise SystemExit(f"{r} -> {reply}")
        out.append(reply)
    s.close()
    return out


def stop(proc):
    proc.terminate()
    proc.wait(timeout=60)


def ingest_wait(binary, sock, *paths):
    t = time.monotonic()
    subprocess.run([binary, "--socket", sock, "ingest", "--wait", *paths], check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t


def cpu_seconds(pid):
    """User + system CPU time of a process so far, seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stamp(line):
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z", line)
    if not m:
        return None
    whole, frac = m.group(1).split(".")
    t = time.mktime(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) - time.timezone
    return t + float("0." + frac)


def latency(binary, footage, work):
    proc, sock = start(binary, work, footage, 1.0, "info,frameseek::ingest=debug")
    events = [json.loads(l) for l in open(os.path.join(footage, "ground_truth.jsonl"))]
    call(sock, [{"op": "alert_add", "name": f"gt{i:02}", "text": e["caption"]} for i, e in enumerate(events)])
    arrivals = {}
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    f = s.makefile("rw")
    f.write('{"op":"alerts_follow"}\n')
    f.flush()
    f.readline()

    def read():
        for line in f:
            v = json.loads(line)
            if "alert" in v:
                arrivals[(v["alert"], v["start_ms"])] = time.time()

    threading.Thread(target=read, daemon=True).start()
    for cam in sorted(os.listdir(footage)):
        if cam.startswith("cam"):
            ingest_wait(binary, sock, os.path.join(footage, cam, "footage.mp4"))
    time.sleep(1)
    stop(proc)
    last_commit = None
    latencies = []
    for line in open(os.path.join(work, "log")):
        if "batch committed" in line:
            last_commit = stamp(line)
        elif " incident " in line and last_commit is not None:
            alert = re.search(r"alert=(\S+)", line).group(1)
            start_ms = int(re.search(r"start_ms=(\d+)", line).group(1))
            if (alert, start_ms) in arrivals:
                latencies.append((arrivals[(alert, start_ms)] - last_commit) * 1000)
    latencies.sort()
    print(f"latency commit -> follower, {len(latencies)} incidents: median {statistics.median(latencies):.1f} ms, "
          f"max {latencies[-1]:.1f} ms")


def cost(binary, footage, work, runs):
    videos = [os.path.join(footage, c, "footage.mp4") for c in sorted(os.listdir(footage)) if c.startswith("cam")]
    colours = ["red", "white", "blue", "green", "black", "yellow", "grey", "orange", "purple", "brown"]
    things = ["car", "van", "truck", "person", "dog", "bicycle", "bus", "cat", "box", "motorbike"]
    places = ["street", "parking lot", "corridor", "gate", "garden", "driveway", "lobby", "yard", "road", "door"]
    texts = [f"a {c} {t} near the {p}" for c in colours for t in things for p in places]
    assert len(texts) == 1000
    times = {0: [], 1000: []}
    cpu = {0: [], 1000: []}
    # BENCH_ALERTS_MIN_CONFIDENCE: the alerts' threshold (default: the daemon's, 0.5).
    level = os.environ.get("BENCH_ALERTS_MIN_CONFIDENCE")
    threshold = {"min_confidence": float(level)} if level else {}
    for run in range(runs):
        for n in (0, 1000) if run % 2 == 0 else (1000, 0):
            proc, sock = start(binary, work, footage, 0.2)
            if n:
                call(sock, [dict({"op": "alert_add", "name": f"b{i:04}", "text": t}, **threshold)
                            for i, t in enumerate(texts[:n])])
            # Both variants restart the daemon before the ingest: what is measured is the steady
            # cost of evaluating the alerts, not the database settling after 1,000 adds.
            stop(proc)
            proc = restart(binary, work, sock)
            before = cpu_seconds(proc.pid)
            times[n].append(ingest_wait(binary, sock, *videos))
            cpu[n].append(cpu_seconds(proc.pid) - before)
            stop(proc)
            if n:
                incidents = sum(" incident " in line for line in open(os.path.join(work, "log")))
                print(f"run {run}: {incidents} incidents", flush=True)
            print(f"run {run}: {n} alerts: {times[n][-1]:.2f} s, daemon CPU {cpu[n][-1]:.2f} s, load {os.getloadavg()[0]:.1f}",
                  flush=True)
    base, loaded = statistics.median(times[0]), statistics.median(times[1000])
    print(f"ingest of the {len(videos)} sample videos at 5 frames/s: median {base:.2f} s with 0 alerts, {loaded:.2f} s with 1000: "
          f"ratio {loaded / base:.3f}")
    base, loaded = statistics.median(cpu[0]), statistics.median(cpu[1000])
    print(f"daemon CPU during the ingest: median {base:.2f} s with 0 alerts, {loaded:.2f} s with 1000: ratio {loaded / base:.3f}")


def main():
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    binary, footage, work = sys.argv[1], os.path.abspath(sys.argv[2]), os.path.abspath(sys.argv[3])
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 6
    if os.environ.get("BENCH_ALERTS_SKIP_LATENCY") is None:
        latency(binary, footage, os.path.join(work, "latency"))
    cost(binary, footage, os.path.join(work, "cost"), runs)


if __name__ == "__main__":
    main()
