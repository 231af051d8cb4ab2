#!/usr/bin/env python3
"""Locks a pid file exactly the way the Python `pid` package (used by `lockable`) does.

Usage:
  python_pid_lock.py hold PATH   lock, print "locked", wait for a line on stdin (or EOF), release
  python_pid_lock.py try PATH    try once; exit 0 if it could lock (then release), 3 if busy
  python_pid_lock.py churn PATH ROUNDS
                                 lock and release ROUNDS times as fast as it can; while holding,
                                 check that PATH.cpp-holds (made by the other side while it
                                 holds) is absent: print "overlap" and exit 9 if not

Lock: open(PATH, 'a+'), fcntl.flock(LOCK_EX | LOCK_NB), truncate, write "<pid>\n".
Release: close the file, then unlink it (pid's cleanup).
"""
import fcntl
import os
import sys

BUSY = 3


def lock(path):
    fh = open(path, "a+")
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        return None
    fh.seek(0)
    fh.truncate()
    fh.write("%d\n" % os.getpid())
    fh.flush()
    return fh


def release(fh, path):
    fh.close()
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


def main():
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "churn":
        return churn(path, int(sys.argv[3]))
    fh = lock(path)
    if fh is None:
        print("busy", flush=True)
        return BUSY
    print("locked", flush=True)
    if mode == "hold":
        sys.stdin.readline()
    release(fh, path)
    print("released", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
