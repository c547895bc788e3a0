# SPDX-License-Identifier: MIT
# Clock-sync estimator tests. Included from tests/tests.cmake, so
# paths are relative to the source root. shared/sync.c is compiled into the
# test itself (not linked from tutti_core) so this works whether or not the
# core library lists it; the test needs nothing else from the core.
add_executable(test_sync ${CMAKE_SOURCE_DIR}/tests/sync/test_sync.c
  ${CMAKE_SOURCE_DIR}/shared/sync.c)
target_include_directories(test_sync PRIVATE ${CMAKE_SOURCE_DIR}/shared)
target_link_libraries(test_sync PRIVATE tt_warnings PkgConfig::CMOCKA m)
add_test(NAME unit/sync COMMAND test_sync)
set_tests_properties(unit/sync PROPERTIES TIMEOUT 120)

# Replays a ping/pong trace through the C estimator for 04-parity.test.mjs
# (which finds it in TUTTI_BUILD).
add_executable(sync_replay ${CMAKE_SOURCE_DIR}/tests/sync/sync_replay.c
  ${CMAKE_SOURCE_DIR}/shared/sync.c)
target_include_directories(sync_replay PRIVATE ${CMAKE_SOURCE_DIR}/shared)
target_link_libraries(sync_replay PRIVATE tt_warnings m)
