#!/usr/bin/env python3
"""A fault-harness worker that locks the way the Python `lockable` package does (pid 3.0's
PidFile, as tests/integration/python_pid_lock.py implements it), in the lock folder that
lockable's CLI workers use at the same time.

Usage: python_worker.py HISTORY DEVICES_DIR LOCK_FOLDER TIMEOUT HOLD_MS DEVICE [DEVICE...]

Tries each DEVICE's `<id>.pid` in turn every 20 ms (the Python package has no queue) until one is
locked or TIMEOUT seconds of time.monotonic() pass (exit 6 with the reason on stderr). While
holding, it does what fault_hold does: takes the device's stand-in flock without waiting, records
its grant and release in HISTORY (one O_APPEND write each, CLOCK_MONOTONIC time), and holds for
HOLD_MS. Releases as the package does: close, then unlink. FAULT_WORKER names the worker.
"""
import fcntl
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import python_pid_lock  # noqa: E402  (the protocol, shared with the integration tests)

TIMEOUT = 6


def record(history, event):
    event = dict(event, t=round(time.clock_gettime(time.CLOCK_MONOTONIC), 6))
    line = (json.dumps(event, separators=(",", ":")) + "\n").encode()
    if os.write(history, line) != len(line):  # one write on an O_APPEND descriptor
        sys.exit(70)


def main():
    history_path, devices, folder, timeout, hold_ms = sys.argv[1:6]
    ids = sys.argv[6:]
    worker = int(os.environ.get("FAULT_WORKER", "-1"))
    history = os.open(history_path, os.O_WRONLY | os.O_APPEND)
    deadline = time.monotonic() + float(timeout)
    while True:
        for device in ids:
            path = os.path.join(folder, device + ".pid")
            try:
                held = python_pid_lock.lock(path)
            except (OSError, ValueError):
                held = None  # a file replaced or half-written under us: try again
            if held is None:
                continue
            in_use = os.open(os.path.join(devices, device + ".inuse"), os.O_RDWR | os.O_CREAT, 0o644)
            event = {"ev": "grant", "worker": worker, "pid": os.getpid(), "device": device,
                     "busy": False}
            try:
                fcntl.flock(in_use, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.ftruncate(in_use, 0)
                os.pwrite(in_use, ("%d -" % worker).encode(), 0)
            except OSError:
                event["busy"] = True
                previous = os.pread(in_use, 64, 0).decode(errors="replace").split()
                if previous and previous[0].lstrip("-").isdigit():
                    event["prev_worker"] = int(previous[0])
            record(history, event)
            time.sleep(int(hold_ms) / 1000.0)
            record(history, {"ev": "release", "worker": worker, "device": device, "why": "done"})
            os.close(in_use)
            python_pid_lock.release(held, path)
            return 0
        if time.monotonic() >= deadline:
            print("python worker: none of %s became free within %s s" % (",".join(ids), timeout),
                  file=sys.stderr, flush=True)
            return TIMEOUT
        time.sleep(0.02)


if __name__ == "__main__":
    sys.exit(main())
