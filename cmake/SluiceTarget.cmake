# Warnings on our own code only (generated protobuf code is exempt). As errors only where
# asked (SLUICE_WERROR: scripts/build.sh and CI turn it on): another compiler or -O level
# can warn where ours does not, and that must not stop a user's build.
option(SLUICE_WERROR "Treat warnings in Sluice's own code as errors" OFF)
if(SLUICE_WERROR)
  set(SLUICE_WARNINGS -Wall -Wextra -Werror -Wno-missing-field-initializers)
else()
  set(SLUICE_WARNINGS -Wall -Wextra -Wno-missing-field-initializers)
endif()

# sluice_library(name DIR dir [DEPS ...]): a static library of every .cc file in
# DIR (non-recursive), so that adding a file to a module needs no CMake edit.
function(sluice_library name)
  cmake_parse_arguments(ARG "" "DIR" "DEPS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${ARG_DIR}/*.cc)
  add_library(${name} STATIC ${srcs})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_compile_options(${name} PRIVATE ${SLUICE_WARNINGS})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
endfunction()

function(sluice_executable name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_compile_options(${name} PRIVATE ${SLUICE_WARNINGS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
endfunction()
