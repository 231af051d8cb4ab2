# cmake -DBUILD_DIR=<consumer build> -DCTEST=<ctest> -P check_consumer.cmake
# Run by ctest --build-and-test as the consumer's test command: the tests that
# lockable_discover_tests() registered exist once each, carry both labels, and pass under ctest
# (with every other test of the consumer).
set(expected ConsumerPhoneTest.HoldsAnAndroidPhone ConsumerPhoneTest.SeesItsSerial)

function(run_ctest out)
  execute_process(COMMAND "${CTEST}" --test-dir "${BUILD_DIR}" ${ARGN}
                  OUTPUT_VARIABLE output ERROR_VARIABLE output RESULT_VARIABLE status)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "ctest ${ARGN} failed (${status}):\n${output}")
  endif()
  set(${out} "${output}" PARENT_SCOPE)
endfunction()

foreach(label hardware android)
  run_ctest(listed -N -L ${label})
  if(listed MATCHES "_NOT_BUILT")
    message(FATAL_ERROR "lockable_discover_tests() found no tests (label ${label}):\n${listed}")
  endif()
  foreach(test IN LISTS expected)
    string(REGEX MATCHALL "Test +#[0-9]+: ${test}\n" found "${listed}")
    list(LENGTH found count)
    if(NOT count EQUAL 1)
      message(FATAL_ERROR "ctest -N -L ${label} lists ${test} ${count} times, want once:\n${listed}")
    endif()
  endforeach()
  if(NOT listed MATCHES "Total Tests: 2\n")
    message(FATAL_ERROR "ctest -N -L ${label} must list exactly the 2 discovered tests:\n${listed}")
  endif()
endforeach()

run_ctest(ran -L hardware --output-on-failure)
foreach(test IN LISTS expected)
  if(NOT ran MATCHES "${test} \\.+ +Passed")
    message(FATAL_ERROR "${test} did not pass:\n${ran}")
  endif()
endforeach()
run_ctest(all --output-on-failure)
message("${all}")
