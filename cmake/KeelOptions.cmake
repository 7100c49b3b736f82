# Compiler flags shared by every Keel target. Warnings are errors on our code only;
# third-party headers come in as SYSTEM includes and do not trip them.
add_library(keel_options INTERFACE)

# Compiler cache: with ccache installed (scripts/install-deps does), a rebuild of
# unchanged sources in a fresh checkout (CI, a second worktree) is a cache hit. Paths
# are hashed relative to the source tree, so the checkout's location does not matter.
option(KEEL_CCACHE "Compile through ccache when it is installed" ON)
find_program(KEEL_CCACHE_PROGRAM ccache)
if(KEEL_CCACHE AND KEEL_CCACHE_PROGRAM AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_CXX_COMPILER_LAUNCHER
      ${CMAKE_COMMAND} -E env CCACHE_BASEDIR=${PROJECT_SOURCE_DIR} CCACHE_MAXSIZE=12G
      CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
      CCACHE_NOHASHDIR=1 ${KEEL_CCACHE_PROGRAM})
endif()
target_compile_options(keel_options INTERFACE -Wall -Wextra -Werror -Wno-missing-field-initializers)
if(KEEL_PORTABLE)
  target_compile_options(keel_options INTERFACE -march=x86-64-v2 -mtune=generic)
else()
  target_compile_options(keel_options INTERFACE -march=native)
endif()
if(KEEL_SANITIZE)
  target_compile_options(keel_options INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(keel_options INTERFACE -fsanitize=address,undefined)
endif()
target_compile_definitions(keel_options INTERFACE KEEL_VERSION="${PROJECT_VERSION}")

# keel_add_module(NAME SOURCES... DEPS ...): one static library per module (util, store, ...).
function(keel_add_module name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(keel_${name} STATIC ${ARG_SOURCES})
  target_include_directories(keel_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(keel_${name} PUBLIC keel_options ${ARG_DEPS})
endfunction()
