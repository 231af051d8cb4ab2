#!/usr/bin/env python3
"""A waiter of an older lockable version, for mixed-folder tests: the lock folder protocol of
lockable before targeted wake-ups (the ticket queue in <folder>/.lockable-queue and the pid files),
waking on every change. It looks again every 5 ms, which sees every change an inotify wake-up on
any event would.

Usage: old_protocol_waiter.py FOLDER LEDGER NAME HOLD_MS ID [ID...]
  Queues for any of the ids, prints "queued" once its ticket is visible, locks one as the Python
  package and lockable do (flock on <id>.pid, "<pid>\\n" written while held, emptied on release),
  appends NAME to LEDGER while holding, holds HOLD_MS, releases, removes its ticket, prints
  "done". A ticket is <arrival ns, 20 digits>-<pid>-<n>.ticket holding the JSON array of wanted
  ids, flock-ed by its waiter; earlier live tickets reserve the ids they want (stale after 5 s).
Environment, for the mixed-folder stress test:
  OLD_WAITER_ROUNDS=N        queue, lock, hold, release N times (a new ticket each time); "queued"
                             is printed once, "done" after the last round
  OLD_WAITER_LEDGER_DIR=DIR  while holding device ID, the hold is recorded in DIR/ID.ledger as
                             "enter <pid> <CLOCK_MONOTONIC ns>" and "leave <pid> <ns>" lines (the
                             format of test_helper stress)
"""
import fcntl
import json
import os
import sys
import time

STALE_SECONDS = 5.0


def earlier_wants(queue, mine):
    reserved = set()
    for name in sorted(os.listdir(queue)):
        if not name.endswith(".ticket") or name >= mine:
            continue
        try:
            fd = os.open(os.path.join(queue, name), os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                continue  # nobody holds it: its waiter died
            except OSError:
                pass
            if time.time() - os.fstat(fd).st_mtime > STALE_SECONDS:
                continue
            try:
                wanted = json.loads(os.read(fd, 65536).decode())
            except ValueError:
                continue
            reserved.update(i for i in wanted if isinstance(i, str))
        finally:
            os.close(fd)
    return reserved


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def try_lock(path):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    # The Python package unlinks its file after each hold: the path may go at any moment.
    try:
        named = os.stat(path)
    except FileNotFoundError:
        named = None
    if (named is None or not os.path.samestat(named, os.fstat(fd)) or
            (text.isdigit() and int(text) != os.getpid() and pid_alive(int(text)))):
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.pwrite(fd, ("%d\n" % os.getpid()).encode(), 0)
    return fd


def record(ledger_dir, resource_id, kind):
    if not ledger_dir:
        return
    with open(os.path.join(ledger_dir, resource_id + ".ledger"), "a") as out:
        out.write("%s %d %d\n" % (kind, os.getpid(), time.monotonic_ns()))


def serve_once(folder, ledger, name, hold_ms, ids, number, first):
    ledger_dir = os.environ.get("OLD_WAITER_LEDGER_DIR", "")
    queue = os.path.join(folder, ".lockable-queue")
    os.makedirs(queue, exist_ok=True)
    ticket = "%020d-%d-%d.ticket" % (time.time_ns(), os.getpid(), number)
    temp = os.path.join(queue, "." + ticket + ".0.tmp")
    ticket_fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    fcntl.flock(ticket_fd, fcntl.LOCK_EX)
    os.write(ticket_fd, json.dumps(ids).encode())
    os.rename(temp, os.path.join(queue, ticket))
    if first:
        print("queued", flush=True)
    touched = time.time()
    while True:
        reserved = earlier_wants(queue, ticket)
        for resource_id in ids:
            if resource_id in reserved:
                continue
            fd = try_lock(os.path.join(folder, resource_id + ".pid"))
            if fd is None:
                continue
            record(ledger_dir, resource_id, "enter")
            with open(ledger, "a") as out:
                out.write(name + "\n")
            time.sleep(int(hold_ms) / 1000.0)
            record(ledger_dir, resource_id, "leave")
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            os.unlink(os.path.join(queue, ticket))
            os.close(ticket_fd)
            return
        if time.time() - touched >= 1.0:
            os.utime(ticket_fd)
            touched = time.time()
        time.sleep(0.005)


def main():
    folder, ledger, name, hold_ms = sys.argv[1:5]
    ids = sys.argv[5:]
    rounds = int(os.environ.get("OLD_WAITER_ROUNDS", "1"))
    for number in range(rounds):
        serve_once(folder, ledger, name, hold_ms, ids, number, number == 0)
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
