#!/usr/bin/env python3
"""Writes bf16 llama-shaped GGUF models for benchmarking `smelt quantize`.

Two modes:

  synthetic (default): random weights (normal, std 0.02; norms around 1), llama
  architecture, tensors and metadata as convert_hf_to_gguf.py lays them out
  (bf16 matrices, f32 norms). Default shape: hidden 2048, 22 layers, 32 heads /
  4 KV heads, FFN 5632, vocab 49152, untied output = 1.17B parameters.

      python3 scripts/make-synthetic-checkpoint.py --out /tmp/synthetic-1b-bf16.gguf

  --from-gguf IN: dequantizes every quantized tensor of IN (e.g. the demo model
  SmolLM2-135M-Instruct.Q4_1.gguf) to bf16, keeps f32 tensors and all metadata
  (general.file_type set to 32 = MOSTLY_BF16). Gives the 135M bf16 GGUF used in
  docs/PERFORMANCE.md.

      python3 scripts/make-synthetic-checkpoint.py --from-gguf SmolLM2-135M-Instruct.Q4_1.gguf --out /tmp/smollm2-bf16.gguf

Needs numpy and gguf (PyPI). The random data is seeded (--seed), so the file is reproducible.
"""
import argparse
import sys

import numpy as np
import gguf


def to_bf16(a: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bits (uint16), round to nearest even, as ggml does."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    r = ((u + (0x7FFF + ((u >> 16) & 1))) >> 16).astype(np.uint16)
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    if nan.any():
        r[nan] = ((u[nan] >> 16) | 64).astype(np.uint16)
    return r


def synthetic(args) -> None:
    h, L, nh, nkv, ff, V = args.hidden, args.layers, args.heads, args.kv_heads, args.ffn, args.vocab
    hd = h // nh
    w = gguf.GGUFWriter(args.out, "llama")
    w.add_name("synthetic-llama")
    w.add_context_length(4096)
    w.add_embedding_length(h)
    w.add_block_count(L)
    w.add_feed_forward_length(ff)
    w.add_head_count(nh)
    w.add_head_count_kv(nkv)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_BF16)
    w.add_vocab_size(V)
    w.add_rope_dimension_count(hd)
    w.add_tokenizer_model("gpt2")
    w.add_token_list([f"t{i}" for i in range(V)])
    w.add_token_types([1] * V)

    rng = np.random.default_rng(args.seed)
    shapes = [("token_embd.weight", (V, h), True)]  # numpy order (rows, row length)
    if not args.tied:
        shapes.append(("output.weight", (V, h), True))
    shapes.append(("output_norm.weight", (h,), False))
    for i in range(L):
        p = f"blk.{i}."
        shapes += [(p + "attn_norm.weight", (h,), False),
                   (p + "attn_q.weight", (nh * hd, h), True),
                   (p + "attn_k.weight", (nkv * hd, h), True),
                   (p + "attn_v.weight", (nkv * hd, h), True),
                   (p + "attn_output.weight", (h, nh * hd), True),
                   (p + "ffn_norm.weight", (h,), False),
                   (p + "ffn_gate.weight", (ff, h), True),
                   (p + "ffn_up.weight", (ff, h), True),
                   (p + "ffn_down.weight", (h, ff), True)]
    n = 0
    # Register shapes first, then stream data (the writer keeps only one tensor in memory).
    for name, shape, mat in shapes:
        if mat:
            w.add_tensor_info(name, shape, np.dtype(np.uint16), int(np.prod(shape)) * 2,
                              raw_dtype=gguf.GGMLQuantizationType.BF16)
        else:
            w.add_tensor_info(name, shape, np.dtype(np.float32), int(np.prod(shape)) * 4,
                              raw_dtype=gguf.GGMLQuantizationType.F32)
        n += int(np.prod(shape))
    print(f"{args.out}: {n / 1e9:.3f}B parameters", file=sys.stderr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for name, shape, mat in shapes:
        if mat:
            a = to_bf16(rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02))
        else:
            a = (1.0 + 0.1 * rng.standard_normal(shape, dtype=np.float32)).astype(np.float32)
        w.write_tensor_data(a)
    w.close()


def from_gguf(args) -> None:
    r = gguf.GGUFReader(args.from_gguf)
    arch = r.fields["general.architecture"]
    arch = bytes(arch.parts[arch.data[0]]).decode()
    w = gguf.GGUFWriter(args.out, arch)
    for key, f in r.fields.items():
        if key.startswith("GGUF.") or key in ("general.architecture",):
            continue
        if key == "general.file_type":
            w.add_file_type(gguf.LlamaFileType.MOSTLY_BF16)
            continue
        t = f.types[0]
        if t == gguf.GGUFValueType.ARRAY:
            sub = f.types[-1]
            if sub == gguf.GGUFValueType.STRING:
                val = [bytes(f.parts[i]).decode("utf-8") for i in f.data]
            else:
                val = [f.parts[i].tolist()[0] for i in f.data]
            w.add_key_value(key, val, t, sub_type=sub)
        elif t == gguf.GGUFValueType.STRING:
            w.add_key_value(key, bytes(f.parts[f.data[0]]).decode("utf-8"), t)
        else:
            w.add_key_value(key, f.parts[f.data[0]].tolist()[0], t)
    for t in r.tensors:
        shape = tuple(int(x) for x in reversed(t.shape.tolist()))
        if t.tensor_type == gguf.GGMLQuantizationType.F32:
            w.add_tensor(t.name, np.asarray(t.data, dtype=np.float32).reshape(shape),
                         raw_dtype=gguf.GGMLQuantizationType.F32)
        else:
            f = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(shape)
            w.add_tensor(t.name, to_bf16(f).reshape(shape), raw_shape=shape,
                         raw_dtype=gguf.GGMLQuantizationType.BF16)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--from-gguf", help="dequantize this GGUF to bf16 instead of generating random weights")
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--layers", type=int, default=22)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--ffn", type=int, default=5632)
    ap.add_argument("--vocab", type=int, default=49152)
    ap.add_argument("--tied", action="store_true", help="no output.weight (tied embeddings)")
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    if args.from_gguf:
        from_gguf(args)
    else:
        synthetic(args)


if __name__ == "__main__":
    main()
