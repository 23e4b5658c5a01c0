#!/usr/bin/env bash
# Promote a notebook, then drive the generated project as a user would:
# install, test, train, serve, and call /predict with a row the model was trained on.
set -euo pipefail

notebook=${1:-examples/notebooks/breast_cancer_classifier.ipynb}
name=$(basename "$notebook" .ipynb | tr '_ ' '--')
target=demo/$name
port=${PORT:-8765}

echo "== promote $notebook -> $target"
promote "$notebook" -o "$target" --force
cd "$target"

echo "== make install (fresh .venv with the pinned requirements)"
make install >/dev/null
echo "== make test"
make test
echo "== make train"
make train

echo "== make serve (port $port)"
PORT=$port make serve >serve.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 60); do
  curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  sleep 0.5
done
curl -fsS "http://127.0.0.1:$port/ready"
echo

record=$(.venv/bin/python -c 'import json; print(json.dumps(json.load(open("artifacts/sample.json"))["records"][0]))')
echo "== POST /predict with the first training row:"
echo "$record" | head -c 300; echo " ..."
echo "== answer:"
curl -fsS -X POST "http://127.0.0.1:$port/predict" -H 'Content-Type: application/json' -d "$record"
echo
