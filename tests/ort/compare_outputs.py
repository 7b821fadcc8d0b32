#!/usr/bin/python3
"""Octet vs ONNX Runtime on the same QDQ model: top-1 agreement and output difference.

  compare_outputs.py MODEL_QDQ.onnx OCTET.npy ORT.npy LABELS.npy [--min-agreement 99]
      [--max-steps 2]

The model's output must be dequantized (its producer a DequantizeLinear with a constant scale):
one quantization step is that scale, and the largest |Octet - ORT| may be --max-steps steps.
Exits 1 (with the numbers) when a criterion fails.
"""
import argparse
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def output_step(model_path):
    m = onnx.load(model_path)
    g = m.graph
    out = g.output[0].name
    producer = next((n for n in g.node if out in n.output), None)
    if producer is None or producer.op_type != "DequantizeLinear":
        raise SystemExit(f"{model_path}: output '{out}' is not produced by a DequantizeLinear "
                         f"(got {producer.op_type if producer else 'nothing'}); no step to compare")
    inits = {i.name: i for i in g.initializer}
    scale = numpy_helper.to_array(inits[producer.input[1]])
    if scale.size != 1:
        raise SystemExit(f"{model_path}: output scale is not per tensor")
    return float(scale.reshape(-1)[0])


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    p.add_argument("octet")
    p.add_argument("ort")
    p.add_argument("labels")
    p.add_argument("--min-agreement", type=float, default=99.0, help="top-1 agreement, %%")
    p.add_argument("--max-steps", type=float, default=2.0, help="max |diff| in output steps")
    a = p.parse_args()
    octet, ort, labels = np.load(a.octet), np.load(a.ort), np.load(a.labels)
    if octet.shape != ort.shape or octet.shape[0] != labels.shape[0]:
        raise SystemExit(f"shapes differ: octet {octet.shape}, ort {ort.shape}, "
                         f"labels {labels.shape}")
    step = output_step(a.model)
    diff = np.abs(octet.astype(np.float64) - ort.astype(np.float64))
    max_steps = diff.max() / step
    t_octet, t_ort = octet.argmax(1), ort.argmax(1)
    agreement = 100.0 * np.mean(t_octet == t_ort)
    print(f"samples {octet.shape[0]}, output step {step:.6g}")
    print(f"top-1 agreement Octet vs ONNX Runtime: {agreement:.2f}% (need >= {a.min_agreement}%)")
    print(f"max |Octet - ORT|: {diff.max():.6g} = {max_steps:.2f} steps (need <= {a.max_steps}); "
          f"elements differing: {100.0 * np.mean(diff > step * 1e-3):.3f}%")
    print(f"top-1 accuracy: Octet {100.0 * np.mean(t_octet == labels):.2f}%, "
          f"ONNX Runtime {100.0 * np.mean(t_ort == labels):.2f}%")
    ok = agreement >= a.min_agreement and max_steps <= a.max_steps + 1e-3
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
