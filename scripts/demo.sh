#!/usr/bin/env bash
# One command from a fresh clone: install modelreg into .venv and run a real registry flow
# (init, register, promote, resolve, log, diff, rollback, fsck) in a throw-away git repo.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -x "$here/.venv/bin/modelreg" ]; then
  python3 -m venv "$here/.venv"
  "$here/.venv/bin/python" -m pip install --quiet --upgrade pip
  "$here/.venv/bin/python" -m pip install --quiet -e "$here"
fi
mr="$here/.venv/bin/modelreg"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
git init -q . && git config user.email demo@example.com && git config user.name demo
export MODELREG_ACTOR=demo@example.com
run() { printf '\n$ modelreg %s\n' "$*"; "$mr" "$@"; }

head -c 2000000 /dev/urandom > model-v1.safetensors
head -c 2000000 /dev/urandom > model-v2.safetensors
echo '{"vocab": 32000}' > tokenizer.json

run init
run register faq-bot 1.0.0 -a checkpoint=model-v1.safetensors -a tokenizer=tokenizer.json \
    -p lr=0.0003 -p epochs=3 -m framework=pytorch -d "first release"
run register faq-bot 1.1.0 -a checkpoint=model-v2.safetensors -a tokenizer=tokenizer.json \
    -p lr=0.0001 -p epochs=5 -m framework=pytorch -d "longer training"
run promote faq-bot@1.0.0 staging --expect none
run promote faq-bot@1.0.0 production --expect none --reason "initial launch"
run promote faq-bot@1.1.0 staging
run promote faq-bot@1.1.0 production --expect 1.0.0 --reason "better answers"
run resolve faq-bot@production
run resolve faq-bot@production --artifact checkpoint
run diff faq-bot@1.0.0 faq-bot@1.1.0
run rollback faq-bot production --reason "latency regression"
run ls
run ls faq-bot
run log faq-bot --limit 5
run show faq-bot@production --json
run fsck
git add .modelreg && git commit -qm "registry after demo" && printf '\ncommitted %s files of .modelreg/ to git\n' "$(git ls-files .modelreg | wc -l)"
