# SPDX-License-Identifier: MIT
# The tools built on libtutti-client: `tutti` (command line) and `tutti-osc`
# (the OSC bridge, on liblo). Included from the top CMakeLists.txt.
pkg_check_modules(LIBLO REQUIRED IMPORTED_TARGET liblo)

add_executable(tutti ${CMAKE_SOURCE_DIR}/shared/tools/tutti.c)
target_link_libraries(tutti PRIVATE tutti_client tt_warnings)

add_executable(tutti-osc ${CMAKE_SOURCE_DIR}/shared/tools/tutti-osc.c)
target_link_libraries(tutti-osc PRIVATE tutti_client tt_warnings PkgConfig::LIBLO)

install(TARGETS tutti tutti-osc RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
