#!/usr/bin/python3
"""Reads the plugin's GoogleTest reports with junitparser, the JUnit reader of CI tooling, and
checks what a CI server would show: a suite without a device is failed (not skipped) with the
reason as the message, a skip carries the reason, and every test carries its allocation as
<property> elements. The JSON of the same runs must be valid and hold the same failures.

Run by ctest with Debian's /usr/bin/python3: python3-junitparser is a test dependency (dev.sh
installs it), so a missing module fails the test instead of skipping it.

usage: check_junit.py FIXTURE_PROGRAM PLAIN_PROGRAM
"""
import json
import os
import subprocess
import sys
import tempfile

import junitparser  # a missing package is an error here, on purpose

RESOURCES = [
    {"id": "dev-a1", "online": True, "hostname": "junit-host", "kind": "a", "serial": "A1"},
    {"id": "dev-b1", "online": True, "hostname": "junit-host", "kind": "b", "serial": "B1"},
    {"id": "dev-off", "online": False, "hostname": "junit-host", "kind": "c"},
]
ALLOCATION_KEYS = ["lockable_resource_id", "lockable_alloc_id", "lockable_requirements",
                   "lockable_allocation_queue_time", "lockable_allocation_start_time"]

failures = []


def check(condition, what):
    if not condition:
        failures.append(what)
        print("FAILED: " + what, file=sys.stderr)


class Rig:
    def __init__(self, work):
        self.work = work
        self.resources = os.path.join(work, "resources.json")
        with open(self.resources, "w") as out:
            json.dump(RESOURCES, out)
        self.locks = os.path.join(work, "locks")
        os.mkdir(self.locks)

    def run(self, program, report, args, env_extra=None, expect_status=None):
        """Runs `program` with the rig's flags, writing `report` (xml:... or json:...)."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("LOCKABLE_") and not k.startswith("GTEST_")}
        env.update(env_extra or {})
        argv = [program, "--lockable_resources=" + self.resources,
                "--lockable_lock_folder=" + self.locks, "--lockable_hostname=junit-host",
                "--gtest_output=" + report] + args
        done = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=120)
        if expect_status is not None and done.returncode != expect_status:
            check(False, "%s exited with %d, expected %d:\n%s"
                  % (" ".join(argv), done.returncode, expect_status, done.stdout))
        return done

    def path(self, name):
        return os.path.join(self.work, name)


def cases(xml_path, suite_name):
    report = junitparser.JUnitXml.fromfile(xml_path)
    for suite in report:
        if suite.name == suite_name:
            return suite, list(suite)
    raise AssertionError("no suite %s in %s" % (suite_name, xml_path))


def case_properties(case):
    properties = case.child(junitparser.Properties)
    return {} if properties is None else {p.name: p.value for p in properties}


def json_tests(json_path, suite_name):
    with open(json_path) as report:
        data = json.load(report)  # raises on the invalid JSON 1.12.1 can write
    for suite in data["testsuites"]:
        if suite["name"] == suite_name:
            return suite["testsuite"]
    raise AssertionError("no suite %s in %s" % (suite_name, json_path))


def check_unavailable_suite_fails(rig, program):
    env = {"E2E_REQUIREMENTS": "kind=c"}
    xml_path = rig.path("nomatch.xml")
    rig.run(program, "xml:" + xml_path, ["--gtest_filter=HeldSuite.*"], env, expect_status=1)
    suite, tests = cases(xml_path, "HeldSuite")
    check(len(tests) == 2, "HeldSuite has 2 tests, got %d" % len(tests))
    check(suite.failures == 2 and suite.skipped == 0,
          "HeldSuite counts failures=2 skipped=0, got failures=%s skipped=%s"
          % (suite.failures, suite.skipped))
    for case in tests:
        check(not case.is_passed and not case.is_skipped, case.name + " is a failure")
        results = [r for r in case.result if isinstance(r, junitparser.Failure)]
        check(len(results) == 1, case.name + " has one <failure>")
        for failure in results:
            message = failure.message or ""
            check("could not lock a device for {\"kind\":\"c\"}" in message
                  and "dev-off: offline" in message,
                  case.name + " failure message is the reason: " + message)
            check(message.split("\n")[0].split("/")[-1].startswith("fixture_program.cpp:"),
                  case.name + " failure points at the user's TEST_F: " + message)

    json_path = rig.path("nomatch.json")
    rig.run(program, "json:" + json_path, ["--gtest_filter=HeldSuite.*"], env, expect_status=1)
    for test in json_tests(json_path, "HeldSuite"):
        texts = [f.get("failure", "") for f in test.get("failures", [])]
        check(any("dev-off: offline" in t for t in texts),
              "JSON %s has the reason as its failure: %s" % (test["name"], texts))


def check_unavailable_suite_skips(rig, program):
    xml_path = rig.path("skip.xml")
    rig.run(program, "xml:" + xml_path,
            ["--gtest_filter=HeldSuite.*", "--lockable_on_unavailable=skip"],
            {"E2E_REQUIREMENTS": "kind=c"}, expect_status=0)
    _, tests = cases(xml_path, "HeldSuite")
    for case in tests:
        check(case.is_skipped, case.name + " is skipped")
        for result in case.result:
            message = result.message or ""
            check("dev-off: offline" in message, case.name + " skip has the reason: " + message)
            check(message.split("\n")[0].split("/")[-1].startswith("fixture_program.cpp:"),
                  case.name + " skip points at the user's TEST_F: " + message)


def check_allocation_on_each_test(rig, program):
    xml_path = rig.path("held.xml")
    rig.run(program, "xml:" + xml_path, ["--gtest_filter=HeldSuite.*"],
            {"E2E_REQUIREMENTS": "kind=a"}, expect_status=0)
    _, tests = cases(xml_path, "HeldSuite")
    check(len(tests) == 2, "HeldSuite has 2 tests")
    alloc_ids = set()
    for case in tests:
        check(case.is_passed, case.name + " passed")
        properties = case_properties(case)
        for key in ALLOCATION_KEYS:
            check(key in properties, "%s has property %s: %s" % (case.name, key, properties))
        check(properties.get("lockable_resource_id") == "dev-a1",
              case.name + " was on dev-a1: %s" % properties)
        check(properties.get("lockable_requirements") == '{"kind":"a"}',
              case.name + " requirements: %s" % properties)
        alloc_ids.add(properties.get("lockable_alloc_id"))
    check(len(alloc_ids) == 1, "the tests of one suite share one allocation: %s" % alloc_ids)


def check_global_device(rig, plain):
    xml_path = rig.path("global.xml")
    rig.run(plain, "xml:" + xml_path, ["--lockable_requirements=kind=b"], expect_status=0)
    _, tests = cases(xml_path, "PlainTest")
    for case in tests:
        properties = case_properties(case)
        check(properties.get("lockable_global_resource_id") == "dev-b1",
              case.name + " carries the global device: %s" % properties)

    xml_path = rig.path("noglobal.xml")
    rig.run(plain, "xml:" + xml_path, ["--lockable_requirements=kind=zzz"], expect_status=1)
    _, tests = cases(xml_path, "PlainTest")
    for case in tests:
        messages = [r.message or "" for r in case.result if isinstance(r, junitparser.Failure)]
        check(any("global environment could not lock a device" in m for m in messages),
              case.name + " fails with the global reason: %s" % messages)
    json_path = rig.path("noglobal.json")
    rig.run(plain, "json:" + json_path, ["--lockable_requirements=kind=zzz"], expect_status=1)
    for test in json_tests(json_path, "PlainTest"):
        check(test.get("failures"), "JSON %s failed" % test["name"])


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    fixture, plain = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory(prefix="lockable-junit-") as work:
        rig = Rig(work)
        check_unavailable_suite_fails(rig, fixture)
        check_unavailable_suite_skips(rig, fixture)
        check_allocation_on_each_test(rig, fixture)
        check_global_device(rig, plain)
    if failures:
        sys.exit("%d check(s) failed" % len(failures))
    print("junitparser %s read every report as a CI server would" % junitparser.version)


if __name__ == "__main__":
    main()
