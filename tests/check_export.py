"""Loads lenet5's exported models the way their users would and holds their logits to lenet5's own.

usage: check_export.py DIR N NAME...

DIR holds pixels.f32 (N raw test images, [N, 1, 28, 28] float32 in [0, 1], little-endian) and, per NAME,
NAME.logits.f32 (lenet5's logits [N, 10]), NAME.pt (TorchScript) and NAME.onnx. Each file is run on the
pixels (TorchScript with torch.jit.load; ONNX checked with onnx.checker, run with onnxruntime, also one image
at a time to show the batch is free) and must agree with lenet5 to 1e-5 (absolute, plus 1e-5 relative).
Prints one line per file; exits 1 on the first disagreement.
"""

import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

TOLERANCE = 1e-5


def agree(name, got, want):
    err = np.max(np.abs(got - want))
    ok = got.shape == want.shape and np.allclose(got, want, rtol=TOLERANCE, atol=TOLERANCE)
    print(f"{name}: max |difference| {err:.3g} over {want.shape}{'' if ok else '  FAILED'}")
    if not ok:
        sys.exit(1)


def main():
    root, n, names = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    pixels = np.fromfile(root / "pixels.f32", dtype="<f4").reshape(n, 1, 28, 28)
    for name in names:
        want = np.fromfile(root / f"{name}.logits.f32", dtype="<f4").reshape(n, 10)

        module = torch.jit.load(str(root / f"{name}.pt"))
        module.eval()
        with torch.no_grad():
            agree(f"{name}.pt", module(torch.from_numpy(pixels)).numpy(), want)

        model = onnx.load(str(root / f"{name}.onnx"))
        onnx.checker.check_model(model, full_check=True)
        assert model.opset_import[0].version == 17, model.opset_import
        batch = model.graph.input[0].type.tensor_type.shape.dim[0]
        assert batch.dim_param, f"{name}.onnx: the batch dimension is fixed ({batch})"
        session = ort.InferenceSession(str(root / f"{name}.onnx"), providers=["CPUExecutionProvider"])
        agree(f"{name}.onnx", session.run(None, {"pixels": pixels})[0], want)
        one_by_one = np.concatenate([session.run(None, {"pixels": pixels[i : i + 1]})[0] for i in range(n)])
        agree(f"{name}.onnx (batches of 1)", one_by_one, want)


if __name__ == "__main__":
    main()
