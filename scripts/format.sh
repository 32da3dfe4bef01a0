#!/usr/bin/env bash
# Checks (default) or applies (--fix) clang-format on every C++ file of the project.
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t files < <(git ls-files --cached --others --exclude-standard \
  '*.h' '*.cc' '*.cpp' '*.hpp' | grep -v '^build')
if ((${#files[@]} == 0)); then
  echo "format: no files"
  exit 0
fi

if [[ "${1:-}" == "--fix" ]]; then
  clang-format -i "${files[@]}"
  echo "format: formatted ${#files[@]} files"
  exit 0
fi

if ! clang-format --dry-run -Werror "${files[@]}" 2>/tmp/coffer-format.log; then
  head -40 /tmp/coffer-format.log
  echo "format: some files are not formatted; run 'make format'"
  exit 1
fi
echo "format: ${#files[@]} files formatted correctly"
