# Sourced by the demo scripts. start_sandbox COFFER DIR LOG [sandbox options...] starts
# `coffer sandbox --nodes 3` in the background, sets sandbox_pid, installs an EXIT trap that
# stops it, and returns once DIR/sandbox.json exists (exits 1 with the log if it cannot start).
start_sandbox() {
  local coffer=$1 dir=$2 log=$3
  shift 3
  "$coffer" sandbox --nodes 3 --dir "$dir" --quiet "$@" >"$log" 2>&1 &
  sandbox_pid=$!
  trap 'kill "$sandbox_pid" 2>/dev/null || true' EXIT
  for _ in $(seq 1 900); do
    [[ -f "$dir/sandbox.json" ]] && return 0
    if ! kill -0 "$sandbox_pid" 2>/dev/null; then
      echo "demo: the sandbox stopped; see $log"
      cat "$log"
      exit 1
    fi
    sleep 0.1
  done
  echo "demo: the sandbox did not start"
  exit 1
}
