#!/usr/bin/env python3
"""Locks a pid file exactly the way the Python `pid` package (used by `lockable`) does.

Usage:
  python_pid_lock.py hold PATH   lock, print "locked", wait for a line on stdin (or EOF), release
  python_pid_lock.py hold-stop PATH
                                 like hold, but stops itself (SIGSTOP) between the close() and
                                 the unlink() of its release, after printing "closed": a holder
                                 descheduled in the middle of its release; SIGCONT finishes it
  python_pid_lock.py try PATH    try once; exit 0 if it could lock (then release), 3 if busy
  python_pid_lock.py churn PATH ROUNDS
                                 lock and release ROUNDS times as fast as it can; while holding,
                                 check that PATH.cpp-holds (made by the other side while it
                                 holds) is absent: print "overlap" and exit 9 if not
  python_pid_lock.py ledger PATH ROUNDS LEDGER
                                 lock (retrying every 5 ms, as the package's polling does, only
                                 faster), hold 2 ms and release ROUNDS times, recording each hold in
                                 LEDGER as "enter <pid> <CLOCK_MONOTONIC ns>" and "leave <pid> <ns>"
                                 lines (the format of test_helper stress); print "done"

As pid 3.0's PidFile.create() and close():
Lock: open(PATH, 'a+'), fcntl.flock(LOCK_EX | LOCK_NB); refuse (busy) a file that names a live
process (check(): os.kill(pid, 0) succeeds or fails with EPERM), fchmod(0o644), truncate, write
"<pid>\n", flush.
Release: close the file, then unlink it if it is a file (pid's cleanup).
"""
import errno
import fcntl
import os
import signal
import sys
import time

BUSY = 3


def lock(path):
    fh = open(path, "a+")
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        return None
    fh.seek(0)
    text = fh.read(16).split("\n", 1)[0].strip()
    if text and pid_exists(int(text)):
        fh.close()  # pid's close(cleanup=False): the file stays
        return None
    os.fchmod(fh.fileno(), 0o644)
    fh.seek(0)
    fh.truncate()
    fh.write("%d\n" % os.getpid())
    fh.flush()
    return fh


def pid_exists(pid):
    try:
        os.kill(pid, 0)
    except OSError as error:
        return error.errno == errno.EPERM
    return True


def release(fh, path, stop_between=False):
    fh.close()
    if stop_between:
        print("closed", flush=True)
        os.kill(os.getpid(), signal.SIGSTOP)
    if os.path.isfile(path):
        os.remove(path)


def churn(path, rounds):
    mine, theirs = path + ".py-holds", path + ".cpp-holds"
    done = 0
    while done < rounds:
        fh = lock(path)
        if fh is None:
            continue
        open(mine, "w").close()
        overlap = os.path.exists(theirs)
        os.remove(mine)
        release(fh, path)
        if overlap:
            print("overlap", flush=True)
            return 9
        done += 1
    print("done", flush=True)
    return 0


def ledger(path, rounds, ledger_file):
    for _ in range(rounds):
        fh = lock(path)
        while fh is None:
            time.sleep(0.005)
            fh = lock(path)
        with open(ledger_file, "a") as out:
            out.write("enter %d %d\n" % (os.getpid(), time.monotonic_ns()))
        time.sleep(0.002)
        with open(ledger_file, "a") as out:
            out.write("leave %d %d\n" % (os.getpid(), time.monotonic_ns()))
        release(fh, path)
        time.sleep(0.002)
    print("done", flush=True)
    return 0


def main():
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "churn":
        return churn(path, int(sys.argv[3]))
    if mode == "ledger":
        return ledger(path, int(sys.argv[3]), sys.argv[4])
    fh = lock(path)
    if fh is None:
        print("busy", flush=True)
        return BUSY
    print("locked", flush=True)
    if mode in ("hold", "hold-stop"):
        sys.stdin.readline()
    release(fh, path, stop_between=mode == "hold-stop")
    print("released", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
