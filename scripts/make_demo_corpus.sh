#!/usr/bin/env bash
# Builds the demo model's training corpus from Debian's fortune cookie files.
#
# Usage: scripts/make_demo_corpus.sh OUTPUT_FILE [FORTUNE_DIR]
#
# Needs the Debian packages `fortunes` and `fortunes-min` (Debian 12:
# 1:1.99.1-7.3), installed with `apt-get install -y fortunes fortunes-min`.
# Each fortune file holds entries separated by lines that are a single `%`;
# every entry becomes one document, written to OUTPUT_FILE followed by the
# separator `<|endoftext|>` and a newline. Backspace overstriking
# (`x\bx`, `_\bx`) is removed. The files `ascii-art` (pictures, not prose)
# and `translate-me` (Latin and other languages) are left out, as are the
# index files (*.dat) and the *.u8 links.
set -euo pipefail

out=${1:?usage: make_demo_corpus.sh OUTPUT_FILE [FORTUNE_DIR]}
dir=${2:-/usr/share/games/fortunes}

if [[ ! -d "$dir" ]]; then
  echo "no fortune directory; run: apt-get install -y fortunes fortunes-min" >&2
  exit 1
fi

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

count=0
for path in "$dir"/*; do
  name=$(basename "$path")
  case "$name" in
    *.dat | *.u8 | ascii-art | translate-me) continue ;;
  esac
  [[ -f "$path" && ! -L "$path" ]] || continue
  # Remove overstriking (any char followed by backspace), then split on `%`.
  LC_ALL=C sed 's/.\x08//g; s/\x08//g; s/\r$//' "$path" | LC_ALL=C awk '
    function flush() {
      # Trim blank lines at both ends of the entry.
      sub(/^\n+/, "", doc); sub(/\n+$/, "", doc)
      if (doc != "") printf "%s\n<|endoftext|>\n", doc
      doc = ""
    }
    /^%$/ { flush(); next }
    { doc = doc $0 "\n" }
    END { flush() }
  ' >>"$tmp"
  count=$((count + 1))
done

mv "$tmp" "$out"
trap - EXIT
docs=$(grep -c '^<|endoftext|>$' "$out")
echo "wrote $out: $count files, $docs documents, $(wc -c <"$out") bytes"
echo "source: $(dpkg-query -W -f='${Package} ${Version}' fortunes 2>/dev/null || echo 'fortunes (version unknown)'), $(dpkg-query -W -f='${Package} ${Version}' fortunes-min 2>/dev/null || echo 'fortunes-min (version unknown)')"
