# SPDX-License-Identifier: MIT
# cmocka unit tests: one executable per tests/unit/test_<module>.c, each
# registered in CTest as unit/<module>. Included from tests/tests.cmake, so
# paths are relative to the source root.
set(TT_UNIT_CORE value codec schema json)
set(TT_UNIT_SERVER handler client db)
foreach(mod ${TT_UNIT_CORE} ${TT_UNIT_SERVER})
  add_executable(test_${mod} ${CMAKE_SOURCE_DIR}/tests/unit/test_${mod}.c)
  target_include_directories(test_${mod} PRIVATE ${CMAKE_SOURCE_DIR}/tests/unit)
  target_link_libraries(test_${mod} PRIVATE tutti_core PkgConfig::CMOCKA)
  if(mod IN_LIST TT_UNIT_SERVER)
    target_link_libraries(test_${mod} PRIVATE tutti_server)
  endif()
  add_test(NAME unit/${mod} COMMAND test_${mod})
  set_tests_properties(unit/${mod} PROPERTIES TIMEOUT 120
    ENVIRONMENT "TT_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
endforeach()

# The model and the schedule heap without SQLite or sockets: their own
# sources, persistence replaced by db_stub.c (rows recorded as text).
set(TT_SRV ${CMAKE_SOURCE_DIR}/server/src)
add_executable(test_store ${CMAKE_SOURCE_DIR}/tests/unit/test_store.c
  ${CMAKE_SOURCE_DIR}/tests/unit/db_stub.c
  ${TT_SRV}/store.c ${TT_SRV}/sched.c ${TT_SRV}/session.c ${TT_SRV}/history.c
  ${TT_SRV}/idmap.c ${TT_SRV}/log.c ${TT_SRV}/clock.c ${TT_SRV}/config.c
  ${TT_SRV}/secret.c ${TT_SRV}/rights.c ${TT_SRV}/roles.c)
target_link_libraries(test_store PRIVATE PkgConfig::CRYPTO)
add_executable(test_sched ${CMAKE_SOURCE_DIR}/tests/unit/test_sched.c ${TT_SRV}/sched.c)
foreach(mod store sched)
  target_include_directories(test_${mod} PRIVATE ${CMAKE_SOURCE_DIR}/tests/unit ${TT_SRV})
  target_link_libraries(test_${mod} PRIVATE tutti_core PkgConfig::CMOCKA)
  add_test(NAME unit/${mod} COMMAND test_${mod})
  set_tests_properties(unit/${mod} PROPERTIES TIMEOUT 120)
endforeach()
