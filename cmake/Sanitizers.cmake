# Sanitizer builds (scripts/test_sanitizers.sh): SLUICE_SANITIZE is a -fsanitize= list,
# "address,undefined" or "thread", applied to the compile and link of every target (the
# generated protobuf code too), so the sluice and sluice-stub binaries that the integration
# tests start are sanitized as well. Sanitizer builds are CPU-only: CUDA is forced off.
set(SLUICE_SANITIZE "" CACHE STRING "Sanitizers to build with: '', 'address,undefined' or 'thread'")

if(SLUICE_SANITIZE)
  if(SLUICE_SANITIZE MATCHES "thread" AND SLUICE_SANITIZE MATCHES "address")
    message(FATAL_ERROR "SLUICE_SANITIZE='${SLUICE_SANITIZE}': thread and address cannot be combined")
  endif()
  set(SLUICE_CUDA OFF CACHE STRING "Build the CUDA device: ON, OFF or AUTO" FORCE)
  add_compile_options(-fsanitize=${SLUICE_SANITIZE} -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${SLUICE_SANITIZE})
  if(SLUICE_SANITIZE MATCHES "undefined")
    # A UBSan finding fails the test that triggers it instead of printing and going on.
    add_compile_options(-fno-sanitize-recover=all)
    add_link_options(-fno-sanitize-recover=all)
  endif()
  message(STATUS "Sluice sanitizers: ${SLUICE_SANITIZE}")
endif()

# Clang checks the GUARDED_BY / REQUIRES annotations (STYLE.md 14); with SLUICE_WERROR on
# (scripts/build.sh, CI) a violation fails the build.
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  add_compile_options(-Wthread-safety)
endif()
