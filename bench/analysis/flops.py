"""Forward FLOPs per token of a dense decoder, counted from its served checkpoint (reads files).

A token's forward pass multiplies it through every weight matrix once: 2 FLOPs (a multiply and
an add) per matrix parameter, so C_forward = 2 N with N the parameters of the model's matrix
multiplications (Kaplan et al. 2020, "Scaling Laws for Neural Language Models", section 2.1,
Table 1). N is counted from the safetensors headers of the folder the server loads (shapes
only, no weights read), so it is what is served, not what a config file claims:

- the weight files are those of ``model.safetensors.index.json``'s ``weight_map`` when there is
  one (as the loaders read them), else every ``*.safetensors`` file;
- every 2-D tensor is a matrix multiplication, except embedding tables, which are lookups
  (token and position embeddings: ``EMBEDDING_NAMES``);
- without an ``lm_head.weight`` tensor the output projection multiplies by the token embedding
  table (tied embeddings): that table's shape is added back;
- 1-D tensors (norms, biases) are left out (O(hidden) per token, not O(hidden^2)).

Left out too: attention over the context, 4 n_layer n_ctx d_attn FLOPs per token (QK^T and the
weighted sum of V; Kaplan's table counts the first). On the tiny zoo that is at most about 6% of
a student token's FLOPs (smoke_think, contexts of 14-62 tokens, about 35 on average) and under
1% of a teacher's. The output projection is charged on every token, prompt tokens included,
though a server computes logits for the last prompt position only: negligible for the zoo
(vocabulary 56), not for a 150k-token vocabulary.

Refused, with the fix: mixture-of-experts checkpoints (a token passes through only some experts,
and which ones is not in the shapes), quantized ones (packed weights do not count parameters),
and tensors of more than two dimensions.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MOE_KEYS = ("num_experts", "num_local_experts", "n_routed_experts", "moe_num_experts", "num_experts_per_tok")
EMBEDDING_NAMES = (
    "embed_tokens.weight",
    "embed_positions.weight",
    "position_embeddings.weight",
    "word_embeddings.weight",
    "embed_in.weight",
    "wte.weight",
    "wpe.weight",
)
TOKEN_EMBEDDINGS = ("embed_tokens.weight", "word_embeddings.weight", "embed_in.weight", "wte.weight")


class NotCountable(ValueError):
    """A checkpoint whose forward FLOPs this module cannot count (the message names the fix)."""


@dataclass(frozen=True)
class FlopCount:
    matmul_params: int
    """Parameters of the matrix multiplications one token passes through."""
    tied_head_params: int
    """Of those, the output projection's when it shares the embedding table (0 otherwise)."""

    @property
    def per_token(self) -> int:
        return 2 * self.matmul_params


def _items(config: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every key of a (nested) config, with its dotted path."""
    for key, value in config.items():
        yield prefix + key, value
        if isinstance(value, Mapping):
            yield from _items(value, prefix + key + ".")


def _header(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            if size > path.stat().st_size - 8:
                raise ValueError(f"a header of {size} bytes in a file of {path.stat().st_size}")
            return json.loads(f.read(size))
    except (OSError, struct.error, ValueError) as e:
        raise NotCountable(f"{path}: not a readable safetensors file ({e}); is it a Git LFS pointer?") from e


def _weight_files(folder: Path) -> list[Path]:
    index = folder / "model.safetensors.index.json"
    if index.exists():
        try:
            names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (OSError, ValueError, KeyError) as e:
            raise NotCountable(f"{index}: no readable weight_map ({e})") from e
        return [folder / n for n in names]
    return sorted(folder.glob("*.safetensors"))


def count(folder: str | Path) -> FlopCount:
    """Forward FLOPs per token of the checkpoint in ``folder`` (config.json + safetensors)."""
    folder = Path(folder)
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise NotCountable(f"{folder}: no readable config.json ({e}); the compute basis needs the model's files") from e
    moe = [(k, v) for k, v in _items(config) if k.rsplit(".", 1)[-1] in MOE_KEYS and v]
    if moe:
        raise NotCountable(
            f"{folder} is a mixture of experts ({moe[0][0]}={moe[0][1]}): a token's FLOPs depend on "
            f"its routing; bill it by device_time"
        )
    if config.get("quantization_config"):
        raise NotCountable(f"{folder} is quantized: its packed weights do not count parameters; bill it by device_time")
    files = _weight_files(folder)
    if not files:
        raise NotCountable(f"{folder}: no *.safetensors files; the compute basis counts parameters from them")
    params, head, embedding = 0, False, 0
    for path in files:
        for name, entry in _header(path).items():
            if name == "__metadata__":
                continue
            shape = entry["shape"]
            if len(shape) > 2:
                raise NotCountable(
                    f"{path}: tensor {name} has shape {shape}; only dense 2-D weight matrices are counted "
                    f"(bill this model by device_time)"
                )
            head |= name.endswith("lm_head.weight")
            if len(shape) != 2:
                continue
            if name.endswith(TOKEN_EMBEDDINGS):
                embedding = shape[0] * shape[1]
            elif not name.endswith(EMBEDDING_NAMES):
                params += shape[0] * shape[1]
    tied = 0 if head else embedding
    return FlopCount(params + tied, tied)
