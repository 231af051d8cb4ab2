#!/usr/bin/python3
"""Runs the README's GoogleTest plugin, CTest and library examples exactly as written.

- "## The library": the ```cpp block becomes a program's main() and must run.
- "## The GoogleTest plugin": the first ```cpp block becomes hw_tests.cpp.
- "### CTest": the ```cmake block becomes the CMakeLists.txt of a project built against the
  installed package (with resources.json = sample_resources/resources.json next to it), and the
  `ctest ...` command quoted there runs in its build directory and must pass.
- "### What a CI server shows": the ```sh commands run from a directory laid out like the source
  tree (build/examples/sample_suite, sample_resources/), and every line of the ```xml excerpt must
  be a line of the reports they wrote, up to allocation ids, times and durations. So the excerpt
  stays what GoogleTest 1.12.1 really writes.

The sample devices name their host "localhost"; the examples leave the host and the lock folder
to the defaults, so the test sets LOCKABLE_HOSTNAME and LOCKABLE_LOCK_FOLDER (the documented
fallbacks of the flags) instead of editing the examples.

usage: readme_examples.py SOURCE_DIR INSTALL_PREFIX SAMPLE_SUITE CMAKE GENERATOR [LAUNCHER]
"""
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile


def section(text, heading):
    """The lines under `heading` up to the next heading of the same or a higher level."""
    level = heading.split(" ")[0]
    lines = text.split("\n")
    start = lines.index(heading)
    end = len(lines)
    for i in range(start + 1, len(lines)):
        match = re.match(r"^(#+) ", lines[i])
        if match and len(match.group(1)) <= len(level):
            end = i
            break
    return "\n".join(lines[start + 1:end])


def blocks(text, language):
    return re.findall(r"^```" + language + r"\n(.*?)^```", text, re.S | re.M)


def run(argv, **kwargs):
    print("+ " + " ".join(argv), flush=True)
    done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=900, **kwargs)
    print(done.stdout, flush=True)
    return done


def fail(what):
    sys.exit("readme_examples: " + what)


def normalize(line):
    line = line.strip()
    line = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<uuid>", line)
    line = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z?", "<time>", line)
    line = re.sub(r'="\d+(\.\d+)?"', '="<n>"', line)
    # Where the source tree is, and whether __FILE__ is absolute or relative (compiler caches
    # rewrite it), differ between machines: keep only the path inside the tree.
    line = re.sub(r'[^"\s;]*/(examples/[\w.]+)', r'\1', line)
    return line


def build_project(project, build, prefix, cmake, generator, launcher, env, what):
    """Configures and builds `project` against the installed package, or fails naming `what`."""
    configure = [cmake, "-S", project, "-B", build, "-G", generator,
                 "-DCMAKE_PREFIX_PATH=" + prefix]
    if launcher:
        configure.append("-DCMAKE_CXX_COMPILER_LAUNCHER=" + launcher)
    if run(configure, env=env).returncode != 0:
        fail(what + " does not configure")
    if run([cmake, "--build", build], env=env).returncode != 0:
        fail(what + " does not build")


def check_ctest_example(readme, source_dir, prefix, cmake, generator, launcher, work, env):
    plugin = section(readme, "## The GoogleTest plugin")
    cpp = blocks(plugin, "cpp")
    ctest_section = section(plugin, "### CTest")
    cmake_blocks = blocks(ctest_section, "cmake")
    commands = re.findall(r"`(ctest [^`]*)`", ctest_section)
    if not cpp or not cmake_blocks or not commands:
        fail("README lost its plugin example, CTest block or ctest command")
    project = os.path.join(work, "project")
    os.mkdir(project)
    with open(os.path.join(project, "CMakeLists.txt"), "w") as out:
        out.write("cmake_minimum_required(VERSION 3.20)\nproject(readme_example CXX)\n"
                  "enable_testing()\n" + cmake_blocks[0])
    with open(os.path.join(project, "hw_tests.cpp"), "w") as out:
        out.write(cpp[0])
    shutil.copy(os.path.join(source_dir, "sample_resources", "resources.json"), project)
    build = os.path.join(work, "project-build")
    build_project(project, build, prefix, cmake, generator, launcher, env, "the plugin example")
    ran = run(shlex.split(commands[0]), cwd=build, env=env)
    if ran.returncode != 0 or not re.search(r"100% tests passed, 0 tests failed out of [1-9]",
                                            ran.stdout):
        fail("`%s` did not pass" % commands[0])


def check_ci_excerpt(readme, source_dir, sample_suite, work, env):
    ci = section(readme, "### What a CI server shows")
    scripts = blocks(ci, "sh")
    excerpts = blocks(ci, "xml")
    if not scripts or not excerpts:
        fail("README lost the commands or the XML excerpt of 'What a CI server shows'")
    tree = os.path.join(work, "tree")
    os.makedirs(os.path.join(tree, "build", "examples"))
    os.symlink(sample_suite, os.path.join(tree, "build", "examples", "sample_suite"))
    os.symlink(os.path.join(source_dir, "sample_resources"), os.path.join(tree, "sample_resources"))
    for script in scripts:
        for command in script.replace("\\\n", " ").split("\n"):
            if command.strip() and not command.lstrip().startswith("#"):
                run(shlex.split(command, comments=True), cwd=tree, env=env)
    report_lines = set()
    for name in os.listdir(os.path.join(tree, "build")):
        if name.endswith(".xml"):
            with open(os.path.join(tree, "build", name)) as report:
                report_lines.update(normalize(line) for line in report)
    if not report_lines:
        fail("the commands of 'What a CI server shows' wrote no XML report")
    for excerpt in excerpts:
        for line in excerpt.split("\n"):
            if not line.strip() or re.fullmatch(r"\s*<!--.*-->\s*", line):
                continue
            if normalize(line) not in report_lines:
                fail("this line of the README's XML excerpt is in no report the sample "
                     "writes (after a change to the plugin or to examples/sample_suite.cpp, "
                     "run the commands above and copy the new lines):\n  %s\nnormalized:\n  %s"
                     % (line.strip(), normalize(line)))


def check_library_example(readme, prefix, cmake, generator, launcher, work, env):
    """The library section's ```cpp block, its #include lines on top and the rest as main()'s
    body, built against the installed package and run next to a resources.json that has the
    devices it asks for on this host."""
    cpp = blocks(section(readme, "## The library"), "cpp")
    if not cpp:
        fail("README lost the library example")
    lines = cpp[0].split("\n")
    includes = [line for line in lines if line.startswith("#include")]
    body = [line for line in lines if not line.startswith("#include")]
    project = os.path.join(work, "library")
    os.mkdir(project)
    with open(os.path.join(project, "main.cpp"), "w") as out:
        out.write("\n".join(includes) + "\n#include <string>\nint main() {\n" +
                  "\n".join(body) + "\n  return 0;\n}\n")
    with open(os.path.join(project, "CMakeLists.txt"), "w") as out:
        out.write("cmake_minimum_required(VERSION 3.20)\nproject(readme_library CXX)\n"
                  "find_package(lockable CONFIG REQUIRED)\n"
                  "add_executable(example main.cpp)\n"
                  "target_link_libraries(example PRIVATE lockable::lockable)\n")
    suffix = os.path.basename(work)
    host = socket.gethostname()
    with open(os.path.join(project, "resources.json"), "w") as out:
        out.write('[{"id": "readme-phone-%s", "online": true, "hostname": "%s", "os": "Android",'
                  ' "serial": "R1"},\n {"id": "readme-psu-%s", "online": true, "hostname": "%s",'
                  ' "type": "power_switch"}]\n' % (suffix, host, suffix, host))
    build = os.path.join(work, "library-build")
    build_project(project, build, prefix, cmake, generator, launcher, env, "the library example")
    if run([os.path.join(build, "example")], cwd=project, env=env).returncode != 0:
        fail("the library example does not run")


def main():
    if len(sys.argv) not in (6, 7):
        sys.exit(__doc__)
    source_dir, prefix, sample_suite, cmake, generator = sys.argv[1:6]
    launcher = sys.argv[6] if len(sys.argv) == 7 else ""
    with open(os.path.join(source_dir, "README.md")) as f:
        readme = f.read()
    with tempfile.TemporaryDirectory(prefix="lockable-readme-") as work:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("LOCKABLE_") and not k.startswith("GTEST_")}
        env["LOCKABLE_HOSTNAME"] = "localhost"
        env["LOCKABLE_LOCK_FOLDER"] = os.path.join(work, "locks")
        os.mkdir(env["LOCKABLE_LOCK_FOLDER"])
        check_ci_excerpt(readme, source_dir, sample_suite, work, env)
        check_ctest_example(readme, source_dir, prefix, cmake, generator, launcher, work, env)
        check_library_example(readme, prefix, cmake, generator, launcher, work, env)
    print("readme_examples: the plugin, CTest and library examples run as written")


if __name__ == "__main__":
    main()
