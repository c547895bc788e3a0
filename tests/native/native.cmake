# SPDX-License-Identifier: MIT
# Native client tests: the C library against the real server
# (native_client_test, driven by client.test.mjs and resume.test.mjs), the
# `tutti` tool, the tutti-osc bridge with real OSC programs (liblo's
# oscdump/oscsend, Pure Data, SuperCollider's sclang), wss:// and the
# installed package. Included from tests/tests.cmake.
add_executable(native_client_test ${CMAKE_SOURCE_DIR}/tests/native/client_test.c)
target_link_libraries(native_client_test PRIVATE tutti_client tt_warnings)

# The JSON the tools print and read (cmocka).
add_executable(test_json_dump ${CMAKE_SOURCE_DIR}/tests/native/test_json_dump.c)
target_link_libraries(test_json_dump PRIVATE tutti_core PkgConfig::CMOCKA)
add_test(NAME native/json-dump COMMAND test_json_dump)

find_program(NODE node)
if(NODE)
  file(GLOB TT_NATIVE_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/native/*.test.mjs)
  foreach(t ${TT_NATIVE_TESTS})
    get_filename_component(base ${t} NAME)
    string(REPLACE ".test.mjs" "" name "native/${base}")
    add_test(NAME ${name} COMMAND ${NODE} --test ${t} WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
    set_tests_properties(${name} PROPERTIES TIMEOUT 300
      ENVIRONMENT "TUTTI_SERVER=$<TARGET_FILE:tutti-server>;TUTTI_ROOT=${CMAKE_SOURCE_DIR};TUTTI_BUILD=${CMAKE_BINARY_DIR}")
  endforeach()
endif()
