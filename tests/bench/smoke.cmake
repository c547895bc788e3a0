# SPDX-License-Identifier: MIT
# bench/smoke: run every scenario of tutti-bench once at a tiny size and check
# its JSON lines: each parses, each scenario is there, ok is true, no gap.
cmake_minimum_required(VERSION 3.19) # string(JSON)
# cmake -DBENCH=... -DSERVER=... -P smoke.cmake
execute_process(
  COMMAND ${BENCH} all --server ${SERVER} --no-pin --subs 5 --duration 1 --warmup 0.5
          --conns 20 --history 50 --joins 2 --rate 200
  OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
message(STATUS "tutti-bench stderr:\n${err}")
message(STATUS "tutti-bench stdout:\n${out}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "tutti-bench exited with ${rc}")
endif()
string(REGEX REPLACE "\n$" "" out "${out}")
string(REPLACE "\n" ";" lines "${out}")
set(seen "")
foreach(line IN LISTS lines)
  string(JSON scenario ERROR_VARIABLE jerr GET "${line}" scenario)
  if(jerr)
    message(FATAL_ERROR "not a JSON line: ${line} (${jerr})")
  endif()
  list(APPEND seen ${scenario})
  string(JSON ok GET "${line}" ok)
  if(NOT ok)
    message(FATAL_ERROR "${scenario}: ok is false: ${line}")
  endif()
  foreach(field gaps out_of_order)
    string(JSON v ERROR_VARIABLE nofield GET "${line}" ${field})
    if(NOT nofield AND NOT v EQUAL 0)
      message(FATAL_ERROR "${scenario}: ${field} = ${v}")
    endif()
  endforeach()
endforeach()
foreach(s fanout open_loop late_join connections hooked write_floor)
  if(NOT s IN_LIST seen)
    message(FATAL_ERROR "no JSON line for scenario ${s}")
  endif()
endforeach()
