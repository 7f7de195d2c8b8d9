# cuDNN benchmark mode on/off for lenet5 on a lent GPU, alternating, 3 rounds; per-epoch seconds.
set -u
export LD_LIBRARY_PATH=$(python3 -c "import torch, os; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))")
mkdir -p data/mnist
for f in target/gpu/mnist/*.gz; do gunzip -c "$f" > "data/mnist/$(basename "$f" .gz)"; done
B=target/gpu/lenet5
echo "batch,cudnn_benchmark,round,epoch1_s,epoch2_s,epoch3_s,test_s,test_acc" | tee $OUT/cudnn.csv
for batch in 128 1024; do
  for r in 1 2 3; do
    for bm in true false; do
      d=/tmp/run-$batch-$bm-$r
      $B train configs/relu_adam.yaml --epochs 3 --batch-size $batch --device cuda --set trainer.cudnn_benchmark=$bm \
        --run-dir $d > $d.log 2>&1 || { tail -3 $d.log; continue; }
      e=$(python3 -c "import csv; print(','.join(r['seconds'] for r in csv.DictReader(open('$d/metrics.csv'))))")
      t=$(python3 -c "import json; j=json.load(open('$d/test.json')); print(j.get('seconds','?'), j['accuracy'], sep=',')")
      echo "$batch,$bm,$r,$e,$t" | tee -a $OUT/cudnn.csv
    done
  done
done
