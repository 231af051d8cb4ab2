# Warnings and sanitizers for lockable's own targets only; never forced on consumers.
function(lockable_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
                                           -Wno-sign-conversion)
  if(CMAKE_UNITY_BUILD AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # A unity batch #includes the .cpp files, so GCC takes a class of one file holding a type
    # from that file's anonymous namespace for a header's class (a false alarm there).
    target_compile_options(${target} PRIVATE -Wno-subobject-linkage)
  endif()
  if(LOCKABLE_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(LOCKABLE_SANITIZE)
    # Test code is instrumented unless LOCKABLE_SANITIZE_TEST_CODE is OFF: AddressSanitizer and
    # UBSan nearly double the compile time of a test file, while what they are there to check is
    # the library, the plugin and the CLI, which stay instrumented. A test program still links the
    # runtime, so its every allocation and leak is checked all the same. ThreadSanitizer needs
    # every thread's code instrumented: keep the option ON with it.
    if(LOCKABLE_SANITIZE_TEST_CODE OR NOT lockable_directory_holds_test_code)
      target_compile_options(${target} PRIVATE -fsanitize=${LOCKABLE_SANITIZE}
                                               -fno-omit-frame-pointer -fno-sanitize-recover=all)
    endif()
    target_link_options(${target} PRIVATE -fsanitize=${LOCKABLE_SANITIZE})
  endif()
endfunction()
