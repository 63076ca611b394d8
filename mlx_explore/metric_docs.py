"""The catalogue of a run's metrics: what each figure in ``RunRecord.metrics`` means, with its unit.

Data only (no code): the results JSON (``Comparison.to_dict``), the report tables and the results
explorer widget read their descriptions and units from :data:`METRIC_DOCS`. The
metrics themselves are measured in ``frameworks/common.py`` and ``bench.py``; the quality metrics
are computed in ``metrics.py``.
"""

#: ``{metric name: "what it means [unit]"}`` for every figure in a run's ``metrics``; the unit, where
#: there is one, is in brackets at the end (``[s]``, ``[MiB]``, ``[0-1]``; counts have none). A run's
#: value is ``None`` where the figure does not exist for it; the run's ``notes`` then say why.
METRIC_DOCS = {
    "test_accuracy": "share of test samples classified right [0-1]",
    "test_f1_macro": "macro-averaged F1 on the test split [0-1]",
    "test_roc_auc": "one-vs-rest macro ROC-AUC on the test split [0-1]",
    "test_loss": "mean cross-entropy on the test split [nats]",
    "val_accuracy": "validation accuracy after the last epoch [0-1]",
    "val_loss": "validation cross-entropy after the last epoch [nats]",
    "train_loss": "mean training loss of the last epoch (gbdt: training log-loss after the last round, on at most "
                  "10,000 training rows) [nats]",
    "import_s": "importing the framework in the child process [s]",
    "first_step_s": "first training step, including tracing and compilation, synced (gbdt: the first boosting round) [s]",
    "compile_s": "first step minus a steady step: trace + compile time [s]",
    "samples_per_s": "steady training throughput, median over timed windows (sync at each window's end; gbdt: training "
                     "rows / round_ms, as every round reads the whole training split) [samples/s]",
    "step_ms": "steady time per training step, median over windows [ms]",
    "windows": "timed steady windows behind samples_per_s (gbdt: the rounds after the first)",
    "step_ms_p50": "training-step latency with a sync after every step, median [ms]",
    "step_ms_p95": "training-step latency with a sync after every step, 95th percentile [ms]",
    "step_ms_p99": "training-step latency with a sync after every step, 99th percentile [ms]",
    "infer_ms_p50": "batch-1 inference, host input to host logits, median [ms]",
    "infer_ms_p95": "batch-1 inference, 95th percentile [ms]",
    "infer_ms_p99": "batch-1 inference, 99th percentile [ms]",
    "infer_samples_per_s": "inference throughput at batch infer_batch, median [samples/s]",
    "infer_batch": "batch size of the inference-throughput phase [samples]",
    "onnx_infer_ms_p50": "batch-1 inference in ONNX Runtime (the run's model exported to ONNX), median [ms]",
    "onnx_infer_ms_p95": "batch-1 inference in ONNX Runtime, 95th percentile [ms]",
    "onnx_infer_ms_p99": "batch-1 inference in ONNX Runtime, 99th percentile [ms]",
    "onnx_infer_samples_per_s": "ONNX Runtime inference throughput at batch infer_batch, median [samples/s]",
    "onnx_model_bytes": "size of the exported model.onnx [bytes]",
    "onnx_max_abs_diff": "largest |ONNX Runtime logit - framework logit| on the test split",
    "onnx_logits_match": "1 when ONNX Runtime's logits equal the framework's within 1e-4 (+1e-4 relative), else 0",
    "train_s": "all training epochs including per-epoch validation (gbdt: the library's whole training call, set-up, "
               "rounds and per-round evaluation) [s]",
    "eval_s": "test-split evaluation [s]",
    "wall_s": "child process start to finish, as the user waits for it [s]",
    "cpu_parallelism": "process CPU time / wall time in the steady windows: cores kept busy [cores]",
    "peak_rss_mb": "peak resident memory of the child process [MiB]",
    "peak_device_mb": "peak accelerator memory allocated by the framework [MiB]",
    "train_gflop_per_step": "analytic FLOPs of one training step (3 x forward) [GFLOP]",
    "gflops_per_s": "achieved training FLOP rate: FLOPs per step x steady steps/s [GFLOP/s]",
    "peak_gflops_per_s": "float32 matmul peak measured on the same device in the same process [GFLOP/s]",
    "mfu": "model FLOPs utilization: gflops_per_s / peak_gflops_per_s [0-1]",
    "steps": "training steps taken (gbdt: boosting rounds grown)",
    "round_ms": "gbdt: steady time per boosting round (its trees and the library's evaluation of the training and "
                "validation log-loss), median over the rounds after the first [ms]",
    "setup_s": "gbdt: the library's set-up before its first round: input checks, binning the features into "
               "histograms, building the booster [s]",
    "trees": "gbdt: trees grown (one per round on a binary task, one per class and round otherwise)",
    "leaves": "gbdt: leaves of all trees together",
    "model_bytes": "the trained model's size: gbdt, serialized in its library's format (XGBoost save_raw UBJSON, "
                   "LightGBM model_to_string, scikit-learn pickle); a network, its parameters in float32 (4 bytes "
                   "each) [bytes]",
    "n_params": "trainable parameters",
}
