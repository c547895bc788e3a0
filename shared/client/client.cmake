# SPDX-License-Identifier: MIT
# libtutti-client (shared/client/) and its install: the static library
# libtutti-client.a (the client and the core of shared/ it needs, built
# position-independent so it can go into a plugin), the public headers under
# include/tutti/, and tutti-client.pc. Included from the top CMakeLists.txt.
find_package(Threads REQUIRED)

set(TT_CLIENT_SOURCES
  ${CMAKE_SOURCE_DIR}/shared/client/client.c
  ${CMAKE_SOURCE_DIR}/shared/client/clock.c
  ${CMAKE_SOURCE_DIR}/shared/client/transport.c)
# The core sources again: an installed client must not need the server
# build's tutti_core, and one archive is simplest for users.
set(TT_CLIENT_CORE
  common.c arena.c buf.c value.c codec.c json.c schema.c sync.c)
list(TRANSFORM TT_CLIENT_CORE PREPEND ${CMAKE_SOURCE_DIR}/shared/)

add_library(tutti_client STATIC ${TT_CLIENT_SOURCES} ${TT_CLIENT_CORE})
set_target_properties(tutti_client PROPERTIES
  OUTPUT_NAME tutti-client POSITION_INDEPENDENT_CODE ON)
target_include_directories(tutti_client PUBLIC
  $<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}/shared/client>
  $<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}/shared>)
target_link_libraries(tutti_client
  PUBLIC PkgConfig::MSGPACK PkgConfig::JANSSON PkgConfig::LWS Threads::Threads m
  PRIVATE tt_warnings)

include(GNUInstallDirs)
set(TT_PC_PREFIX ${CMAKE_INSTALL_PREFIX})
configure_file(${CMAKE_SOURCE_DIR}/shared/client/tutti-client.pc.in
  ${CMAKE_BINARY_DIR}/tutti-client.pc @ONLY)
install(TARGETS tutti_client ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES
  ${CMAKE_SOURCE_DIR}/shared/client/tutti_client.h
  ${CMAKE_SOURCE_DIR}/shared/value.h ${CMAKE_SOURCE_DIR}/shared/arena.h
  ${CMAKE_SOURCE_DIR}/shared/common.h ${CMAKE_SOURCE_DIR}/shared/schema.h
  ${CMAKE_SOURCE_DIR}/shared/buf.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/tutti)
install(FILES ${CMAKE_BINARY_DIR}/tutti-client.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
