#!/usr/bin/env python3
"""Writes recipes/<PRESET>.yaml for llama.cpp's llama-quantize presets, then
Sources/SmeltQuantize/RecipeBuiltins.swift embedding every recipes/*.yaml
(presets and Smelt's own recipes) so the tool needs no files at run time.

The rules transcribe llama_tensor_get_type_impl (src/llama-quant.cpp at the
fixture commit 34af94cd9); Tests/SmeltQuantizeTests/RecipePresetTests.swift
checks each file against LlamaPresets.plan (the executable reference) on many
model shapes, and that the embedded copies equal the files.

Usage: scripts/gen-preset-recipes.py            (from the repository root)
       scripts/gen-preset-recipes.py --embed-only
"""
import os, sys

BLOCK = {"q4_0": 32, "q4_1": 32, "q5_0": 32, "q5_1": 32, "q8_0": 32, "q2_K": 256, "q3_K": 256,
         "q4_K": 256, "q5_K": 256, "q6_K": 256, "iq2_xxs": 256, "iq2_xs": 256, "iq2_s": 256,
         "iq3_xxs": 256, "iq3_s": 256, "iq1_s": 256, "iq1_m": 256, "iq4_nl": 32, "iq4_xs": 256,
         "tq1_0": 256, "tq2_0": 256, "mxfp4": 32, "q1_0": 128, "f16": 1, "bf16": 1, "f32": 1}

DEFAULT = {"Q4_0": "q4_0", "Q4_1": "q4_1", "Q5_0": "q5_0", "Q5_1": "q5_1", "Q8_0": "q8_0",
           "F16": "f16", "BF16": "bf16", "F32": "f32", "Q1_0": "q1_0", "MXFP4_MOE": "mxfp4",
           "Q2_K": "q2_K", "Q2_K_S": "q2_K", "IQ3_XS": "iq3_s", "Q3_K_S": "q3_K", "Q3_K_M": "q3_K",
           "Q3_K_L": "q3_K", "Q4_K_S": "q4_K", "Q4_K_M": "q4_K", "Q5_K_S": "q5_K", "Q5_K_M": "q5_K",
           "Q6_K": "q6_K", "TQ1_0": "tq1_0", "TQ2_0": "tq2_0", "IQ2_XXS": "iq2_xxs", "IQ2_XS": "iq2_xs",
           "IQ2_S": "iq2_xs", "IQ2_M": "iq2_s", "IQ3_XXS": "iq3_xxs", "IQ1_S": "iq1_s", "IQ1_M": "iq1_m",
           "IQ4_NL": "iq4_nl", "IQ4_XS": "iq4_xs", "IQ3_S": "iq3_s", "IQ3_M": "iq3_s"}

IQ_LOW = {"IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ2_S", "IQ2_M", "IQ1_M"}
LOGITS_Q5K = {"IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ2_S", "IQ2_M", "IQ1_M"}
ATTN_OUT_8EXP = {"Q2_K", "IQ3_XS", "IQ3_XXS", "Q3_K_S", "Q3_K_M", "IQ4_NL", "Q4_K_S", "Q4_K_M", "IQ3_S", "IQ3_M", "IQ4_XS"}
AV = "[attn_v, attn_qkv, attn_kv_b]"


def rule(role=None, t=None, when=None, layers=None, experts=None, why=None):
    s = "  - "
    lines = []
    if role: lines.append(f"role: {role}")
    if layers: lines.append(f"layers: {layers}")
    if experts is not None: lines.append(f"experts: {'true' if experts else 'false'}")
    if when: lines.append(f"when: '{when}'")
    lines.append(f"type: {t}")
    if why: lines.append(f"why: {why}")
    return s + ("\n    ".join(lines)) + "\n"


def rules_for(p):
    d = DEFAULT[p]
    out = []
    if d in ("f16", "bf16", "f32"):
        return out
    # --- the tensor that computes the logits (output.weight, or token_embd when tied)
    if p == "MXFP4_MOE":
        out.append(("# output / tied embeddings", rule("logits", "q8_0")))
    else:
        out.append(("# output / tied embeddings: q8_0 when the row cannot hold the default type",
                    rule("logits", "q8_0", when=f'arch == "falcon" || ncols % {BLOCK[d]} != 0')))
        if p in LOGITS_Q5K:
            out.append(("", rule("logits", "q5_K")))
        elif d != "q8_0":
            out.append(("", rule("logits", "q6_K")))
    if p == "MXFP4_MOE":
        out.append(("# expert tensors in mxfp4, everything else q8_0",
                    rule(None, "mxfp4", when='ne2 > 1 && arch != "bailingmoe3"')))
        out.append(("", rule("[ffn_up, ffn_gate, ffn_down]", "mxfp4", when="ne2 > 1")))
        out.append(("", rule(None, "q8_0")))
        return out
    # --- token embeddings (untied)
    te = {"IQ2_XXS": "q2_K", "IQ2_XS": "q2_K", "IQ1_S": "q2_K", "IQ1_M": "q2_K", "IQ2_S": "iq3_s",
          "IQ2_M": "iq3_s", "IQ3_XXS": "iq3_s", "TQ1_0": "q4_K", "TQ2_0": "q4_K"}.get(p)
    if te:
        out.append(("# token embeddings", rule("token_embd", te)))
    if p in IQ_LOW:
        up = "iq3_s" if p in ("IQ2_S", "IQ2_M") else "q2_K"
        out.append(("# attn_v (and fused qkv / kv_b)", rule(AV, "q4_K", when="n_gqa >= 4 || n_expert >= 4")))
        out.append(("", rule(AV, up)))
        out.append(("", rule("attn_k", "q4_K", when="n_expert == 8")))
        out.append(("# ffn_down of the first eighth of the layers (counted, not numbered)",
                    rule("ffn_down", up, when="i < n / 8")))
        out.append(("", rule("attn_output", "q5_K", when="n_expert == 8")))
        if p in ("IQ1_S", "IQ1_M"):
            out.append(("", rule("attn_output", "iq2_xxs")))
        if p in ("IQ2_S", "IQ2_M"):
            out.append(("", rule("attn_output", "iq3_s")))
        return out
    # --- attn_v group
    av = []
    av.append(rule(AV, "q8_0", when="n_expert == 8"))
    seventy = {"Q2_K": "is_70b", "Q2_K_S": "is_70b && n_gqa >= 4", "IQ3_XXS": "is_70b && n_gqa >= 4",
               "IQ3_XS": "is_70b && n_gqa >= 4", "IQ3_S": "is_70b && n_gqa >= 4", "IQ3_M": "is_70b",
               "Q3_K_M": "is_70b", "Q4_K_M": "is_70b && !use_more_bits(i, n)", "Q4_K_S": "is_70b",
               "Q3_K_S": "is_70b"}.get(p)
    if seventy:
        av.append(rule(AV, "q5_K", when=seventy))
    if p == "Q2_K":
        av.append(rule(AV, "q4_K", when="n_gqa >= 4")); av.append(rule(AV, "q3_K"))
    elif p in ("Q2_K_S", "IQ3_XS", "IQ3_S"):
        av.append(rule(AV, "q4_K", when="n_gqa >= 4"))
    elif p == "IQ3_XXS":
        av.append(rule(AV, "q4_K", when="n_gqa >= 4")); av.append(rule(AV, "iq3_s", when="!has_imatrix"))
    elif p == "IQ3_M":
        av.append(rule(AV, "q4_K"))
    elif p == "Q3_K_M":
        av.append(rule(AV, "q5_K", when="i < 2")); av.append(rule(AV, "q4_K"))
    elif p == "Q3_K_L":
        av.append(rule(AV, "q5_K"))
    elif p in ("IQ4_NL", "IQ4_XS"):
        av.append(rule(AV, "q5_K", when="n_gqa >= 4"))
    elif p in ("Q4_K_M", "Q5_K_M"):
        av.append(rule(AV, "q6_K", layers="use_more_bits"))
    elif p == "Q4_K_S":
        av.append(rule(AV, "q5_K", when="i < 4"))
    out.append(("# attn_v (and fused qkv / kv_b, counted together)", av[0]))
    out += [("", r) for r in av[1:]]
    # --- attn_k / attn_q
    out.append(("# attn_k, attn_q", rule("attn_k", "q8_0", when="n_expert == 8")))
    if p == "IQ3_XS":
        out.append(("", rule("[attn_k, attn_q]", "iq3_xxs")))
    if p == "IQ3_XXS":
        out.append(("", rule("[attn_k, attn_q]", "iq2_s")))
    # --- ffn_down (layers: llama.cpp's layer index li of n = block_count)
    fd = []
    if p == "Q2_K":
        fd.append(rule("ffn_down", "q3_K"))
    elif p == "Q2_K_S":
        fd.append(rule("ffn_down", "q4_K", layers="first 1/8"))
    elif p == "IQ3_XXS":
        fd.append(rule("ffn_down", "q4_K", layers="first 1/8", when="!has_imatrix"))
        fd.append(rule("ffn_down", "q3_K", when="!has_imatrix"))
    elif p == "Q3_K_M":
        fd.append(rule("ffn_down", "q5_K", layers="first 1/16"))
        fd.append(rule("ffn_down", "q4_K", when='arch != "falcon"'))
        fd.append(rule("ffn_down", "q4_K", layers="use_more_bits"))
    elif p == "IQ3_M":
        fd.append(rule("ffn_down", "q4_K", layers="first 1/8"))
        fd.append(rule("ffn_down", "q4_K", layers="use_more_bits", when="n_expert == 8"))
    elif p == "Q3_K_L":
        fd.append(rule("ffn_down", "q4_K", when='arch == "falcon"'))
        fd.append(rule("ffn_down", "q5_K"))
    elif p == "Q4_K_M":
        fd.append(rule("ffn_down", "q6_K", layers="first 1/16", when='arch == "falcon"'))
        fd.append(rule("ffn_down", "q5_K", layers="use_more_bits", when='arch == "falcon"'))
        fd.append(rule("ffn_down", "q6_K", layers="use_more_bits", when='arch != "falcon"'))
    elif p in ("IQ4_NL", "IQ4_XS"):
        fd.append(rule("ffn_down", "q5_K", layers="first 1/8", when="!has_imatrix"))
    elif p == "Q5_K_M":
        fd.append(rule("ffn_down", "q6_K", layers="use_more_bits"))
    elif p == "Q4_K_S":
        fd.append(rule("ffn_down", "q5_K", layers="first 1/8", when='arch != "falcon"'))
    elif p in ("Q4_0", "Q5_0"):
        fd.append(rule("ffn_down", "q4_1" if p == "Q4_0" else "q5_1", layers="first 1/8", when="has_imatrix"))
    if fd:
        out.append(("# ffn_down", fd[0])); out += [("", r) for r in fd[1:]]
    # --- attn_output
    ao = []
    if p in ATTN_OUT_8EXP:
        ao.append(rule("attn_output", "q5_K", when='arch != "falcon" && n_expert == 8'))
    nf = {"Q2_K": "q3_K", "IQ3_XXS": "iq3_s", "Q3_K_M": "q4_K", "Q3_K_L": "q5_K", "IQ3_M": "q4_K"}.get(p)
    if nf:
        ao.append(rule("attn_output", nf, when='arch != "falcon" && n_expert != 8'))
    if p == "Q3_K_L":
        ao.append(rule("attn_output", "q4_K", when='arch == "falcon"'))
    if ao:
        out.append(("# attn_output", ao[0])); out += [("", r) for r in ao[1:]]
    # --- ffn_gate / ffn_up
    if p == "IQ3_XS":
        out.append(("# ffn_gate / ffn_up of the middle layers",
                    rule("[ffn_gate, ffn_up]", "iq3_xxs", when="li >= n / 8 && li < 7 * n / 8")))
    return out


def preset_yaml(p):
    d = DEFAULT[p]
    s = f"# llama.cpp preset {p} (llama-quantize ... {p}), transcribed from llama_tensor_get_type_impl\n"
    s += "# (src/llama-quant.cpp, commit 34af94cd9). Generated by scripts/gen-preset-recipes.py; checked\n"
    s += "# against LlamaPresets.plan by RecipePresetTests. Unchanged, it writes llama-quantize's bytes.\n"
    s += f"name: {p}\nfile_type: {p}\ndefault: {d}\n"
    if p == "Q2_K_S":
        s += "requires_imatrix: [iq3_xxs, iq2_xxs, iq2_xs, iq2_s, iq1_m, iq1_s, q2_K]\n"
    rs = rules_for(p)
    if rs:
        s += "rules:\n"
        for c, r in rs:
            if c: s += f"  {c}\n"
            s += r
    return s


def embed(root):
    names = sorted(f[:-5] for f in os.listdir(os.path.join(root, "recipes")) if f.endswith(".yaml"))
    out = ["// Generated by scripts/gen-preset-recipes.py from recipes/*.yaml: do not edit.",
           "// RecipePresetTests checks that these texts equal the files.", "",
           "/// The recipe files shipped inside the binary (name → YAML text).",
           "public enum BuiltinRecipes {",
           "    /// Every built-in recipe, by file name (without `.yaml`).",
           "    public static let texts: [String: String] = ["]
    for n in names:
        t = open(os.path.join(root, "recipes", n + ".yaml")).read()
        assert '"""#' not in t
        out.append(f'        "{n}": #"""\n{t}\n"""#,')
    out += ["    ]", "}", ""]
    open(os.path.join(root, "Sources/SmeltQuantize/RecipeBuiltins.swift"), "w").write("\n".join(out))


if __name__ == "__main__":
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if "--embed-only" not in sys.argv:
        for p in DEFAULT:
            open(os.path.join(root, "recipes", p + ".yaml"), "w").write(preset_yaml(p))
    embed(root)
