# lockable_discover_tests(): register a GoogleTest program that uses lockable with CTest.
#
#   lockable_discover_tests(<target>
#     [REQUIREMENTS <req>]        # lock one device for each test process (--lockable_requirements)
#     [RESOURCES <file>]          # resources.json (relative: to CMAKE_CURRENT_SOURCE_DIR)
#     [TIMEOUT <seconds>]         # how long a test waits for a busy device (--lockable_timeout)
#     [LOCK_FOLDER <dir>]         # --lockable_lock_folder (relative: to CMAKE_CURRENT_BINARY_DIR)
#     [HOSTNAME <name>]           # --lockable_hostname
#     [ON_UNAVAILABLE fail|skip]  # --lockable_on_unavailable
#     [LABELS <label>...]         # ctest labels, for `ctest -L <label>`
#     [RESOURCE_GROUPS <groups>]  # CTest resource groups, e.g. "devices:1" (see below)
#     [EXTRA_ARGS <arg>...]       # more arguments for every test
#     [TEST_LIST <var>]           # as gtest_discover_tests (default <target>_TESTS)
#     [TEST_PREFIX ..] [TEST_SUFFIX ..] [TEST_FILTER ..] [WORKING_DIRECTORY ..] [PROPERTIES ..]
#     [XML_OUTPUT_DIR ..] [DISCOVERY_MODE ..] [DISCOVERY_TIMEOUT ..] [NO_PRETTY_TYPES]
#     [NO_PRETTY_VALUES]         # passed on to gtest_discover_tests unchanged
#   )
#
# Tests are discovered with gtest_discover_tests(), so CTest runs ONE GoogleTest test per process:
# a suite deriving from lockable::gtest::LockableTest then locks its device once per test process
# (not once per suite), and REQUIREMENTS lock a device for each test process. That is what lets
# `ctest -j N` spread tests over N devices; the lock is never shared between processes. The
# --lockable_* flags are passed as EXTRA_ARGS (visible in `ctest -V`); a requirement text holding
# `;` cannot travel through a CMake list: use the key=value form with `&` or set
# LOCKABLE_REQUIREMENTS in the ENVIRONMENT property instead.
#
# LABELS work around CMake 3.25's gtest_discover_tests(), which flattens list-valued PROPERTIES
# (`LABELS "a;b"` would mangle every property after it): the labels are set from a file in the
# directory's TEST_INCLUDE_FILES, which CTest reads after the discovered tests.
#
# RESOURCE_GROUPS lets CTest schedule tests by device: with a spec file from `lockable ctest-spec`
# (`ctest -j N --resource-spec-file spec.json`), CTest never starts more tests than there are
# devices, and each test locks exactly the device CTest assigned it (CTEST_RESOURCE_GROUP_*),
# still through the lock backend. Give one group per device a test process locks
# ("2,devices:1" for a suite of two devices). Set like LABELS, from an include file.
#
# Link the program with lockable::gtest_main (or call lockable::gtest::init() from your main) so
# the --lockable_* flags are understood; link one main only (never GTest::gtest_main as well).
include_guard(GLOBAL)
include(GoogleTest)
# gtest_discover_tests() runs the script named by _GOOGLETEST_DISCOVER_TESTS_SCRIPT, a variable
# that include(GoogleTest) sets only in the directory that included it. With add_subdirectory()
# or FetchContent, that is lockable's own directory, and a call from the user's directory would
# get `-P ""` (tests `<target>_NOT_BUILT`). Keep the path where every directory can read it.
set_property(GLOBAL PROPERTY LOCKABLE_GOOGLETEST_ADD_TESTS_SCRIPT
                             "${_GOOGLETEST_DISCOVER_TESTS_SCRIPT}")

function(lockable_discover_tests target)
  # gtest_discover_tests' own keywords are listed too, so that they end a LABELS or EXTRA_ARGS
  # list instead of being swallowed by it; they are passed on unchanged.
  set(gtest_options NO_PRETTY_TYPES NO_PRETTY_VALUES)
  set(gtest_one_value TEST_PREFIX TEST_SUFFIX WORKING_DIRECTORY DISCOVERY_TIMEOUT XML_OUTPUT_DIR
                      DISCOVERY_MODE)
  set(gtest_multi_value PROPERTIES TEST_FILTER)
  cmake_parse_arguments(PARSE_ARGV 1 arg "${gtest_options}"
    "REQUIREMENTS;RESOURCES;TIMEOUT;LOCK_FOLDER;HOSTNAME;ON_UNAVAILABLE;TEST_LIST;RESOURCE_GROUPS;${gtest_one_value}"
    "LABELS;EXTRA_ARGS;${gtest_multi_value}")
  if(NOT TARGET ${target})
    message(FATAL_ERROR "lockable_discover_tests: ${target} is not a target; call it after "
                        "add_executable(${target} ...)")
  endif()

  set(flags "")
  if(DEFINED arg_REQUIREMENTS AND NOT arg_REQUIREMENTS STREQUAL "")
    list(APPEND flags "--lockable_requirements=${arg_REQUIREMENTS}")
  endif()
  if(arg_RESOURCES)
    get_filename_component(resources "${arg_RESOURCES}" ABSOLUTE
                           BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    list(APPEND flags "--lockable_resources=${resources}")
  endif()
  if(DEFINED arg_TIMEOUT AND NOT arg_TIMEOUT STREQUAL "")
    if(NOT arg_TIMEOUT MATCHES "^[0-9]+(\\.[0-9]*)?$")
      message(FATAL_ERROR "lockable_discover_tests(${target}): TIMEOUT must be a number of "
                          "seconds, e.g. 30 or 0.5, found \"${arg_TIMEOUT}\"")
    endif()
    list(APPEND flags "--lockable_timeout=${arg_TIMEOUT}")
  endif()
  if(arg_LOCK_FOLDER)
    get_filename_component(lock_folder "${arg_LOCK_FOLDER}" ABSOLUTE
                           BASE_DIR "${CMAKE_CURRENT_BINARY_DIR}")
    list(APPEND flags "--lockable_lock_folder=${lock_folder}")
  endif()
  if(arg_HOSTNAME)
    list(APPEND flags "--lockable_hostname=${arg_HOSTNAME}")
  endif()
  if(arg_ON_UNAVAILABLE)
    if(NOT arg_ON_UNAVAILABLE MATCHES "^(fail|skip)$")
      message(FATAL_ERROR "lockable_discover_tests(${target}): ON_UNAVAILABLE must be fail or "
                          "skip, found \"${arg_ON_UNAVAILABLE}\"")
    endif()
    list(APPEND flags "--lockable_on_unavailable=${arg_ON_UNAVAILABLE}")
  endif()

  if(arg_TEST_LIST)
    set(test_list "${arg_TEST_LIST}")
  else()
    set(test_list "${target}_TESTS")
  endif()

  set(forward ${arg_UNPARSED_ARGUMENTS})
  foreach(option IN LISTS gtest_options)
    if(arg_${option})
      list(APPEND forward ${option})
    endif()
  endforeach()
  foreach(keyword IN LISTS gtest_one_value)
    if(DEFINED arg_${keyword})
      list(APPEND forward ${keyword} "${arg_${keyword}}")
    endif()
  endforeach()
  foreach(keyword IN LISTS gtest_multi_value)
    if(DEFINED arg_${keyword})
      list(APPEND forward ${keyword} ${arg_${keyword}})
    endif()
  endforeach()

  if(NOT _GOOGLETEST_DISCOVER_TESTS_SCRIPT)
    # Function scope: gtest_discover_tests() reads it from its caller, this function.
    get_property(_GOOGLETEST_DISCOVER_TESTS_SCRIPT GLOBAL
                 PROPERTY LOCKABLE_GOOGLETEST_ADD_TESTS_SCRIPT)
  endif()
  gtest_discover_tests(${target}
    EXTRA_ARGS ${flags} ${arg_EXTRA_ARGS}
    TEST_LIST ${test_list}
    ${forward})

  if(DEFINED arg_RESOURCE_GROUPS AND NOT arg_RESOURCE_GROUPS MATCHES
     "^([0-9]+,)?[a-z_][a-z0-9_]*:[0-9]+(,[a-z_][a-z0-9_]*:[0-9]+)*(;([0-9]+,)?[a-z_][a-z0-9_]*:[0-9]+(,[a-z_][a-z0-9_]*:[0-9]+)*)*$")
    message(FATAL_ERROR "lockable_discover_tests(${target}): RESOURCE_GROUPS must be CTest's "
                        "form, e.g. \"devices:1\" or \"2,devices:1\", found \"${arg_RESOURCE_GROUPS}\"")
  endif()
  if(arg_RESOURCE_GROUPS)
    get_property(count TARGET ${target} PROPERTY LOCKABLE_GROUPS_FILE_COUNTER)
    if(NOT count)
      set(count 0)
    endif()
    math(EXPR count "${count} + 1")
    set_property(TARGET ${target} PROPERTY LOCKABLE_GROUPS_FILE_COUNTER ${count})
    set(groups_file "${CMAKE_CURRENT_BINARY_DIR}/${target}_lockable_resource_groups_${count}.cmake")
    file(WRITE "${groups_file}"
      "# Written by lockable_discover_tests(${target}); read by ctest after the discovered tests.\n"
      "if(NOT \"\${${test_list}}\" STREQUAL \"\")\n"
      "  set_tests_properties(\${${test_list}} PROPERTIES RESOURCE_GROUPS [==[${arg_RESOURCE_GROUPS}]==])\n"
      "endif()\n")
    set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${groups_file}")
  endif()

  if(arg_LABELS)
    # One file per call, so two calls for one target do not overwrite each other's labels.
    get_property(count TARGET ${target} PROPERTY LOCKABLE_LABEL_FILE_COUNTER)
    if(NOT count)
      set(count 0)
    endif()
    math(EXPR count "${count} + 1")
    set_property(TARGET ${target} PROPERTY LOCKABLE_LABEL_FILE_COUNTER ${count})
    set(labels_file "${CMAKE_CURRENT_BINARY_DIR}/${target}_lockable_labels_${count}.cmake")
    file(WRITE "${labels_file}"
      "# Written by lockable_discover_tests(${target}); read by ctest after the discovered tests.\n"
      "if(NOT \"\${${test_list}}\" STREQUAL \"\")\n"
      "  set_tests_properties(\${${test_list}} PROPERTIES LABELS [==[${arg_LABELS}]==])\n"
      "endif()\n")
    # Appended after gtest_discover_tests' own include file, so ${test_list} is set by then.
    set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${labels_file}")
  endif()
endfunction()
