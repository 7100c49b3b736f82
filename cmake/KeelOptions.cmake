# Compiler flags shared by every Keel target. Warnings are errors on our code only;
# third-party headers come in as SYSTEM includes and do not trip them.
add_library(keel_options INTERFACE)
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
