"""PyTorch's profile (``mlx_explore/frameworks/torch/profile.py``): its op categories map the names
``torch.profiler`` really records, and a real profile of a training step adds up.

The names below were read off real profiles on this project's CPU machines (torch 2.13, MLP and CNN,
SGD and Adam, eager and ``torch.compile``). No GPU runs these tests: the CUDA kernel names follow
PyTorch's, cuBLAS's, cuDNN's and inductor's own naming and are listed to pin the rule order (an index kernel is an "elementwise_kernel"
too, a cuDNN convolution an "implicit_gemm"). PyTorch is imported only in the child process.
"""

from __future__ import annotations

import json

import pytest

from mlx_explore import profiling

from .conftest import profile_child

#: (op name, OpStat.hint, expected category).
SEEN = [
    # eager, forward and backward of Linear / Conv2d, ReLU, max-pool, cross-entropy
    ("aten::addmm", None, "matmul"),
    ("aten::mm", None, "matmul"),
    ("aten::linear", None, "matmul"),
    ("aten::conv2d", None, "conv"),
    ("aten::convolution", None, "conv"),
    ("aten::_convolution", None, "conv"),
    ("aten::_convolution_mode", None, "conv"),
    ("aten::mkldnn_convolution", None, "conv"),
    ("aten::convolution_backward", None, "conv"),
    ("aten::relu", None, "elementwise"),
    ("aten::clamp_min", None, "elementwise"),
    ("aten::threshold_backward", None, "elementwise"),
    ("aten::sum", None, "reduction"),
    ("aten::max_pool2d", None, "reduction"),
    ("aten::max_pool2d_with_indices", None, "reduction"),
    ("aten::max_pool2d_with_indices_backward", None, "reduction"),
    ("aten::cross_entropy_loss", None, "loss/softmax"),
    ("aten::log_softmax", None, "loss/softmax"),
    ("aten::_log_softmax", None, "loss/softmax"),
    ("aten::_log_softmax_backward_data", None, "loss/softmax"),
    ("aten::nll_loss_nd", None, "loss/softmax"),
    ("aten::nll_loss", None, "loss/softmax"),
    ("aten::nll_loss_forward", None, "loss/softmax"),
    ("aten::nll_loss_backward", None, "loss/softmax"),
    # the batch gather x[idx], the loss read back, views, allocation
    ("aten::index", None, "data movement"),
    ("aten::select", None, "data movement"),
    ("aten::copy_", None, "data movement"),
    ("aten::_to_copy", None, "data movement"),
    ("aten::to", None, "data movement"),
    ("aten::stack", None, "data movement"),
    ("aten::cat", None, "data movement"),
    ("aten::contiguous", None, "data movement"),
    ("aten::clone", None, "data movement"),
    ("aten::t", None, "data movement"),
    ("aten::transpose", None, "data movement"),
    ("aten::as_strided", None, "data movement"),
    ("aten::as_strided_", None, "data movement"),
    ("aten::view", None, "data movement"),
    ("aten::_unsafe_view", None, "data movement"),
    ("aten::reshape", None, "data movement"),
    ("aten::flatten", None, "data movement"),
    ("aten::expand", None, "data movement"),
    ("aten::unsqueeze", None, "data movement"),
    ("aten::detach", None, "data movement"),
    ("aten::resolve_conj", None, "data movement"),
    ("aten::resolve_neg", None, "data movement"),
    ("aten::empty", None, "data movement"),
    ("aten::empty_like", None, "data movement"),
    ("aten::empty_strided", None, "data movement"),
    ("aten::new_empty_strided", None, "data movement"),
    ("aten::resize_", None, "data movement"),
    ("aten::ones_like", None, "data movement"),
    ("aten::fill_", None, "data movement"),
    ("aten::zero_", None, "data movement"),
    ("aten::scatter_reduce_", None, "data movement"),  # compiled CNN: inductor's max-pool backward
    # torch.optim's update: profile.py hints every op inside Optimizer.step (SGD: add_; Adam: the rest)
    ("aten::add_", "optimizer", "optimizer update"),
    ("aten::add_", None, "elementwise"),
    ("aten::mul_", "optimizer", "optimizer update"),
    ("aten::lerp_", "optimizer", "optimizer update"),
    ("aten::addcmul_", "optimizer", "optimizer update"),
    ("aten::addcdiv_", "optimizer", "optimizer update"),
    ("aten::sqrt", "optimizer", "optimizer update"),
    ("aten::div", "optimizer", "optimizer update"),
    ("aten::item", "optimizer", "optimizer update"),
    ("aten::_local_scalar_dense", "optimizer", "optimizer update"),
    ("aten::_to_copy", "optimizer", "optimizer update"),
    # torch.compile on a CPU: one call per compiled graph (the hash is random: "mm", "conv" in it
    # must not make it a matmul or a convolution); the optimizer's graph has the optimizer hint
    ("## Call CompiledFxGraph fzughfu2kxbplgbq2ihnpzkof3gua6qjcfftdrmviwphrl6ft2du ##", None, "elementwise"),
    ("## Call CompiledFxGraph fmmconvgemmsoftmaxq2ihnpzkof3gua6qjcfftdrmviwphrl6ft ##", None, "elementwise"),
    ("## Call CompiledFxGraph fpapvirdarlenbtohryrhkyipvocskhixk3zaa2qjekkqnk7mwcp ##", "optimizer", "optimizer update"),
]

#: CUDA kernel names, their template arguments abbreviated (``...``).
CUDA_NAMES = [
    ("ampere_sgemm_128x64_nn", None, "matmul"),
    ("sm90_xmma_gemm_f32f32_f32f32_f32_nn_n_tilesize128x128x8_stage3_warpsize2x2x1_ffma_execute_kernel__5x_cublas", None, "matmul"),
    ("void cutlass::Kernel2<cutlass_80_simt_sgemm_128x64_8x5_nn_align1>(...)", None, "matmul"),
    ("sm80_xmma_fprop_implicit_gemm_indexed_f32f32_f32f32_f32_nchwkcrs_nchw_tilesize64x64x8_execute_kernel_cudnn", None, "conv"),
    ("void cudnn::detail::wgrad_alg0_engine<float, 128, 6, 8, 3, 3, 5, false, 512>(...)", None, "conv"),
    ("void at::native::vectorized_elementwise_kernel<4, at::native::(anonymous namespace)::launch_clamp_scalar(...)>(...)", None, "elementwise"),
    ("void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float>, at::detail::Array<char*, 1> >(...)", None, "data movement"),
    ("void at::native::index_elementwise_kernel<128, 4, at::native::gpu_index_kernel<...> >(long, ...)", None, "data movement"),
    ("Memcpy DtoH (Device -> Pageable)", None, "data movement"),
    ("void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float, ...sum_functor<float, float, float>...> >(...)", None, "reduction"),
    ("void at::native::(anonymous namespace)::cunn_SoftMaxForward<4, float, float, float, ...LogSoftMaxForwardEpilogue>(...)", None, "loss/softmax"),
    ("void at::native::(anonymous namespace)::nll_loss_forward_reduce_cuda_kernel_2d<float, float, long>(...)", None, "loss/softmax"),
    ("void at::native::(anonymous namespace)::multi_tensor_apply_kernel<...FusedAdamMathFunctor<float, 4, ...> >(...)", None, "optimizer update"),
    ("triton_poi_fused_addmm_relu_0", None, "elementwise"),
    ("triton_red_fused_sum_threshold_backward_1", None, "reduction"),
    ("triton_per_fused__log_softmax__log_softmax_backward_data_nll_loss_backward_nll_loss_forward_2", None, "loss/softmax"),
    ("triton_poi_fused_add_0", "optimizer", "optimizer update"),
]


def test_the_rules_are_valid_and_map_every_op_name_seen():
    assert profiling.rules_for("torch")  # loads: every category is one of profiling.MAPPABLE
    got = {(name, hint): profiling.categorize("torch", name, hint) for name, hint, _ in SEEN + CUDA_NAMES}
    wrong = {f"{name[:70]} (hint {hint})": (got[name, hint], want) for name, hint, want in SEEN + CUDA_NAMES
             if got[name, hint] != want}  # fmt: skip
    assert wrong == {}, "op -> (category, expected)"


#: The large MLP of the brief, 5 steps of batch 1024 (7400 samples: 5 full training batches).
MLP_1024 = ["model=mlp", "batch_size=1024", "hidden=1024,1024", "dataset=synthetic", "n_features=784",
            "n_samples=7400", "n_classes=10", "mode=eager", "steps=5"]  # fmt: skip


@pytest.fixture(scope="module")
def mlp_profile(tmp_path_factory) -> profiling.Profile:
    out = tmp_path_factory.mktemp("torch_profile")
    return profiling.Profile.from_dict(profile_child("torch", out, *MLP_1024))


def test_a_real_eager_profile_is_mostly_matmul_and_adds_up(mlp_profile):
    p = mlp_profile
    by_category = p.by_category()
    assert max(by_category, key=by_category.get) == "matmul", by_category
    assert p.unmapped == []
    assert p.device == "cpu" and p.steps == 5
    total = sum(by_category.values())  # the ops plus the framework overhead row
    assert total == pytest.approx(p.step_ms, rel=profiling.ADD_UP_RTOL), (
        f"ops {p.ops_ms:.2f} ms + overhead vs step {p.step_ms:.2f} ms: {by_category}")  # fmt: skip
    assert p.adds_up
    assert p.unprofiled_step_ms > 0
    ops = {r["op"]: r for r in p.rows}
    assert ops["aten::mm"]["calls_per_step"] == 5  # backward: 3 weight grads + 2 input grads
    assert ops["aten::addmm"]["calls_per_step"] == 3  # forward: the 3 Linear layers
    assert not {"ProfilerStep#0", "ProfilerStep*", "Optimizer.step#SGD.step"} & set(ops)  # annotations are not ops
    rows = [r for r in p.rows if r["category"] == "optimizer update"]
    assert [r["op"] for r in rows] == ["aten::add_"] and rows[0]["calls_per_step"] == 6  # SGD: one per parameter


def test_the_profile_writes_the_native_trace_and_one_step_of_events(mlp_profile):
    [native] = mlp_profile.native
    assert native.endswith("torch_trace.json")
    trace = json.loads(open(native).read())
    assert any(e.get("name") == "aten::addmm" for e in trace["traceEvents"])
    events = mlp_profile.step_events
    assert events and all(e["ph"] == "X" and e["ts"] >= 0 and e["dur"] >= 0 and "tid" in e for e in events)
    names = [e["name"] for e in events]
    assert names[0] == "ProfilerStep#2"  # the middle of 5 steps, starting at 0
    assert names.count("aten::addmm") == 3 and names.count("aten::mm") == 5  # one step, not all five
    step = events[0]["dur"]
    assert all(e["ts"] <= step for e in events)
