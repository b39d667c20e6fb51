#!/usr/bin/env python3
"""Writes a synthetic llama-shaped Hugging Face checkpoint (bf16 safetensors shards + index,
config.json) for benchmarking `smelt convert`, with the tokenizer files copied from a real
checkpoint folder (e.g. the SmolLM2 folder `smelt export` writes in `make demo`).

    python3 scripts/make-synthetic-hf.py --out /tmp/synth-0.8b --tokenizer-from .cache/demo/SmolLM2-135M-Instruct-hf

Default shape (0.82B parameters): hidden 2048, 16 layers, 32 heads / 4 KV heads, FFN 5632,
vocab 49152, untied output, 5 shards. Seeded: the same arguments give the same files.

Mixture of experts: `--experts N` (with `--experts-used K`, `--expert-ffn F`) writes a
Qwen3MoeForCausalLM checkpoint (q/k norms, router `mlp.gate`, `mlp.experts.E.{gate,up,down}_proj`,
renormalised top-k) instead of the dense llama; e.g. ~1B parameters:

    python3 scripts/make-synthetic-hf.py --out /tmp/synth-moe --tokenizer-from DIR --experts 32 \
        --expert-ffn 1024 --hidden 1024 --layers 8 --heads 16 --kv-heads 4 --vocab 32000
`--fused` writes the experts as transformers' newer MoE classes store them (`mlp.experts.gate_up_proj`
[n_expert, 2 x F, hidden], `mlp.experts.down_proj`), with the same values as without it.
Needs numpy (PyPI). Writes safetensors by hand (no torch, no safetensors package).
"""
import argparse, json, os, shutil, struct
import numpy as np


def bf16(a):
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    return ((u + (0x7FFF + ((u >> 16) & 1))) >> 16).astype(np.uint16)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--tokenizer-from", required=True)
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--layers", type=int, default=16)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--ffn", type=int, default=5632)
    ap.add_argument("--vocab", type=int, default=49152)
    ap.add_argument("--shards", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--experts", type=int, default=0, help="experts per layer (0: dense llama)")
    ap.add_argument("--experts-used", type=int, default=2)
    ap.add_argument("--expert-ffn", type=int, default=768)
    ap.add_argument("--fused", action="store_true",
                    help="experts in transformers' fused layout (mlp.experts.gate_up_proj / down_proj), same values as without")
    a = ap.parse_args()
    h, L, nh, nkv, ff, V = a.hidden, a.layers, a.heads, a.kv_heads, a.ffn, a.vocab
    hd = h // nh
    rng = np.random.default_rng(a.seed)
    tensors = [("model.embed_tokens.weight", (V, h)), ("lm_head.weight", (V, h)), ("model.norm.weight", (h,))]
    for i in range(L):
        p = f"model.layers.{i}."
        tensors += [(p + "input_layernorm.weight", (h,)), (p + "post_attention_layernorm.weight", (h,)),
                    (p + "self_attn.q_proj.weight", (nh * hd, h)), (p + "self_attn.k_proj.weight", (nkv * hd, h)),
                    (p + "self_attn.v_proj.weight", (nkv * hd, h)), (p + "self_attn.o_proj.weight", (h, nh * hd)),
                    ]
        if a.experts:
            ef = a.expert_ffn
            tensors += [(p + "self_attn.q_norm.weight", (hd,)), (p + "self_attn.k_norm.weight", (hd,)), (p + "mlp.gate.weight", (a.experts, h))]
            if a.fused:
                tensors += [(p + "mlp.experts.gate_up_proj", (a.experts, 2 * ef, h)), (p + "mlp.experts.down_proj", (a.experts, h, ef))]
            else:
                for e in range(a.experts):
                    q = f"{p}mlp.experts.{e}."
                    tensors += [(q + "gate_proj.weight", (ef, h)), (q + "up_proj.weight", (ef, h)), (q + "down_proj.weight", (h, ef))]
        else:
            tensors += [(p + "mlp.gate_proj.weight", (ff, h)), (p + "mlp.up_proj.weight", (ff, h)), (p + "mlp.down_proj.weight", (h, ff))]
    total = sum(2 * int(np.prod(s)) for _, s in tensors)
    per = total / a.shards
    shards, cur, size = [], [], 0
    for t in tensors:
        b = 2 * int(np.prod(t[1]))
        if cur and size + b > per and len(shards) < a.shards - 1:
            shards.append(cur); cur, size = [], 0
        cur.append(t); size += b
    shards.append(cur)
    os.makedirs(a.out, exist_ok=True)
    weight_map = {}
    n = len(shards)
    for k, shard in enumerate(shards):
        name = f"model-{k + 1:05d}-of-{n:05d}.safetensors"
        header, off = {"__metadata__": {"format": "pt"}}, 0
        for tname, shape in shard:
            nb = 2 * int(np.prod(shape))
            header[tname] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [off, off + nb]}
            off += nb
            weight_map[tname] = name
        hb = json.dumps(header).encode()
        hb += b" " * ((8 - len(hb) % 8) % 8)
        with open(os.path.join(a.out, name), "wb") as f:
            f.write(struct.pack("<Q", len(hb)) + hb)
            for tname, shape in shard:
                if tname.endswith("mlp.experts.gate_up_proj"):
                    # drawn expert by expert in the per-expert layout's order (gate, up, down), so the
                    # fused checkpoint holds the same values as the per-expert one
                    E, ef = shape[0], shape[1] // 2
                    gu = np.empty((E, 2 * ef, h), dtype=np.uint16)
                    down = np.empty((E, h, ef), dtype=np.uint16)
                    for e in range(E):
                        gu[e, :ef] = bf16(0.02 * rng.standard_normal((ef, h), dtype=np.float32))
                        gu[e, ef:] = bf16(0.02 * rng.standard_normal((ef, h), dtype=np.float32))
                        down[e] = bf16(0.02 * rng.standard_normal((h, ef), dtype=np.float32))
                    f.write(gu.tobytes())
                    continue
                if tname.endswith("mlp.experts.down_proj"):
                    f.write(down.tobytes())
                    continue
                if len(shape) == 1:
                    x = 1.0 + 0.1 * rng.standard_normal(shape, dtype=np.float32)
                else:
                    x = 0.02 * rng.standard_normal(shape, dtype=np.float32)
                f.write(bf16(x).tobytes())
    with open(os.path.join(a.out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": h, "intermediate_size": ff,
           "num_hidden_layers": L, "num_attention_heads": nh, "num_key_value_heads": nkv, "max_position_embeddings": 4096,
           "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "vocab_size": V, "tie_word_embeddings": False,
           "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu", "torch_dtype": "bfloat16"}
    if a.experts:
        cfg.update({"architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe", "head_dim": hd,
                    "num_experts": a.experts, "num_experts_per_tok": a.experts_used, "moe_intermediate_size": a.expert_ffn,
                    "norm_topk_prob": True, "decoder_sparse_step": 1, "mlp_only_layers": []})
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    for fn in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model", "vocab.json", "merges.txt"]:
        src = os.path.join(a.tokenizer_from, fn)
        if os.path.exists(src):
            shutil.copy(src, a.out)
    print(f"wrote {a.out}: {sum(int(np.prod(s)) for _, s in tensors)} parameters in {n} shards")


if __name__ == "__main__":
    main()
