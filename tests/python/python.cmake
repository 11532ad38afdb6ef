# Tests written against the real clients in Python (tests/python/test_*.py): each file is one
# CTest test, run by the project's virtual environment (.venv/, made by scripts/setup.sh from
# tests/requirements.txt). A missing environment fails the tests, it never skips them.
set(SLUICE_VENV_PYTHON ${PROJECT_SOURCE_DIR}/.venv/bin/python)
file(GLOB python_tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/test_*.py)
foreach(f ${python_tests})
  get_filename_component(stem ${f} NAME_WE)
  add_test(NAME python.${stem}
    COMMAND ${SLUICE_VENV_PYTHON} -m pytest -q -p no:cacheprovider -rfE ${f})
  set_tests_properties(python.${stem} PROPERTIES
    LABELS "integration;python"
    ENVIRONMENT "SLUICE_BINARY_DIR=${PROJECT_BINARY_DIR};SLUICE_SOURCE_DIR=${PROJECT_SOURCE_DIR};PATH=${PROJECT_SOURCE_DIR}/.venv/bin:$ENV{PATH};HF_HUB_OFFLINE=1;TRANSFORMERS_OFFLINE=1;NO_PROXY=127.0.0.1,localhost")
endforeach()
