# SPDX-License-Identifier: MIT
# C/JS parity tools. Included from tests/tests.cmake, so paths are relative
# to the source root. coerce_replay runs the server's value coercion for
# coerce.test.mjs, which finds it in TUTTI_BUILD.
add_executable(coerce_replay ${CMAKE_SOURCE_DIR}/tests/parity/coerce_replay.c)
target_link_libraries(coerce_replay PRIVATE tutti_core)
