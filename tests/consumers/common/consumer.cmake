# The same consumer code and checks for every way of getting lockable.
set(sample_resources "${CMAKE_CURRENT_LIST_DIR}/../../../sample_resources/resources.json")
set(lock_folder "${CMAKE_BINARY_DIR}/locks")

add_executable(consumer_app "${CMAKE_CURRENT_LIST_DIR}/app.cpp")
target_link_libraries(consumer_app PRIVATE lockable::lockable)

enable_testing()
add_test(NAME consumer_app COMMAND consumer_app "${sample_resources}" "${lock_folder}")

if(TARGET lockable::gtest_main)
  # An unmodified GoogleTest program gets a device for its whole run from flags alone.
  add_executable(consumer_suite "${CMAKE_CURRENT_LIST_DIR}/suite.cpp")
  target_link_libraries(consumer_suite PRIVATE lockable::gtest_main)
  add_test(NAME consumer_suite COMMAND consumer_suite
    "--lockable_resources=${sample_resources}" "--lockable_lock_folder=${lock_folder}"
    "--lockable_hostname=localhost" "--lockable_requirements=type=power_switch")
  set_tests_properties(consumer_suite PROPERTIES PASS_REGULAR_EXPRESSION "power-switch-01")
endif()

if(TARGET lockable::gtest_main AND COMMAND lockable_discover_tests)
  # lockable_discover_tests() from the user's directory, whichever way lockable came in;
  # check_consumer.cmake asserts that ctest lists these tests once, with both labels, and that
  # they pass.
  add_executable(consumer_hw_tests "${CMAKE_CURRENT_LIST_DIR}/hw_tests.cpp")
  target_link_libraries(consumer_hw_tests PRIVATE lockable::gtest_main)
  lockable_discover_tests(consumer_hw_tests
    RESOURCES "${sample_resources}"
    HOSTNAME localhost
    LOCK_FOLDER "${lock_folder}"
    TIMEOUT 60
    LABELS hardware android)
elseif(TARGET lockable::gtest_main)
  message(FATAL_ERROR "lockable::gtest_main exists but lockable_discover_tests() does not")
endif()
