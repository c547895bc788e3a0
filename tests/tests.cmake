# SPDX-License-Identifier: MIT
# Test registration, included by the top CMakeLists.txt.
# Each suite with C code keeps its own fragment beside its sources.
foreach(part unit fuzz bench sync parity native)
  if(EXISTS ${CMAKE_SOURCE_DIR}/tests/${part}/${part}.cmake)
    include(${CMAKE_SOURCE_DIR}/tests/${part}/${part}.cmake)
  endif()
endforeach()

# Node-driven suites: each file runs against the real server binary.
# tests/cluster runs several nodes on a nats-server (Debian's, started by
# each test like the nodes): only where one is installed.
find_program(NODE node)
find_program(NATS_SERVER nats-server)
set(TT_CLUSTER_GLOB "")
if(NATS_SERVER)
  set(TT_CLUSTER_GLOB ${CMAKE_SOURCE_DIR}/tests/cluster/*.test.mjs)
endif()
if(NODE)
  file(GLOB TT_NODE_TESTS CONFIGURE_DEPENDS
    ${CMAKE_SOURCE_DIR}/tests/integration/*.test.mjs
    ${CMAKE_SOURCE_DIR}/tests/js/*.test.mjs
    ${CMAKE_SOURCE_DIR}/tests/persistence/*.test.mjs
    ${CMAKE_SOURCE_DIR}/tests/security/*.test.mjs
    ${CMAKE_SOURCE_DIR}/tests/sync/*.test.mjs
    ${CMAKE_SOURCE_DIR}/tests/parity/*.test.mjs
    ${CMAKE_SOURCE_DIR}/tests/browser/*.test.mjs
    ${CMAKE_SOURCE_DIR}/tests/install/*.test.mjs
    ${TT_CLUSTER_GLOB})
  foreach(t ${TT_NODE_TESTS})
    file(RELATIVE_PATH rel ${CMAKE_SOURCE_DIR}/tests ${t})
    string(REPLACE ".test.mjs" "" name ${rel})
    add_test(NAME ${name} COMMAND ${NODE} --test ${t}
      WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
    set_tests_properties(${name} PROPERTIES TIMEOUT 300
      ENVIRONMENT "TUTTI_SERVER=$<TARGET_FILE:tutti-server>;TUTTI_ROOT=${CMAKE_SOURCE_DIR};TUTTI_BUILD=${CMAKE_BINARY_DIR}")
    # one Chromium at a time: the browser suite, and any other file that starts one
    file(STRINGS ${t} starts_chromium LIMIT_COUNT 1 REGEX "from 'playwright-core'")
    if(name MATCHES "^browser/" OR starts_chromium)
      set_tests_properties(${name} PROPERTIES RESOURCE_LOCK browser)
    endif()
    # the clock's accuracy goals are measured: alone, not beside a suite
    # that keeps both cores busy
    if(name MATCHES "^sync/0[1-5]")
      set_tests_properties(${name} PROPERTIES RUN_SERIAL TRUE)
    endif()
  endforeach()
endif()

# A suite file again with NATS JetStream (a nats-server of Debian's per
# test site, started by the test), under the name NAME, ENV added.
function(tt_nats_test name file env)
  add_test(NAME ${name} COMMAND ${NODE} --test ${file} WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(${name} PROPERTIES TIMEOUT 300
    ENVIRONMENT "${env};TUTTI_SERVER=$<TARGET_FILE:tutti-server>;TUTTI_ROOT=${CMAKE_SOURCE_DIR};TUTTI_BUILD=${CMAKE_BINARY_DIR}")
endfunction()

if(NODE AND NATS_SERVER)
  # the persistence suite with JetStream as the store of record (--engine)
  # instead of SQLite: the files that do not look into the SQLite file
  foreach(name 01-restart 02-durability-kill9 03-late-join-history 04-resume
               07-scheduled-restart 09-goodbye-downtime)
    tt_nats_test(nats/persistence/${name} ${CMAKE_SOURCE_DIR}/tests/persistence/${name}.test.mjs
      TUTTI_TEST_ENGINE=nats)
  endforeach()
  # the JS client's suites against three nodes on one nats-server
  # (TUTTI_TEST_CLUSTER=3: tests/lib/server.mjs starts them for each server
  # a suite asks for, and its clients connect to the nodes in turn); not
  # package, which packs the npm package and starts no server
  file(GLOB TT_JS_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/js/*.test.mjs)
  foreach(t ${TT_JS_TESTS})
    get_filename_component(base ${t} NAME)
    string(REPLACE ".test.mjs" "" base ${base})
    if(NOT base STREQUAL "package")
      tt_nats_test(cluster/js/${base} ${t} TUTTI_TEST_CLUSTER=3)
    endif()
  endforeach()
endif()
