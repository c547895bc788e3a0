# SPDX-License-Identifier: MIT
# Fuzz targets: decoding and handling of network input with a fake client,
# seeded from real messages and schemas. Each tests/fuzz/fuzz_<name>.c is built twice:
#  - always, with the small replay driver (driver.c), registered in CTest as
#    fuzz/<name> over its seed corpus tests/fuzz/corpus/<name>/;
#  - with -DTT_FUZZ=ON (clang only), as the libFuzzer binary fuzz_<name>_lf,
#    every library instrumented for coverage. tests/fuzz/run.sh runs them.
option(TT_FUZZ "Build libFuzzer fuzz targets (needs clang)" OFF)

set(TT_FUZZ_CORE codec schema)
set(TT_FUZZ_SERVER handler)
set(TT_FUZZ_CLIENT client)

if(TT_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "TT_FUZZ needs clang (CC=clang cmake ...)")
  endif()
  # coverage for libFuzzer in every target of this build; -O1 as OSS-Fuzz
  # builds (a Debug -O0 build under ASan ran the handler target 25 % slower)
  target_compile_options(tt_warnings INTERFACE -fsanitize=fuzzer-no-link -O1)
endif()

foreach(name ${TT_FUZZ_CORE} ${TT_FUZZ_SERVER} ${TT_FUZZ_CLIENT})
  set(src ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_${name}.c)
  if(name IN_LIST TT_FUZZ_CLIENT)
    set(lib tutti_client tt_warnings)
  elseif(name IN_LIST TT_FUZZ_SERVER)
    set(lib tutti_server)
  else()
    set(lib tutti_core)
  endif()
  add_executable(fuzz_${name} ${src} ${CMAKE_SOURCE_DIR}/tests/fuzz/driver.c)
  target_link_libraries(fuzz_${name} PRIVATE ${lib})
  add_test(NAME fuzz/${name}
    COMMAND fuzz_${name} ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/${name})
  set_tests_properties(fuzz/${name} PROPERTIES TIMEOUT 300)
  if(TT_FUZZ)
    add_executable(fuzz_${name}_lf ${src})
    target_link_libraries(fuzz_${name}_lf PRIVATE ${lib})
    target_link_options(fuzz_${name}_lf PRIVATE -fsanitize=fuzzer)
  endif()
endforeach()
