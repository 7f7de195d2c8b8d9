#!/usr/bin/env bash
# Two concurrent CPU trainings on two cores (taskset -c 2,3) of a quiet machine: lenet5's default now (threads
# chosen at start + GOMP_SPINCOUNT=10000) against the old default (2 threads, libgomp's spinning: 300000).
set -uo pipefail
export LD_LIBRARY_PATH=$(python3 -c "import torch, os; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))")
mkdir -p data/mnist
for f in target/gpu/mnist/*.gz; do [ -f "data/mnist/$(basename "$f" .gz)" ] || gunzip -c "$f" > "data/mnist/$(basename "$f" .gz)"; done
B=target/gpu/lenet5
ep() { grep -oE "[0-9.]+s  \*best|[0-9.]+s$" "$1" | head -1; }
one() { # name, env...
  local name=$1; shift
  env "$@" taskset -c 2,3 timeout 150 $B train configs/relu_adam.yaml --epochs 1 --device cpu ${THREADS:-} --run-dir /tmp/c-$name-$RANDOM > /tmp/$name.log 2>&1
  echo "$name $(grep -E '^threads' /tmp/$name.log) epoch $(grep -oE '[0-9.]+s  \*best' /tmp/$name.log)"
}
two() { # name, env...
  local name=$1; shift
  ( env "$@" taskset -c 2,3 timeout 100 $B train configs/relu_adam.yaml --epochs 1 --device cpu ${THREADS:-} --run-dir /tmp/a-$RANDOM > /tmp/${name}A.log 2>&1 ) &
  ( env "$@" taskset -c 2,3 timeout 100 $B train configs/relu_adam.yaml --epochs 1 --device cpu ${THREADS:-} --run-dir /tmp/b-$RANDOM > /tmp/${name}B.log 2>&1 ) &
  wait
  echo "$name A: $(grep -E '^threads' /tmp/${name}A.log) epoch $(grep -oE '[0-9.]+s  \*best' /tmp/${name}A.log)  B: $(grep -E '^threads' /tmp/${name}B.log) epoch $(grep -oE '[0-9.]+s  \*best' /tmp/${name}B.log)"
}
for round in 1 2; do
  echo "== round $round"
  one new_alone
  THREADS="--threads 2" one old_alone GOMP_SPINCOUNT=300000
  two new_two
  THREADS="--threads 2" two old_two GOMP_SPINCOUNT=300000
done
