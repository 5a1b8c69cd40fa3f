"""Reference CNN in the `cpu` profile: accuracy, training time, throughput, FLOP/s.

Targets (issue 2): >= 98 % rank-1 test accuracy on the 12-class task and
<= 120 s of training on 2 cores. Also prints the achieved training FLOP/s as a
fraction of a float32 matrix-multiply peak measured in the same run.

    python benchmarks/bench_training.py [--profile cpu]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

from course_utils.runtime.tf_setup import import_tensorflow


def forward_flops(model) -> int:
    """Multiply-adds x 2 of one forward pass per image (conv and dense layers)."""
    keras = __import__("keras")
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kh, kw = layer.kernel_size
            cin = layer.input.shape[-1]
            _, h, w, cout = layer.output.shape
            total += 2 * kh * kw * cin * cout * h * w
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
    return int(total)


def matmul_peak_flops(n: int = 2048, repeats: int = 10) -> float:
    """Float32 matrix-multiply FLOP/s on this machine (best of several runs)."""
    tf = import_tensorflow()
    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    matmul = tf.function(lambda x, y: tf.matmul(x, y))
    matmul(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", default="cpu")
    args = parser.parse_args()

    from course_utils import callbacks
    from course_utils.reference import TrainConfig, train_reference

    peak = matmul_peak_flops()
    with tempfile.TemporaryDirectory() as run_dir:
        summary = train_reference(TrainConfig(profile=args.profile, run_dir=run_dir, verbose=0))
        latest = callbacks.find_latest_checkpoint(f"{run_dir}/checkpoints")
        model = callbacks.load_checkpoint(latest[0])
    m = summary.metrics
    # one training step costs about three forward passes (forward, two backward products)
    achieved = 3 * forward_flops(model) * m["train_images_per_s"]
    print(json.dumps({
        "benchmark": "reference_cnn_training",
        "profile": summary.profile.name,
        "epochs": summary.epochs_done,
        "train_size": summary.profile.train_size,
        "rank1_accuracy": round(m["rank1_accuracy"], 4),
        "rank5_accuracy": round(m["rank5_accuracy"], 4),
        "train_seconds": round(m["train_seconds"], 1),
        "train_images_per_s": round(m["train_images_per_s"], 1),
        "parameters": int(model.count_params()),
        "forward_mflops_per_image": round(forward_flops(model) / 1e6, 2),
        "achieved_gflops": round(achieved / 1e9, 2),
        "matmul_peak_gflops": round(peak / 1e9, 2),
        "fraction_of_matmul_peak": round(achieved / peak, 3),
        "targets": {"rank1_accuracy": ">= 0.98", "train_seconds": "<= 120"},
        "meets_targets": m["rank1_accuracy"] >= 0.98 and m["train_seconds"] <= 120,
    }, indent=2))


if __name__ == "__main__":
    main()
