"""gpu-bench's PyTorch peers (issue 22): each task's paper model written in PyTorch must be the same model as the
Keras one (same trainable parameter count, same output shape), train on gpu-bench's arrays, and be skipped with a
message where PyTorch is missing. The timings themselves are not asserted."""

import numpy as np
import pytest

import tasks
from common.errors import UsageError

torch = pytest.importorskip("torch", reason="the peer tests need PyTorch (tests/requirements.txt)")
keras = pytest.importorskip("keras")

from tasks import gpu_bench, gpu_bench_torch  # noqa: E402  (after the skips: gpu_bench imports Keras)


def _pair(name, quick):
    config = gpu_bench.bench_config(name, quick, peer="torch")
    work = gpu_bench._workload(name, config, rows=2, rng=np.random.default_rng(0), small=quick)
    keras.utils.set_random_seed(0)
    model = work.build()
    module, _, _ = gpu_bench_torch.build(name, config, work.sizes)
    return work, model, module


def _shapes(work, model, module):
    inputs = work.inputs if isinstance(work.inputs, dict) else {"x": work.inputs}
    keras_output = model(work.inputs, training=False)
    tensors = [torch.from_numpy(np.ascontiguousarray(value)) for value in inputs.values()]
    tensors = [tensor.long() if tensor.dtype == torch.int32 else tensor for tensor in tensors]
    module.eval()
    with torch.no_grad():
        torch_output = module(*tensors)
    return tuple(keras_output.shape), tuple(torch_output.shape)


def _keras_trainable(model) -> int:
    return int(sum(np.prod(weight.shape) for weight in model.trainable_weights))


# The quick sizes (the paper models at the tiny presets' widths) in CI; the paper sizes take minutes to build.
@pytest.mark.parametrize("quick", [True, pytest.param(False, marks=pytest.mark.slow)], ids=["quick", "paper"])
@pytest.mark.parametrize("name", tasks.TASK_NAMES)
def test_each_peer_has_the_keras_models_trainable_parameters_and_output_shape(name, quick):
    work, model, module = _pair(name, quick=quick)
    assert gpu_bench_torch.trainable_parameters(module) == _keras_trainable(model), name
    keras_shape, torch_shape = _shapes(work, model, module)
    assert keras_shape == torch_shape, name
    # The single-bias LSTM: PyTorch's second bias is zero and frozen, so both compute the same function.
    for parameter_name, parameter in module.named_parameters():
        if parameter_name.split(".")[-1].startswith("bias_hh"):
            assert not parameter.requires_grad and not parameter.detach().abs().sum()


def test_the_peer_trains_on_the_same_arrays_beside_the_keras_model():
    results = gpu_bench.run(("sentiment",), quick=True, peer="torch")
    assert results["peer"]["name"] == "torch" and "skipped" not in results["peer"]
    rows = results["tasks"]["sentiment"]
    peer = rows["torch_peer"]
    assert "error" not in peer, peer
    assert peer["steps_per_second"] > 0 and peer["finite_loss"] and peer["suite_vs_peer"] > 0
    assert peer["examples_per_second"] == pytest.approx(peer["steps_per_second"] * rows["batch_size"])
    text = gpu_bench.format_rows(results)
    assert "torch_peer" in text and "suite / peer" in text
    table = gpu_bench.markdown(results)
    assert "| sentiment | 8 |" in table and "PyTorch peer steps/s" in table


def test_without_pytorch_the_peers_are_skipped_with_a_message(monkeypatch):
    monkeypatch.setattr(gpu_bench_torch, "available", lambda: "PyTorch is not installed (test)")
    monkeypatch.setattr(gpu_bench, "bench_task", lambda name, quick, precisions, peer: {"peer_asked": peer})
    results = gpu_bench.run(("acceleration",), quick=True, peer="torch")
    assert results["peer"] == {"name": "torch", "skipped": "PyTorch is not installed (test)"}
    assert results["tasks"]["acceleration"]["peer_asked"] is None  # the Keras rows still run
    assert "--peer torch skipped: PyTorch is not installed" in gpu_bench.format_rows(results)


def test_the_peer_flag_parses_and_rejects_other_frameworks():
    import run

    assert run.parse_command(["gpu-bench", "--quick", "--peer", "torch"]).options.peer == "torch"
    assert run.parse_command(["gpu-bench", "--quick"]).options.peer is None
    with pytest.raises(UsageError, match="--peer"):
        run.parse_command(["gpu-bench", "--peer", "tensorflow"])
