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
    target_compile_options(${target} PRIVATE -fsanitize=${LOCKABLE_SANITIZE} -fno-omit-frame-pointer
                                             -fno-sanitize-recover=all)
    target_link_options(${target} PRIVATE -fsanitize=${LOCKABLE_SANITIZE})
  endif()
endfunction()
