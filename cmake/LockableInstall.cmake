# Install rules and the CMake package config, so that consumers can
#   find_package(lockable CONFIG REQUIRED)
#   target_link_libraries(app PRIVATE lockable::lockable)   # or lockable::gtest / lockable::gtest_main
include(CMakePackageConfigHelpers)

set(LOCKABLE_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/lockable")

set(lockable_install_targets lockable)
if(LOCKABLE_BUILD_GTEST)
  list(APPEND lockable_install_targets lockable_gtest lockable_gtest_main)
endif()

install(TARGETS ${lockable_install_targets}
  EXPORT lockableTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
if(TARGET lockable_cli)
  install(TARGETS lockable_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/lockable" DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES "${PROJECT_BINARY_DIR}/include/lockable/version.hpp"
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/lockable)
if(LOCKABLE_BUILD_GTEST)
  install(DIRECTORY "${PROJECT_SOURCE_DIR}/plugin/include/lockable" DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  install(FILES "${PROJECT_SOURCE_DIR}/cmake/LockableGTest.cmake" DESTINATION ${LOCKABLE_CMAKE_DIR})
endif()

install(EXPORT lockableTargets NAMESPACE lockable:: DESTINATION ${LOCKABLE_CMAKE_DIR})

configure_package_config_file("${PROJECT_SOURCE_DIR}/cmake/lockableConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/lockableConfig.cmake"
  INSTALL_DESTINATION ${LOCKABLE_CMAKE_DIR})
write_basic_package_version_file("${PROJECT_BINARY_DIR}/lockableConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion)
install(FILES "${PROJECT_BINARY_DIR}/lockableConfig.cmake"
              "${PROJECT_BINARY_DIR}/lockableConfigVersion.cmake"
        DESTINATION ${LOCKABLE_CMAKE_DIR})
