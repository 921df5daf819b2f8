#!/usr/bin/env bash
# Stream (stream-dse 2.1.1, Python >= 3.12) in its own virtual environment, beside codesign's Python 3.11 one:
#     bash benchmarks/stream/setup.sh            # makes .stream-venv at the repository's root
# Python 3.12 is taken from STREAM_PYTHON, else pyenv's newest 3.12, else `python3.12` on PATH.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${STREAM_VENV:-$root/.stream-venv}"
python="${STREAM_PYTHON:-}"
if [[ -z "$python" ]] && command -v pyenv >/dev/null; then
  version="$(pyenv versions --bare | grep -E '^3\.12(\.[0-9]+)?$' | sort -V | tail -1 || true)"
  [[ -n "$version" ]] && python="$(pyenv root)/versions/$version/bin/python"
fi
if [[ -z "$python" ]] && python3.12 --version >/dev/null 2>&1; then
  python="$(command -v python3.12)"
fi
if [[ -z "$python" ]] || ! "$python" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
  echo "benchmarks/stream/setup.sh: no Python 3.12 found (set STREAM_PYTHON to one)" >&2
  exit 2
fi
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet "stream-dse==2.1.1" six   # six: ZigZag's validator imports it, stream-dse omits it
"$venv/bin/python" -c "import stream.api; print('Stream ready:', '$venv')"
