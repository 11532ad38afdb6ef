#!/usr/bin/env bash
# The project's Python environment .venv/: the real clients the tests and bench/ run (the
# OpenAI SDK, Triton's tritonclient, perf_analyzer and genai-perf, Hugging Face tokenizers
# and transformers, the Qwen tokenizer files), from PyPI with the exact pins of
# tests/requirements.txt, on Debian's python3 (scripts/setup.sh installs python3-venv).
#
# perf_analyzer: PyPI's perf-analyzer wheels are built for glibc 2.38 (manylinux_2_38) and
# Debian 12 has 2.36, so pip will not install them. The wheel is unpacked into
# .venv/perf-analyzer/, and .venv/bin/perf_analyzer runs it with Debian 13's C and C++
# runtime (libc6, libstdc++6, libgcc-s1 from Debian's archive, unpacked beside it; the
# system's libraries untouched). genai-perf finds it on PATH.
#
# Idempotent: a stamp of this script and the requirements skips everything when unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

PERF_ANALYZER_VERSION=2.60.0
venv=.venv
python=${SLUICE_PYTHON:-/usr/bin/python3}
stamp=$(cat tests/requirements.txt "$0" | sha256sum | cut -c1-32)
if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.sluice-setup" 2>/dev/null)" = "$stamp" ]; then
  exit 0
fi

echo "setup: Python environment $venv (tests/requirements.txt)"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" install -r tests/requirements.txt

if [ "$(uname -m)" = x86_64 ]; then
  pa="$venv/perf-analyzer"
  rm -rf "$pa"
  "${pip[@]}" install --no-deps --only-binary=:all: --platform manylinux_2_38_x86_64 \
    --target "$pa" "perf-analyzer==$PERF_ANALYZER_VERSION"
  # Debian 13's runtime, fetched with apt from a private list (nothing installed system-wide).
  apt_dir=$(mktemp -d)
  trap 'rm -rf "$apt_dir"' EXIT
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
    > "$apt_dir/sources.list"
  apt_opts=(-q -o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
            -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o Debug::NoLocking=1
            -o APT::Architecture=amd64 -o APT::Architectures=amd64 -o APT::Sandbox::User=root)
  apt-get "${apt_opts[@]}" update >/dev/null
  (cd "$apt_dir" && apt-get "${apt_opts[@]}" download libc6 libstdc++6 libgcc-s1 >/dev/null)
  for deb in "$apt_dir"/*.deb; do dpkg-deb -x "$deb" "$pa/runtime"; done
  cat > "$venv/bin/perf_analyzer" <<'WRAPPER'
#!/bin/sh
# Triton's perf_analyzer (PyPI perf-analyzer, built for glibc 2.38) on Debian 13's runtime:
# written by scripts/setup_python.sh.
pa=$(dirname "$(readlink -f "$0")")/../perf-analyzer
rt=$pa/runtime/usr/lib/x86_64-linux-gnu
exec "$rt/ld-linux-x86-64.so.2" --library-path "$rt:/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu" \
  "$pa/perf_analyzer/bin/perf_analyzer" "$@"
WRAPPER
  chmod +x "$venv/bin/perf_analyzer"
  "$venv/bin/perf_analyzer" --version >/dev/null 2>&1
else
  echo "setup: no perf_analyzer for $(uname -m) (PyPI's wheels for Debian 12 are x86_64 here)" >&2
fi
echo "$stamp" > "$venv/.sluice-setup"
