# The CUDA benchmark on a lent GPU machine (PyTorch there, no Rust): lenet5 built elsewhere with
# tch 0.24 against PyPI torch 2.11.0's libtorch, run against this machine's torch/lib.
set -u
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee $OUT/gpu.txt
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())" | tee -a $OUT/gpu.txt
lscpu | grep -E "Model name|^CPU\(s\)" | tee -a $OUT/gpu.txt
export LD_LIBRARY_PATH=$(python3 -c "import torch, os; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))")
mkdir -p data/mnist
for f in target/gpu/mnist/*.gz; do gunzip -c "$f" > "data/mnist/$(basename "$f" .gz)"; done
B=target/gpu/lenet5
for batch in 128 1024; do
  echo "== batch $batch" >&2
  python3 scripts/bench.py --binary $B --device cuda --batch $batch --epochs 3 --rounds 3 --skip-seed \
    > $OUT/bench-$batch.txt 2> $OUT/bench-$batch.err
  echo "rc=$?" >> $OUT/bench-$batch.txt
  cat $OUT/bench-$batch.txt; tail -5 $OUT/bench-$batch.err
done
