# SLUICE_FUZZ=ON (fuzz/README in the top README): every target is compiled with libFuzzer's
# coverage instrumentation (-fsanitize=fuzzer-no-link, linked the same way so that the unit
# tests of a fuzz build still link); fuzz/CMakeLists.txt then links each fuzzer with
# -fsanitize=fuzzer. Included from the top CMakeLists.txt before src/.
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "SLUICE_FUZZ=ON needs clang (libFuzzer): configure with CC=clang CXX=clang++, "
                      "not ${CMAKE_CXX_COMPILER_ID}")
endif()
add_compile_options(-fsanitize=fuzzer-no-link)
add_link_options(-fsanitize=fuzzer-no-link)
message(STATUS "Sluice fuzz targets: on")
