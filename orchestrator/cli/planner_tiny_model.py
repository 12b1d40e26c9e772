"""Write a tiny random-weight llama-architecture model as a GGUF file (no download).

For trying and testing the planner with a real OpenAI-compatible server (llama.cpp's) where no
model is at hand: the server, its chat template, its tool calling and its schema-constrained
decoding are all real; only the weights are random, so what it proposes is random too, within
the tool's JSON schema. Run by the planner environment's python (it needs ``gguf`` and
``numpy`` only; nothing of the creature):

    python planner_tiny_model.py OUT.gguf [--seed N] [--dim 64] [--layers 2]

The vocabulary is character-level (SentencePiece-style: "▁" for a space, the printable ASCII
characters, byte fallback for the rest), so any prompt tokenizes and any JSON can be spelled.
"""

from __future__ import annotations

import argparse
import string
import sys

import gguf
import numpy as np

SPACE = "\u2581"
COMMON_WORDS = """
the a an to of and or in on for with from that this it is are be you your user creature call
calls action object destination recipient gesture type string null enum description function
name parameters properties required tool tools do_physical_task physical task robot body one
each open not never what when which who where dialogue seconds before now agreed promised
words own refused questioned put off alone objects pronoun answer without calling system
assistant content role function_call functions message messages arguments bring pick_up
put_down pick up down get give take turn open close clean find follow come go look point wave
nod red blue green cup block box table kitchen towel keys sure okay right away will do can
could please me my I I'll it's don't
"""
# ChatML, the layout llama.cpp's chat formats and most small instruct models use
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def vocabulary() -> tuple[list[str], list[float], list[int]]:
    tokens = ["<unk>", "<s>", "</s>"]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [gguf.TokenType.BYTE] * 256
    chars = [SPACE] + [c for c in string.printable if c not in string.whitespace] + ["\n"]
    # whole words, reachable through their prefixes (SentencePiece merges pairs that are in the
    # vocabulary), so a prompt of ~3,000 characters is ~1,000 tokens, not ~3,000
    words: dict[str, None] = {}
    for w in COMMON_WORDS.split():
        for k in range(2, len(w) + 1):
            words.setdefault(SPACE + w[: k - 1], None)
            words.setdefault(w[:k], None)
        words.setdefault(SPACE + w, None)
    pieces = chars + [w for w in words if w not in chars]
    tokens += pieces
    types += [gguf.TokenType.NORMAL] * len(pieces)
    # longer pieces score higher, so the tokenizer prefers them (SentencePiece's rule)
    scores = [0.0] * (3 + 256) + [float(len(p)) for p in pieces]
    return tokens, scores, [int(t) for t in types]


def write(path: str, seed: int = 0, dim: int = 64, layers: int = 2, heads: int = 4) -> None:
    rng = np.random.default_rng(seed)
    tokens, scores, types = vocabulary()
    n_vocab, ff = len(tokens), dim * 3

    def w(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.05).astype(np.float32)

    out = gguf.GGUFWriter(path, "llama")
    out.add_name("creature-planner-tiny-random")
    out.add_context_length(8192)
    out.add_embedding_length(dim)
    out.add_block_count(layers)
    out.add_feed_forward_length(ff)
    out.add_head_count(heads)
    out.add_head_count_kv(heads)
    out.add_layer_norm_rms_eps(1e-5)
    out.add_rope_dimension_count(dim // heads)
    out.add_file_type(gguf.LlamaFileType.ALL_F32)
    out.add_tokenizer_model("llama")
    out.add_token_list(tokens)
    out.add_token_scores(scores)
    out.add_token_types(types)
    out.add_bos_token_id(1)
    out.add_eos_token_id(2)
    out.add_add_bos_token(True)
    out.add_chat_template(CHAT_TEMPLATE)
    out.add_tensor("token_embd.weight", w(n_vocab, dim))
    out.add_tensor("output_norm.weight", np.ones(dim, dtype=np.float32))
    out.add_tensor("output.weight", w(n_vocab, dim))
    for i in range(layers):
        p = f"blk.{i}"
        out.add_tensor(f"{p}.attn_norm.weight", np.ones(dim, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            out.add_tensor(f"{p}.{name}.weight", w(dim, dim))
        out.add_tensor(f"{p}.ffn_norm.weight", np.ones(dim, dtype=np.float32))
        out.add_tensor(f"{p}.ffn_gate.weight", w(ff, dim))
        out.add_tensor(f"{p}.ffn_up.weight", w(ff, dim))
        out.add_tensor(f"{p}.ffn_down.weight", w(dim, ff))
    out.write_header_to_file()
    out.write_kv_data_to_file()
    out.write_tensors_to_file()
    out.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="the .gguf file to write")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dim", type=int, default=64, help="model width (a multiple of --heads)")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    a = ap.parse_args(argv)
    if a.dim % a.heads:
        ap.error("--dim must be a multiple of --heads")
    write(a.out, a.seed, a.dim, a.layers, a.heads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
