#!/usr/bin/env bash
# The sluice .deb in a clean Debian 12: a minbase root made with debootstrap, the package
# installed inside it with apt-get (so that its dependencies resolve from Debian's archive),
# then the installed server run as the package's sluice user with the flags of
# /etc/default/sluice (the demo repository) on free loopback ports: /v2/health/ready, one
# Triton generate and one OpenAI chat request, SIGTERM, exit 0 with no stub left; then the
# same from deploy/Containerfile's steps (its RUN lines in the root, its command as its USER).
#
#   scripts/test_deb_clean_root.sh [path/to/sluice_*.deb]
#
# Without an argument the package is built first from the committed tree (git archive HEAD):
# a Release build without tests or CUDA in build-package/, then cpack -G DEB
# (packaging/README.md). Needs root (debootstrap, chroot,
# mounts) and Debian's archive; takes minutes. The minbase root is cached as a tarball
# ($SLUICE_CLEAN_ROOT_CACHE, default /var/cache/sluice-test/bookworm-minbase.tar.gz) and
# unpacked fresh for every run. Results: packaging/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."

mirror=${SLUICE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
cache=${SLUICE_CLEAN_ROOT_CACHE:-/var/cache/sluice-test/bookworm-minbase.tar.gz}
step() { printf '\n== %s (%ds)\n' "$*" "$SECONDS"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "run as root (debootstrap, chroot and mounts need it)"
command -v debootstrap >/dev/null || apt-get install -y debootstrap >/dev/null
command -v curl >/dev/null || apt-get install -y curl >/dev/null

deb=${1:-}
if [ -z "$deb" ]; then
  # What is committed, not the working tree: build-package/source is HEAD's tree. Warnings
  # stay warnings for GCC 12's -Wrestrict false positives at -O3.
  step "build the package from HEAD $(git rev-parse --short HEAD) (build-package/, Release, no tests, no CUDA)"
  rm -rf build-package/source && mkdir -p build-package/source
  git archive HEAD | tar -x -C build-package/source
  cmake -S build-package/source -B build-package/build -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DSLUICE_BUILD_TESTS=OFF -DSLUICE_CUDA=OFF -DCMAKE_INSTALL_PREFIX=/usr \
    -DCMAKE_CXX_FLAGS=-Wno-error=restrict >/dev/null
  ninja -C build-package/build
  rm -f build-package/build/sluice_*.deb
  (cd build-package/build && cpack -G DEB >/dev/null)
  deb=$(ls build-package/build/sluice_*.deb)
fi
deb=$(readlink -f "$deb")
[ -f "$deb" ] || fail "no package at $deb"
echo "package: $deb ($(du -h "$deb" | cut -f1))"
dpkg-deb --field "$deb" Package Version Depends

root=$(mktemp -d /var/tmp/sluice-clean-root.XXXXXX)
chmod 755 "$root"  # the root directory of the system: mktemp made it 0700
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill -KILL "$server_pid" 2>/dev/null || true; fi
  for m in proc dev/pts dev; do umount -l "$root/$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$root"
}
trap cleanup EXIT

if [ -f "$cache" ]; then
  step "unpack the cached minbase root ($cache)"
  tar -xzf "$cache" -C "$root"
else
  step "debootstrap --variant=minbase bookworm"
  debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null
  mkdir -p "$(dirname "$cache")"
  tar -czf "$cache.tmp" -C "$root" . && mv "$cache.tmp" "$cache"
fi
if chroot "$root" dpkg -s sluice >/dev/null 2>&1; then fail "the clean root already has sluice"; fi

mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
cp /etc/resolv.conf "$root/etc/resolv.conf"
cp "$deb" "$root/tmp/"

step "apt-get install ./$(basename "$deb") in the clean root"
chroot "$root" apt-get update -q >/dev/null
chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  "/tmp/$(basename "$deb")" > "$root/tmp/apt.log" || { tail -40 "$root/tmp/apt.log"; fail "apt-get install"; }
grep -E "^(Setting up|The following NEW packages)" "$root/tmp/apt.log" | sed 's/^/  /' | head -5
echo "  $(grep -c '^Setting up' "$root/tmp/apt.log") packages set up"

step "the installed layout"
for f in /usr/bin/sluice /usr/lib/sluice/sluice-stub /usr/bin/sluice-bench /usr/bin/sluice-lifecycle \
         /usr/lib/systemd/system/sluice.service /etc/default/sluice \
         /usr/share/sluice/examples/sluice-demo/config.pbtxt; do
  [ -e "$root$f" ] || fail "$f is not installed"
done
chroot "$root" getent passwd sluice >/dev/null || fail "postinst made no sluice user"
[ -L "$root/etc/systemd/system/multi-user.target.wants/sluice.service" ] || fail "postinst did not enable sluice.service"
[ "$(chroot "$root" stat -c %U /var/lib/sluice/models)" = sluice ] || fail "/var/lib/sluice/models is not the sluice user's"
chroot "$root" /usr/bin/sluice --help >/dev/null || fail "sluice --help: a library is missing?"
if command -v systemd-analyze >/dev/null; then
  # The unit as installed, checked by the host's systemd (the minbase root has none), with
  # its ExecStart pointed at the root's binary: syntax, options, and that the command exists.
  unit_dir=$(mktemp -d)
  sed "s|^ExecStart=/usr/bin/sluice|ExecStart=$root/usr/bin/sluice|" \
    "$root/usr/lib/systemd/system/sluice.service" > "$unit_dir/sluice.service"
  if ! systemd-analyze verify "$unit_dir/sluice.service" > "$unit_dir/verify.log" 2>&1; then
    cat "$unit_dir/verify.log"; rm -rf "$unit_dir"; fail "systemd-analyze verify sluice.service"
  fi
  sed 's/^/  verify: /' "$unit_dir/verify.log"
  rm -rf "$unit_dir"
  echo "  systemd-analyze verify sluice.service: ok"
fi
echo "  ok"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_server LOG COMMAND...: runs COMMAND (a chroot into the root) with free ports appended,
# waits for /v2/health/ready; sets server_pid and url.
start_server() {
  local log=$1; shift
  local http grpc metrics
  http=$(free_port); grpc=$(free_port); metrics=$(free_port)
  "$@" --http-port "$http" --grpc-port "$grpc" --metrics-port "$metrics" --exit-timeout-secs 10 \
    > "$log" 2>&1 &
  server_pid=$!
  url=http://127.0.0.1:$http
  for _ in $(seq 600); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/v2/health/ready")" = 200 ] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$log"; fail "sluice exited at start"; }
    sleep 0.2
  done
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/v2/health/ready")" = 200 ] || {
    tail -20 "$log"; fail "/v2/health/ready is not 200"; }
  echo "  /v2/health/ready: 200 on port $http after ${SECONDS}s"
  curl -sf "$url/v2/repository/index" -X POST | python3 -c \
    'import json,sys; print("  index:", ", ".join(m["name"] + " " + m["state"] for m in json.load(sys.stdin)))'
}

# query_demo: one Triton generate and one OpenAI chat request on sluice-demo.
query_demo() {
  local gen chat
  gen=$(curl -sf "$url/v2/models/sluice-demo/generate" \
    -d '{"text_input": "Once upon a time", "sampling_parameters": "{\"temperature\": 0, \"max_tokens\": 24}"}') \
    || fail "generate"
  echo "  generate: $gen"
  python3 -c 'import json,sys; t=json.loads(sys.argv[1])["text_output"]; assert t.strip(), "empty text"' "$gen"
  chat=$(curl -sf "$url/v1/chat/completions" -H 'Content-Type: application/json' \
    -d '{"model": "sluice-demo", "messages": [{"role": "user", "content": "Tell me a fortune."}], "max_tokens": 32, "seed": 1}') \
    || fail "chat completions"
  python3 -c '
import json, sys
r = json.loads(sys.argv[1]); c = r["choices"][0]
assert c["message"]["content"].strip(), "empty content"
print("  chat:", json.dumps(c["message"]["content"]), "finish_reason", c["finish_reason"], "usage", r["usage"])' "$chat"
}

# stop_server LOG: SIGTERM, then exit 0 with every stub gone and a clean exit logged.
stop_server() {
  local log=$1 stubs t0 code
  stubs=$(pgrep -P "$server_pid" -x sluice-stub || true)
  echo "  stubs: $(echo "$stubs" | wc -w) running as uid $(ps -o uid= -p "$(echo "$stubs" | head -1)" | tr -d ' ')"
  t0=$SECONDS
  kill -TERM "$server_pid"
  set +e
  wait "$server_pid"
  code=$?
  set -e
  server_pid=
  echo "  SIGTERM: exit code $code after $((SECONDS - t0))s"
  tail -3 "$log" | sed 's/^/  log: /'
  [ "$code" = 0 ] || fail "sluice exited with $code"
  for pid in $stubs; do
    if [ -d "/proc/$pid" ]; then fail "stub $pid is still running"; fi
  done
  grep -q "sluice exited cleanly" "$log" || fail "no clean exit in the log"
}

step "/usr/bin/sluice as the sluice user with /etc/default/sluice's flags: generate, chat, SIGTERM"
# As sluice.service runs it (User=sluice, NoNewPrivileges=yes, CapabilityBoundingSet= ;
# there is no systemd in the root to run the unit itself).
# shellcheck disable=SC2016
start_server "$root/tmp/sluice.log" chroot "$root" setpriv --reuid=sluice --regid=sluice --clear-groups \
  --no-new-privs --bounding-set=-all --inh-caps=-all /bin/sh -c \
  '. /etc/default/sluice && cd /var/lib/sluice && exec /usr/bin/sluice $SLUICE_ARGS "$@"' sluice
query_demo
stop_server "$root/tmp/sluice.log"

step "apt-get remove, then purge"
chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q sluice >/dev/null
[ ! -e "$root/usr/bin/sluice" ] || fail "/usr/bin/sluice left after remove"
[ -e "$root/etc/default/sluice" ] || fail "remove took the conffile /etc/default/sluice"
chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q sluice >/dev/null
[ ! -e "$root/etc/default/sluice" ] || fail "/etc/default/sluice left after purge"
[ ! -e "$root/etc/systemd/system/multi-user.target.wants/sluice.service" ] || fail "the enable link left after purge"
[ -d "$root/var/lib/sluice/models" ] || fail "purge took /var/lib/sluice (the admin's models)"
echo "  ok"

# deploy/Containerfile without a container engine: its RUN steps in this root (debian:12-slim is
# this minbase plus a few files), then its ENTRYPOINT and CMD as its USER from its WORKDIR
# (the CMD's 0.0.0.0 made 127.0.0.1: this is the host's network).
step "deploy/Containerfile's RUN steps, then its ENTRYPOINT + CMD as its USER"
cp "$deb" "$root/tmp/"
python3 - deploy/Containerfile "$root/tmp" <<'PY'
import json, re, shlex, sys
text = re.sub(r"\\\n", " ", open(sys.argv[1]).read())
run, user, workdir, entry, cmd = [], "root", "/", [], []
for line in text.splitlines():
    word, _, rest = line.strip().partition(" ")
    if word == "RUN":
        run.append(rest)
    elif word == "USER":
        user = rest.strip()
    elif word == "WORKDIR":
        workdir = rest.strip()
    elif word == "ENTRYPOINT":
        entry = json.loads(rest)
    elif word == "CMD":
        cmd = ["127.0.0.1" if a == "0.0.0.0" else a for a in json.loads(rest)]
uid, _, gid = user.partition(":")
open(sys.argv[2] + "/containerfile-run.sh", "w").write("set -e\n" + "\n".join(run) + "\n")
open(sys.argv[2] + "/containerfile-start.sh", "w").write(
    f"cd {shlex.quote(workdir)}\nexec setpriv --reuid={uid} --regid={gid or uid} --clear-groups --no-new-privs "
    f"--bounding-set=-all --inh-caps=-all {shlex.join(entry + cmd)} \"$@\"\n")
PY
chroot "$root" env DEBIAN_FRONTEND=noninteractive /bin/sh /tmp/containerfile-run.sh > "$root/tmp/containerfile.log" 2>&1 \
  || { tail -30 "$root/tmp/containerfile.log"; fail "a RUN step of deploy/Containerfile"; }
echo "  RUN steps: ok ($(grep -c '^Setting up' "$root/tmp/containerfile.log") packages set up)"
start_server "$root/tmp/sluice-container.log" chroot "$root" /bin/sh /tmp/containerfile-start.sh
query_demo
stop_server "$root/tmp/sluice-container.log"
echo
echo "PASS: $(basename "$deb") installs, serves and stops in a clean Debian 12 root (${SECONDS}s)"
