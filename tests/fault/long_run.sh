#!/bin/sh
# The fault harness's long run: seeds one after another over every backend for DURATION seconds
# (default 3600), OPS workers per run (default 200), then the totals: runs, operations checked,
# faults per kind, and every failing seed with its replay command.
#   tests/fault/long_run.sh [DURATION] [OPS] [FIRST_SEED]    (from the source tree, after a build)
# Needs build/tests/fault/fault_harness (cmake --build build --target fault_harness).
set -u
duration=${1:-3600}
ops=${2:-200}
seed=${3:-$(date +%s)}
harness=${FAULT_HARNESS:-build/tests/fault/fault_harness}
log=${FAULT_LOG:-build/fault_long_run.log}
: > "$log"
end=$(( $(date +%s) + duration ))
while [ "$(date +%s)" -lt "$end" ]; do
  for backend in lock_folder python service etcd; do
    "$harness" --backend "$backend" --seed "$seed" --ops "$ops" >> "$log" 2>&1
    echo "exit $? backend $backend seed $seed" >> "$log"
  done
  seed=$((seed + 1))
done
/usr/bin/python3 - "$log" <<'PY'
import collections, json, sys
runs, failed, totals, faults = 0, [], collections.Counter(), collections.Counter()
per_backend = collections.Counter()
for line in open(sys.argv[1]):
    if line.startswith("fault_harness_counts "):
        counts = json.loads(line.split(" ", 1)[1])
        runs += 1
        per_backend[counts["backend"]] += 1
        for key in ("workers", "grants", "timeouts", "failures", "killed", "lost", "fenced_overlaps", "kill_races", "violations"):
            totals[key] += counts[key]
        faults.update(counts["faults"])
    elif line.startswith("  replay: "):
        failed.append(line.strip())
print("runs: %d (%s)" % (runs, ", ".join("%s %d" % kv for kv in sorted(per_backend.items()))))
print("operations checked: %d workers, %d grants; %d timeouts, %d other failures with a reason, "
      "%d killed, %d locks lost, %d overlaps made safe by a fencing token, %d killed holders' "
      "commands still on the device at the next grant" % (
          totals["workers"], totals["grants"], totals["timeouts"], totals["failures"],
          totals["killed"], totals["lost"], totals["fenced_overlaps"], totals["kill_races"]))
print("faults injected: %d: %s" % (sum(faults.values()), ", ".join("%s %d" % kv for kv in sorted(faults.items()))))
print("failing runs: %d" % len(failed))
for line in failed:
    print("  " + line)
sys.exit(1 if failed else 0)
PY
