"""JAX's profiler (``mlx_explore/frameworks/jax/profile.py``): the category rules on op names and
hints seen in real profiles, one real profile of a compiled MLP step in a child process (JAX is
never imported here), and a trace session that a failing step does not leave open."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlx_explore import profiling

from .conftest import profile_child

FLAX = "flax/linen/linear.py:Dense.__call__"
LOSS = "optax/losses/_classification.py:softmax_cross_entropy_with_integer_labels"
UPDATE = "optax/_src/update.py:apply_updates.<locals>.<lambda>"

#: (op name, hint as profile.py builds it, category): pairs from profiles of the MLP and the CNN,
#: compiled and eager, sgd and adam (jax 0.10.2 on a CPU).
SEEN = [
    ("ynn_fusion.9", f"fusion(dot) | jit(train_step)/jvp(MLP)/Dense_0/dot_general | {FLAX}", "matmul"),
    ("dot.1", f"dot | jit(train_step)/transpose(jvp(MLP))/Dense_1/transpose | {FLAX}", "matmul"),
    ("ynn_fusion.2", f"fusion(reduce) | jit(train_step)/transpose(jvp(MLP))/Dense_0/reduce_sum | {FLAX}", "reduction"),
    ("ynn_fusion.6", f"fusion(reduce) | jit(train_step)/jvp()/reduce_max | {LOSS}", "loss/softmax"),
    ("ynn_fusion.13", "fusion(convolution) | jit(train_step)/jvp(CNN)/Conv_0/conv_general_dilated | "
                      "flax/linen/linear.py:_Conv.__call__", "conv"),
    ("ynn_fusion.3", "fusion(convolution)", "conv"),
    ("ynn_fusion.12", "fusion(reduce-window) | jit(train_step)/jvp(CNN)/reduce_window_max | flax/linen/pooling.py:pool", "reduction"),
    ("wrapped_scatter.1", "fusion(scatter) | jit(train_step)/transpose(jvp(CNN))/select_and_scatter | "
                          "flax/linen/pooling.py:pool", "reduction"),
    ("bitcast_copy_fusion", "fusion(copy) | jit(train_step)/transpose(jvp(CNN))/Conv_1/conv_general_dilated | "
                            "flax/linen/linear.py:_Conv.__call__", "data movement"),
    ("broadcast_maximum_fusion", "fusion(add broadcast maximum) | jit(train_step)/jvp(MLP)/jit(relu)/max | "
                                 "frameworks/jax/models.py:MLP.__call__", "elementwise"),
    ("compare_select_fusion.1", "fusion(add broadcast compare select) | jit(train_step)/transpose(jvp(MLP))/select_n | "
                                "frameworks/jax/models.py:MLP.__call__", "elementwise"),
    ("subtract_exponential_fusion", f"fusion(add broadcast exponential subtract) | jit(train_step)/jvp()/exp | {LOSS}", "loss/softmax"),
    ("wrapped_scatter", f"fusion(scatter) | jit(train_step)/transpose(jvp(jit(take_along_axis)))/scatter-add | {LOSS}", "loss/softmax"),
    ("reduce_multiply_fusion", "fusion(multiply reduce) | jit(train_step)/jvp()/div | "
                               "frameworks/jax/trainer.py:make_train_step.<locals>.loss_fn", "loss/softmax"),
    ("multiply_add_fusion.2", f"fusion(add broadcast multiply) | jit(train_step)/add | {UPDATE}", "optimizer update"),
    ("multiply_add_fusion.7", "fusion(add broadcast multiply) | jit(train_step)/add | "
                              "optax/tree_utils/_tree_math.py:tree_update_moment.<locals>.<lambda>", "optimizer update"),
    ("add_select_fusion", "fusion(add compare select) | jit(train_step)/jit(_where)/select_n | "
                          "optax/_src/numerics.py:safe_increment", "optimizer update"),
    ("gather_bitcast_fusion", "fusion(add broadcast compare gather select) | jit(train_step)/gather | "
                              "frameworks/jax/trainer.py:make_train_step.<locals>.train_step", "data movement"),
    ("copy.4", "copy", "data movement"),
    ("transpose_copy_fusion.4", "fusion(copy transpose)", "data movement"),
    ("wrapped_iota", "fusion(iota)", "data movement"),
    ("wrapped_reduce-window", "fusion(reduce-window)", "reduction"),
    # eager: one module per primitive
    ("jit_dot_general/ynn_fusion", "jit_dot_general", "matmul"),
    ("jit_conv_general_dilated/transpose_copy_fusion", "jit_conv_general_dilated", "conv"),
    ("jit_reduce_sum/ynn_fusion", "jit_reduce_sum", "reduction"),
    ("jit__reduce_max/ynn_fusion.1", "jit__reduce_max", "reduction"),
    ("jit_select_and_scatter_add/wrapped_scatter", "jit_select_and_scatter_add", "reduction"),
    ("jit_convert_element_type/copy", "jit_convert_element_type", "data movement"),
    ("jit__take/select_bitcast_fusion", "jit__take", "data movement"),
    ("jit_broadcast_in_dim/wrapped_broadcast", "jit_broadcast_in_dim", "data movement"),
    ("jit_relu/broadcast_maximum_fusion", "jit_relu", "elementwise"),
    ("jit_max/wrapped_maximum", "jit_max", "elementwise"),
    ("jit_tree_bias_correction/convert_power_fusion", "jit_tree_bias_correction", "optimizer update"),
    # no hint (the compiled HLO could not be read): XLA's names
    ("dot.3", None, "matmul"),
    ("convolution.2", None, "conv"),
    ("copy.1", None, "data movement"),
    ("fusion.12", None, "elementwise"),
]  # fmt: skip


@pytest.mark.parametrize("name, hint, category", SEEN)
def test_rules_map_the_ops_seen_in_real_profiles(name, hint, category):
    assert profiling.rules_for("jax")
    assert profiling.categorize("jax", name, hint) == category


def test_compiled_mlp_profile_adds_up_and_matmul_dominates(tmp_path):
    p = profiling.Profile.from_dict(profile_child(
        "jax", tmp_path / "trace", "model=mlp", "batch_size=1024",
        "hidden=1024,1024", "dataset=synthetic", "n_features=784", "n_samples=8000", "n_classes=10", "mode=compiled", "steps=5",
    ))  # fmt: skip
    by = p.by_category()
    assert max(by, key=by.get) == "matmul", by
    assert by["optimizer update"] > 0 and by["loss/softmax"] > 0 and by["elementwise"] > 0, by
    assert p.adds_up and by["framework overhead"] + p.ops_ms == pytest.approx(p.step_ms, rel=profiling.ADD_UP_RTOL)
    assert p.unmapped == []
    ops = [r for r in p.rows if r["category"] != "framework overhead"]
    assert all(r["calls_per_step"] == 1 for r in ops), ops  # one jitted step: every HLO op once per step
    assert any(path.endswith(".xplane.pb") for path in p.native) and any(path.endswith("perfetto_trace.json.gz") for path in p.native)
    assert all(Path(path).is_file() for path in p.native)
    events = p.step_events
    assert events and all(e["ph"] == "X" and e["ts"] >= 0 and e["dur"] >= 0 for e in events)
    step = next(e for e in events if e["name"] == "train")
    assert step["ts"] == 0 and step["dur"] <= 1.5 * p.step_ms * 1e3
    assert {"ynn_fusion.9", "dot"} <= {e["args"]["hlo_op"] for e in events if "args" in e}
    assert any("fusion" in n for n in p.notes)




def test_a_failing_step_stops_the_trace_and_eager_ops_are_mapped(tmp_path):
    out = profile_child("jax", tmp_path, "failing=1", "model=mlp", "hidden=32",
                    "batch_size=64", "optimizer=adam", "lr=0.01", "mode=eager")  # fmt: skip
    assert out["raised"] == "step 1 failed" and any(f.endswith(".xplane.pb") for f in out["written"])  # stopped and written
    assert out["unmapped"] == [] and out["ops"] and out["events"] > 0
