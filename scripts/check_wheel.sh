#!/usr/bin/env bash
# The package as users get it: `python -m build` makes the sdist and, from it, the wheel;
# the wheel goes into a fresh venv, which runs the README's main command against a private
# local network (its own state, runtime and config dirs), then stops that network.
# CI runs this after the test suite (.ci/run); PYTHON names an interpreter that has `build`
# (the test extra brings it). SMOLMIX_PURE_PYTHON=1 skips the mypyc build (setup.py), which
# is most of the time: about 42 of 49 CPU seconds here.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
work=$(mktemp -d)
smolmix=$work/venv/bin/smolmix
cleanup() {
  if [ -x "$smolmix" ]; then "$smolmix" testnet down >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

SECONDS=0
"$python" -m build --outdir "$work/dist" . >"$work/build.log" 2>&1 || {
  tail -40 "$work/build.log" >&2
  exit 1
}
built=$SECONDS
wheel=$(ls "$work"/dist/*.whl)
ls "$work"/dist/*.tar.gz >/dev/null
"$python" -m venv "$work/venv"
"$work/venv/bin/pip" install -q "$wheel"
installed=$SECONDS

unset SMOLMIX_CONFIG SMOLMIX_NETWORK SMOLMIX_SESSION SMOLMIX_NO_SESSION
export XDG_STATE_HOME=$work/state XDG_CONFIG_HOME=$work/config SMOLMIX_RUNTIME_DIR=$work/run
cd "$work" # away from the checkout: what runs is the installed package
"$smolmix" --version
"$smolmix" completion bash | grep -q _SMOLMIX_COMPLETE=bash_complete
"$smolmix" man fetch | grep -q '^\.TH "SMOLMIX-FETCH"'
test -f "$work/venv/share/man/man1/smolmix-fetch.1" # the data files: man finds them there
if [ -z "${SMOLMIX_PURE_PYTHON:-}" ] && command -v "${CC:-cc}" >/dev/null; then
  # with a compiler the wheel carries the mypyc-compiled netstack core: all of it
  "$work/venv/bin/python" -c 'from smolmix_cli.netstack import native
missing = sorted(set(native.NATIVE_CORE) - set(native.compiled()))
assert not missing, f"not compiled in the wheel: {missing}"'
fi
"$smolmix" --network testnet fetch -sS -o page.html -w '%{http_code}\n' http://demo.smolmix.test/ \
  | grep -qx 200
test -s page.html
"$smolmix" testnet down
echo "wheel check: ok ($(basename "$wheel"); build ${built} s, install $((installed - built)) s," \
  "run $((SECONDS - installed)) s)"
