# SPDX-License-Identifier: MIT
# cmocka unit tests: one executable per tests/unit/test_<module>.c, so a module
# is tested on its own, each registered in CTest as unit/<module>. Included from tests/tests.cmake,
# so paths are relative to the source root.
set(TT_UNIT_CORE value codec schema json)
set(TT_UNIT_SERVER handler)
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
