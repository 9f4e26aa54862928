"""Forward FLOPs per token of a dense decoder, counted from its served checkpoint (reads files).

A token's forward pass multiplies it through every weight matrix once: 2 FLOPs (a multiply and
an add) per matrix parameter, so C_forward = 2 N with N the parameters of the model's matrix
multiplications (Kaplan et al. 2020, "Scaling Laws for Neural Language Models", section 2.1,
Table 1). N is counted from the safetensors headers of the folder the server loads (shapes
only, no weights read), so it is what is served, not what a config file claims:

- every 2-D tensor is a matrix multiplication, except the input embedding table
  (``*embed_tokens.weight``), which is a lookup;
- with tied embeddings (``tie_word_embeddings`` and no ``lm_head.weight``), the output
  projection multiplies by the embedding table: vocab x hidden is added back;
- 1-D tensors (norms, biases) are left out (O(hidden) per token, not O(hidden^2)).

Left out too: attention over the context, 2 n_layer n_ctx d_attn per token in Kaplan's table,
small when d_model >> n_ctx / 12 (the tiny zoo: d_model >= 96, contexts <= 128 tokens, so
under 10% of the total at the end of the longest sequence, about 2-3% on average).

Mixture-of-experts checkpoints are refused: a token passes through only some experts, and
which ones is not in the shapes.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

MOE_KEYS = ("num_experts", "num_local_experts", "n_routed_experts", "moe_num_experts")


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


def _header(path: Path) -> dict:
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(size))


def count(folder: str | Path) -> FlopCount:
    """Forward FLOPs per token of the checkpoint in ``folder`` (config.json + *.safetensors)."""
    folder = Path(folder)
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise NotCountable(f"{folder}: no readable config.json ({e}); the compute basis needs the model's files") from e
    moe = [k for k in MOE_KEYS if config.get(k)]
    if moe:
        raise NotCountable(
            f"{folder} is a mixture of experts ({moe[0]}={config[moe[0]]}): a token's FLOPs depend on "
            f"its routing; bill it by device_time"
        )
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise NotCountable(f"{folder}: no *.safetensors files; the compute basis counts parameters from them")
    params, names = 0, set()
    for path in files:
        for name, entry in _header(path).items():
            if name == "__metadata__":
                continue
            names.add(name)
            shape = entry["shape"]
            if len(shape) > 2:
                raise NotCountable(
                    f"{path}: tensor {name} has shape {shape}; only dense 2-D weight matrices are counted "
                    f"(bill this model by device_time)"
                )
            if len(shape) == 2 and not name.endswith("embed_tokens.weight"):
                params += shape[0] * shape[1]
    tied = 0
    if config.get("tie_word_embeddings") and not any(n.endswith("lm_head.weight") for n in names):
        tied = int(config["vocab_size"]) * int(config["hidden_size"])
    return FlopCount(params + tied, tied)
