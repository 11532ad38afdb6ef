# The lifecycle checker's pure parts.
if(TARGET sluice_lifecycle_lib)
  sluice_add_test(tools_lifecycle_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/tools_lifecycle_test.cc
    DEPS sluice_lifecycle_lib LABELS unit)
endif()
