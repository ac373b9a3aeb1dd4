#!/usr/bin/env bash
# Check `wire setup` against the real Claude Code and Codex (issue 18), outside the test suite.
#
# Installs @anthropic-ai/claude-code and @openai/codex from npm into $NPM_DIR (default: a temp dir;
# set NPM_DIR to reuse an install), makes a throwaway git repo, starts a throwaway `wire serve` on a
# free port (or uses $WIRE_URL), runs `wire init`, `wire setup claude` and `wire setup codex --trust`
# with HOME and CODEX_HOME in temp dirs, then prints `claude mcp list` and `codex mcp list` and one
# PASS/FAIL line per tool. Exit 0 only when both pass.
#
# The `wire` used is the one on PATH, running this checkout's code (PYTHONPATH points here), so the
# hooks and MCP entries are the ones this branch writes. Needs node/npm, git, python3.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
work=$(mktemp -d "${TMPDIR:-/tmp}/wire-real-tools.XXXXXX")
npm_dir=${NPM_DIR:-$work/npm}
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

say() { printf '== %s\n' "$*"; }

# -- the tools ----------------------------------------------------------------------------------
mkdir -p "$npm_dir"
if [ ! -x "$npm_dir/node_modules/.bin/claude" ] || [ ! -x "$npm_dir/node_modules/.bin/codex" ]; then
  say "npm install @anthropic-ai/claude-code @openai/codex into $npm_dir"
  npm install --prefix "$npm_dir" --no-audit --no-fund @anthropic-ai/claude-code @openai/codex >"$work/npm.log" 2>&1 \
    || { cat "$work/npm.log"; echo "FAIL: npm install"; exit 1; }
fi
claude="$npm_dir/node_modules/.bin/claude"
codex="$npm_dir/node_modules/.bin/codex"
say "$("$claude" --version 2>&1 | head -1); $("$codex" --version 2>&1 | head -1)"

# -- a throwaway server ---------------------------------------------------------------------------
if [ -z "${WIRE_URL:-}" ]; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  wire serve --port "$port" --data-dir "$work/data" >"$work/serve.log" 2>&1 &
  server_pid=$!
  export WIRE_URL="http://127.0.0.1:$port"
  for _ in $(seq 1 60); do
    curl -fsS "$WIRE_URL/v1/health" >/dev/null 2>&1 && break
    sleep 0.5
  done
  curl -fsS "$WIRE_URL/v1/health" >/dev/null 2>&1 || { cat "$work/serve.log"; echo "FAIL: wire serve did not start"; exit 1; }
fi
say "server $WIRE_URL"

# -- a fresh repo, set up as a new user would ----------------------------------------------------
export HOME="$work/home" CODEX_HOME="$work/home/.codex" WIRE_CONFIG_DIR="$work/wire-config"
mkdir -p "$HOME" "$CODEX_HOME"
repo="$work/repo"
git init -q -b main "$repo"
git -C "$repo" remote add origin "https://example.com/check/real-tools.git"
git -C "$repo" -c user.name=check -c user.email=check@example.com commit -q --allow-empty -m init
cd "$repo" || exit 1
wire init --project "realtools$$" --alias checker --human check >/dev/null || { echo "FAIL: wire init"; exit 1; }
say "wire setup claude"
wire setup claude
say "wire setup codex (untrusted first: it must say so, and Codex must indeed ignore the project)"
wire setup codex
control_codex=$(timeout 120 "$codex" mcp list 2>&1)
echo "$control_codex" | grep -v '^WARNING: proceeding'
say "wire setup codex --trust"
wire setup codex --trust
say "control: claude without .claude/settings.local.json"
mv .claude/settings.local.json "$work/settings.local.json"
control_claude=$(timeout 120 "$claude" mcp list 2>&1)
echo "$control_claude"
mv "$work/settings.local.json" .claude/settings.local.json
say "git status (the personal files must not show)"
git status --short --untracked-files=all

# -- what the tools say ---------------------------------------------------------------------------
say "claude mcp list"
claude_out=$(timeout 120 "$claude" mcp list 2>&1)
echo "$claude_out"
say "codex mcp list"
codex_out=$(timeout 120 "$codex" mcp list 2>&1)
echo "$codex_out" | grep -v '^WARNING: proceeding'

# -- wire not on PATH: the tools must get its absolute path ----------------------------------------
wire_real=$(python3 -c 'import os, sys; print(os.path.join(os.path.dirname(sys.executable), "wire"))')
nopath=$(printf '%s' "$PATH" | tr ':' '\n' | grep -vx "$(dirname "$(command -v wire)")" | paste -sd: -)
nopath_out=skipped
if [ -x "$wire_real" ] && ! PATH="$nopath" command -v wire >/dev/null; then
  repo2="$work/repo2"
  git init -q -b main "$repo2"
  git -C "$repo2" remote add origin "https://example.com/check/real-tools.git"
  cd "$repo2" || exit 1
  say "wire not on PATH: $wire_real setup claude"
  # joins with the project key the first init saved in $WIRE_CONFIG_DIR
  PATH="$nopath" "$wire_real" init --project "realtools$$" --alias checker2 --human check >/dev/null \
    || echo "(init failed)"
  PATH="$nopath" "$wire_real" setup claude | grep -v '^wrote'
  say "claude mcp list (wire not on PATH)"
  nopath_out=$(PATH="$nopath" timeout 120 "$claude" mcp list 2>&1)
  echo "$nopath_out"
  cd "$repo" || exit 1
fi

status=0
# the controls show the two steps are needed (if a tool changes its mind, these say so, not fail)
echo "$control_claude" | grep -q 'Pending approval' && echo "control: without settings.local.json claude says Pending approval" \
  || echo "NOTE: without settings.local.json claude no longer says Pending approval"
echo "$control_codex" | grep -qE '^wire[[:space:]]' && echo "NOTE: codex lists wire even before the project is trusted" \
  || echo "control: before --trust codex lists no wire server"
if echo "$claude_out" | grep -E '^wire: .*✔ Connected' >/dev/null; then
  echo "PASS: claude mcp list shows wire ✔ Connected"
else
  echo "FAIL: claude mcp list does not show wire ✔ Connected"; status=1
fi
if echo "$codex_out" | grep -E '^wire[[:space:]].*enabled' >/dev/null; then
  echo "PASS: codex mcp list lists wire enabled"
else
  echo "FAIL: codex mcp list does not list wire enabled"; status=1
fi
case "$nopath_out" in
  skipped) echo "SKIP: wire not on PATH (could not take it off PATH here)" ;;
  *"✔ Connected"*) echo "PASS: without wire on PATH, claude connects through its absolute path" ;;
  *) echo "FAIL: without wire on PATH, claude does not connect"; status=1 ;;
esac
exit $status
