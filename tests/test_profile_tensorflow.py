"""TensorFlow's profiler (``mlx_explore/frameworks/tensorflow/profile.py``): the category rules on op
names and hints seen in real profiles, one real profile of a compiled MLP step, how pool tasks and
overlapping threads are shared out (on an XPlane built here with TensorFlow's own proto), a failing
step that leaves no profiler session open, and the message when xprof is missing. TensorFlow is
only ever imported in child processes."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mlx_explore import profiling

from .conftest import child_json, profile_child

SGD_UPDATE = "; AssignSubVariableOp; sgd/AssignSubVariableOp_2"
XENT = "sparse_categorical_crossentropy/SparseSoftmaxCrossEntropyWithLogits/SparseSoftmaxCrossEntropyWithLogits"

#: (op name, hint as profile.py builds it, category): from profiles of the MLP (256-256 on digits at
#: batch 32, 1024-1024 on 784 synthetic features at batch 1024) and the CNN, compiled and eager, sgd
#: and adam (TensorFlow 2.21.0, Keras 3.15.1, a CPU).
SEEN = [
    # jit_compile=True: HLO instructions, hint "<what>; <TF op type>; <TF op name>"
    ("MatMul.12", "dot; MatMul; sequential/dense/MatMul", "matmul"),
    ("MatMul_1.4", "dot; MatMul; gradient_tape/sequential/dense_1/MatMul/MatMul_1", "matmul"),
    ("convolution.1", "convolution; Conv2D; sequential/conv2d/convolution", "conv"),
    ("convolution.4", "convolution; Conv2DBackpropFilter; gradient_tape/sequential/conv2d_1/convolution/Conv2DBackpropFilter", "conv"),
    ("convolution", "convolution; ; ", "conv"),
    ("multiply_subtract_fusion.3", "loop fusion[multiply,subtract]" + SGD_UPDATE, "optimizer update"),
    ("multiply_subtract_fusion", "loop fusion[add,multiply,reduce,subtract]" + SGD_UPDATE, "optimizer update"),
    ("copy_subtract_fusion", "loop fusion[copy,multiply,subtract,transpose]" + SGD_UPDATE, "optimizer update"),
    ("divide_subtract_fusion.2", "loop fusion[add,divide,multiply,sqrt,subtract]; AssignSubVariableOp; adam/AssignSubVariableOp_2",
     "optimizer update"),
    ("multiply_add_fusion.4", "loop fusion[add,multiply,subtract]; AssignAddVariableOp; adam/AssignAddVariableOp_4", "optimizer update"),
    ("subtract_divide_fusion", "loop fusion[add,convert,divide,multiply,power,sqrt,subtract]; RealDiv; adam/truediv", "optimizer update"),
    ("wrapped_add", "loop fusion[add]; AddV2; adam/Add", "optimizer update"),
    ("subtract_exponential_fusion", f"loop fusion[add,exponential,subtract]; SparseSoftmaxCrossEntropyWithLogits; {XENT}", "loss/softmax"),
    ("wrapped_reduce", f"loop fusion[add,reduce]; SparseSoftmaxCrossEntropyWithLogits; {XENT}", "loss/softmax"),
    ("reduce_multiply_fusion", "loop fusion[add,multiply,reduce]; DivNoNan; sparse_categorical_crossentropy/div_no_nan", "loss/softmax"),
    ("subtract_multiply_fusion", "loop fusion[add,and,compare,convert,iota,multiply,select,subtract]; Mul; "
                                 "gradient_tape/sparse_categorical_crossentropy/SparseSoftmaxCrossEntropyWithLogits/mul", "loss/softmax"),
    ("ynn_fusion", "custom fusion[add,reduce]; BiasAddGrad; gradient_tape/sequential/dense/BiasAdd/BiasAddGrad", "reduction"),
    ("wrapped_reduce.1", "loop fusion[add,reduce]; BiasAddGrad; gradient_tape/sequential/dense_1/BiasAdd/BiasAddGrad", "reduction"),
    ("wrapped_reduce-window", "loop fusion[add,reduce-window]; ; ", "reduction"),
    ("wrapped_reduce-window.2", "loop fusion[maximum,reduce-window]; MaxPool; sequential/max_pooling2d/MaxPool2d", "reduction"),
    ("wrapped_reduce-window.3", "loop fusion[and,compare,not,or,reduce-window,select]; ; ", "reduction"),
    ("wrapped_scatter", "loop fusion[add,scatter]; MaxPoolGrad; gradient_tape/sequential/max_pooling2d/MaxPool2d/MaxPoolGrad", "reduction"),
    ("gather_bitcast_fusion", "loop fusion[gather]; GatherV2; GatherV2", "data movement"),
    ("bitcast_copy_fusion.1", "loop fusion[copy]; Conv2DBackpropInput; "
                              "gradient_tape/sequential/conv2d_1/convolution/Conv2DBackpropInput", "data movement"),
    ("transpose_copy_fusion.3", "loop fusion[copy,reverse,transpose]; ; ", "data movement"),
    ("concatenate_bitcast_fusion", "loop fusion[concatenate]; ; ", "data movement"),
    ("copy.2", "copy; ; ", "data movement"),
    ("broadcast_maximum_fusion", "loop fusion[add,maximum]; Relu; sequential/dense/Relu", "elementwise"),
    ("compare_select_fusion.1", "loop fusion[add,compare,maximum,select]; ReluGrad; gradient_tape/sequential/dense_1/ReluGrad",
     "elementwise"),
    ("wrapped_broadcast", "loop fusion[]; Relu; sequential/conv2d/Relu", "elementwise"),
    ("wrapped_iota.3", "loop fusion[iota]; ; ", "elementwise"),
    ("wrapped_add", "loop fusion[add]; AddV2; Add", "elementwise"),
    # eager (and the compiled step's loss read-back, tf.stack): the op type, hint the same
    *[(op, op, "matmul") for op in ("MatMul",)],
    *[(op, op, "conv") for op in ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter")],
    *[(op, op, "optimizer update") for op in ("AssignSubVariableOp", "AssignAddVariableOp", "AssignVariableOp")],
    *[(op, op, "loss/softmax") for op in ("SparseSoftmaxCrossEntropyWithLogits", "DivNoNan")],
    *[(op, op, "reduction") for op in ("BiasAddGrad", "Sum", "Prod", "MaxPool", "MaxPoolGrad")],
    *[(op, op, "data movement") for op in ("GatherV2", "ReadVariableOp", "Identity", "Reshape", "Squeeze", "ExpandDims",
                                           "Tile", "Pack", "Cast")],
    *[(op, op, "elementwise") for op in ("BiasAdd", "Relu", "ReluGrad", "Mul", "AddV2", "Neg", "Sub", "Square", "Sqrt", "Pow",
                                         "RealDiv")],
    *[(op, op, "other") for op in ("Shape", "ShapeN", "BroadcastGradientArgs")],
    # on a GPU in eager mode: xprof names the op, the hint is its type
    ("sequential/dense/MatMul", "MatMul", "matmul"),
    # no hint (the HLO module could not be read): XLA's names
    ("MatMul.20", None, "matmul"),
    ("convolution.2", None, "conv"),
    ("copy.4", None, "data movement"),
    ("wrapped_reduce", None, "reduction"),
    ("multiply_subtract_fusion.1", None, "elementwise"),
]  # fmt: skip


@pytest.mark.parametrize("name, hint, category", SEEN)
def test_rules_map_the_ops_seen_in_real_profiles(name, hint, category):
    assert profiling.rules_for("tensorflow")
    assert profiling.categorize("tensorflow", name, hint) == category


def test_compiled_mlp_profile_adds_up_and_matmul_dominates(tmp_path):
    p = profiling.Profile.from_dict(profile_child(
        "tensorflow", tmp_path / "trace", "model=mlp", "batch_size=1024",
        "hidden=1024,1024", "dataset=synthetic", "n_features=784", "n_samples=8000", "n_classes=10", "mode=compiled", "steps=5",
    ))  # fmt: skip
    by = p.by_category()
    assert max(by, key=by.get) == "matmul", by
    assert by["optimizer update"] > 0 and by["loss/softmax"] > 0 and by["elementwise"] > 0 and by["data movement"] > 0, by
    assert p.adds_up and by["framework overhead"] + p.ops_ms == pytest.approx(p.step_ms, rel=profiling.ADD_UP_RTOL)
    assert p.unmapped == []
    hlo = [r for r in p.rows if r["category"] != "framework overhead" and r["op"] != "Pack"]
    assert all(r["calls_per_step"] == 1 for r in hlo), hlo  # one XLA cluster per step: every HLO op once
    # The five 1024-wide dots (forward and backward, ~2 GFLOP each) each take a real share of the step,
    # also the asynchronous ones whose own event returns at once (their Eigen tasks count for them).
    big = sorted((r["self_ms_per_step"] for r in p.rows if r["op"].startswith("MatMul")), reverse=True)[:5]
    assert min(big) > 0.05 * p.step_ms, big
    assert [Path(n).suffixes[-2:] for n in p.native] == [[".xplane", ".pb"]] and Path(p.native[0]).is_file()
    events = p.step_events
    assert events and all(e["ph"] == "X" and e["ts"] >= 0 and e["dur"] > 0 for e in events)
    step = next(e for e in events if e["name"].startswith("train"))
    assert step["ts"] == 0 and step["dur"] <= 1.5 * p.step_ms * 1e3
    assert any(e.get("args", {}).get("hlo_op", "").startswith("MatMul") for e in events)
    assert any("XLA" in n for n in p.notes)


#: A host plane built with TensorFlow's XPlane proto, times in us: in step 0 (0-100), MatMul.1 runs
#: on the Python thread (10-20) and schedules a pool task (15-70) that outlives it; the dot completes
#: at 51 (its "end:" event), so the task counts for it until then. copy.2 runs on the Python thread
#: (30-40) while a task nobody owns runs on a second pool thread (32-38): that task's share goes to
#: copy.2. An eager Mul (kernel 77-83) counts, a function call (is_func) does not, and nothing after
#: the step does.
SHARING = textwrap.dedent("""
    import json
    from tensorflow.tsl.profiler.protobuf import xplane_pb2
    from mlx_explore.frameworks.tensorflow.profile import HostPlane

    space = xplane_pb2.XSpace()
    plane = space.planes.add(id=1, name="/host:CPU")
    ids = {}

    def meta(table, name):
        if (table, name) not in ids:
            ids[(table, name)] = len(ids) + 1
            getattr(plane, table)[ids[(table, name)]].name = name
        return ids[(table, name)]

    def event(line, name, start, dur=0.0, **stats):
        e = line.events.add(metadata_id=meta("event_metadata", name), offset_ps=int(start * 1e6), duration_ps=int(dur * 1e6))
        for key, value in stats.items():
            s = e.stats.add(metadata_id=meta("stat_metadata", key))
            if isinstance(value, str):
                s.str_value = value
            else:
                s.int64_value = value

    python, pool, pool2 = (plane.lines.add(id=i, name=n) for i, n in enumerate(("python", "Eigen/1", "Eigen/2")))
    event(python, "train", 0, 100, step_num=0, _r=1)
    event(python, "ThreadpoolListener::Record", 5, _pt=15, _p=2)
    event(python, "MatMul.1", 10, 10, hlo_op="MatMul.1", hlo_module="m", _pt=0, _p=100)
    event(python, "ThreadpoolListener::Record", 12, _pt=15, _p=1)
    event(python, "copy.2", 30, 10, hlo_op="copy.2", hlo_module="m", _pt=0, _p=101)
    event(pool, "ThreadpoolListener::StartRegion", 15, _ct=15, _c=1)
    event(pool, "end: MatMul.1", 50, 1, _ct=0, _c=100)
    event(pool, "ThreadpoolListener::StopRegion", 70)
    event(pool2, "ThreadpoolListener::StartRegion", 32, _ct=15, _c=2)
    event(pool2, "ThreadpoolListener::StopRegion", 38)
    event(python, "EagerExecute", 75, 10, eager_op="Mul", is_func=0)
    event(python, "EagerKernelExecute", 77, 6)
    event(python, "EagerExecute", 86, 9, eager_op="__inference_f_1", is_func=1)
    event(python, "EagerKernelExecute", 87, 7)
    event(python, "MatMul.1", 110, 5, hlo_op="MatMul.1", hlo_module="m", _pt=0, _p=102)

    ops, share = HostPlane(space).op_table({("m", "MatMul.1"): "dot; MatMul; dense/MatMul"})
    print(json.dumps({"ops": {o.name: [o.calls, round(o.self_us, 6), o.hint] for o in ops},
                      "share": {k: round(v, 6) for k, v in share.items()}}))
""")


def test_pool_tasks_count_for_their_op_and_threads_share_each_instant():
    out = child_json("-c", SHARING)
    # MatMul.1: 10-20 (its thread, with its task 15-20), 20-30 (its task), 30-40 shared with copy.2
    # (half of 30-32 and 38-40, a third of 32-38), 40-51 (its task, until the dot's end); 51-70 is no op's.
    assert out["ops"] == {"MatMul.1": [1, 35.0, "dot; MatMul; dense/MatMul"], "copy.2": [1, 6.0, None], "Mul": [1, 6.0, "Mul"]}
    # own thread: MatMul.1 5 + 2.5, copy.2 1 + 2 + 1, Mul 6; pool tasks: MatMul.1's 2.5 + 10 + 1 + 2 + 1 + 11,
    # the ownerless task's 2 (to copy.2); after MatMul.1's own event had returned (20): 10 + 1 + 2 + 1 + 11.
    assert out["share"] == {"own": 17.5, "pool": 29.5, "async": 25.0}




def test_a_failing_step_stops_the_profiler_and_eager_ops_are_mapped(tmp_path):
    out = profile_child("tensorflow", tmp_path, "failing=1", "model=mlp", "hidden=32",
                    "batch_size=64", "optimizer=adam", "lr=0.01", "mode=eager")  # fmt: skip
    assert out["raised"] == "step 1 failed" and any(f.endswith(".xplane.pb") for f in out["written"])  # stopped and written
    assert out["unmapped"] == [] and out["events"] > 0
    # eager adam, two steps: per step 2 dense layers forward (MatMul x2) and backward (x3), Adam's writes
    assert out["ops"]["MatMul"] == 2 * 5 and out["ops"]["AssignAddVariableOp"] > 0, out["ops"]
    assert not any(name.startswith("__inference") for name in out["ops"])  # function calls are not ops
    assert any(n.startswith("eager:") for n in out["notes"])


BLOCKED_XPROF = textwrap.dedent("""
    import importlib.abc, json, sys
    from pathlib import Path

    class NoXprof(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "xprof" or name.startswith("xprof."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, NoXprof())
    from mlx_explore.frameworks.tensorflow.profile import profile

    steps = []
    try:
        profile(steps.append, 3, Path(sys.argv[1]), None)
        result = {"raised": None}
    except (ImportError, RuntimeError) as e:
        result = {"raised": type(e).__name__, "message": str(e)}
    print(json.dumps({**result, "steps_run": steps, "tensorflow_imported": "tensorflow" in sys.modules}))
""")


def test_without_xprof_profile_says_what_to_install(tmp_path):
    out = child_json("-c", BLOCKED_XPROF, str(tmp_path), timeout=60)
    assert out["raised"] == "ImportError" or out["raised"] == "ModuleNotFoundError", out
    assert "xprof" in out["message"] and "pip install 'xprof==" in out["message"], out["message"]
    assert out["steps_run"] == [] and not out["tensorflow_imported"]  # checked before anything ran
