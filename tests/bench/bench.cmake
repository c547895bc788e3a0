# SPDX-License-Identifier: MIT
# tutti-bench, the load generator that measures the server, and its CTest
# entries.
# Included from tests/tests.cmake; paths are relative to CMAKE_SOURCE_DIR.
add_executable(tutti-bench ${CMAKE_SOURCE_DIR}/tests/bench/bench.c)
target_link_libraries(tutti-bench PRIVATE tutti_core m)

# Every scenario once at a tiny size: the JSON lines must parse and report no
# gap. Never timed: speed is measured by hand (RESULTS.md), not asserted.
add_test(NAME bench/smoke
  COMMAND ${CMAKE_COMMAND}
    -DBENCH=$<TARGET_FILE:tutti-bench>
    -DSERVER=$<TARGET_FILE:tutti-server>
    -P ${CMAKE_SOURCE_DIR}/tests/bench/smoke.cmake)
set_tests_properties(bench/smoke PROPERTIES TIMEOUT 300 RESOURCE_LOCK bench)

# Bounded memory under a slow consumer: the client that stops
# reading is cut, the others see every update, the server's RSS stays flat.
add_test(NAME bench/slow-consumer
  COMMAND tutti-bench slow_consumer --server $<TARGET_FILE:tutti-server>
    --max-queue 1048576 --payload 1024 --duration 3 --subs 3 --no-pin)
set_tests_properties(bench/slow-consumer PROPERTIES TIMEOUT 120 RESOURCE_LOCK bench)
if(TT_ASAN)
  # ASan keeps freed blocks in a 256 MB quarantine, which alone breaks the
  # RSS bound; measured with a 1 MB quarantine the growth is ~17 MB.
  set_tests_properties(bench/slow-consumer PROPERTIES
    ENVIRONMENT "ASAN_OPTIONS=quarantine_size_mb=1")
endif()
