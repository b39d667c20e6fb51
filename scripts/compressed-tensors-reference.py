#!/usr/bin/env python3
"""Reference checkpoints from llm-compressor, and their comparison with Smelt's (by hand, never in CI).

  make:    python scripts/compressed-tensors-reference.py make HF_DIR OUT_DIR [--schemes FP8,W8A8,...]
           runs llm-compressor's oneshot with QuantizationModifier(scheme=S, targets="Linear",
           ignore=["lm_head"]) per scheme and saves OUT_DIR/S (save_compressed=True). FP8 (static input
           scales) is calibrated on calibration-data/calibration_data_v5_rc.txt. --group-size N: the
           preset's weights in groups of N columns (config_groups with the changed scheme).
  compare: python scripts/compressed-tensors-reference.py compare REF_DIR SMELT_DIR
           tensor by tensor (names, dtypes, shapes, bytes) and quantization_config.

Needs a venv OUTSIDE the repository with llmcompressor, compressed-tensors, transformers and torch (CPU);
the versions used are recorded in docs/COMPRESSED-TENSORS.md.
"""
import argparse
import json
import os
import sys


def make(args):
    import torch
    from datasets import Dataset
    from llmcompressor import oneshot
    from llmcompressor.modifiers.quantization import QuantizationModifier
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    for scheme in args.schemes.split(","):
        out = os.path.join(args.out, scheme + args.suffix)
        model = AutoModelForCausalLM.from_pretrained(args.model, dtype="auto")
        tok = AutoTokenizer.from_pretrained(args.model)
        if args.group_size:
            from compressed_tensors.quantization import preset_name_to_scheme
            qs = preset_name_to_scheme(scheme, ["Linear"])
            qs.weights.group_size = args.group_size
            recipe = QuantizationModifier(config_groups={"group_0": qs}, ignore=args.ignore.split(","))
        else:
            recipe = QuantizationModifier(targets="Linear", scheme=scheme, ignore=args.ignore.split(","))
        kw = {}
        if scheme == "FP8":
            text = open(args.calibration, encoding="utf-8").read()
            ids = tok(text, add_special_tokens=False)["input_ids"]
            n = args.seq_len
            chunks = [ids[i:i + n] for i in range(0, len(ids) - n + 1, n)][: args.samples]
            ds = Dataset.from_dict({"input_ids": chunks, "attention_mask": [[1] * n for _ in chunks]})
            kw = dict(dataset=ds, max_seq_length=n, num_calibration_samples=len(chunks))
        oneshot(model=model, recipe=recipe, **kw)
        model.save_pretrained(out, save_compressed=True)
        tok.save_pretrained(out)
        print(f"{scheme}: {out}", flush=True)


def load(folder):
    from safetensors.torch import load_file
    t = {}
    for f in sorted(os.listdir(folder)):
        if f.endswith(".safetensors"):
            t.update(load_file(os.path.join(folder, f)))
    return t


def compare(args):
    import torch
    ref, got = load(args.ref), load(args.smelt)
    bad = 0
    for k in sorted(set(ref) | set(got)):
        if k not in got:
            print(f"missing in Smelt: {k}"); bad += 1; continue
        if k not in ref:
            print(f"extra in Smelt: {k}"); bad += 1; continue
        a, b = ref[k], got[k]
        if a.dtype != b.dtype or tuple(a.shape) != tuple(b.shape):
            print(f"{k}: reference {a.dtype} {tuple(a.shape)}, Smelt {b.dtype} {tuple(b.shape)}"); bad += 1; continue
        ab = a.contiguous().view(torch.uint8) if a.element_size() == 1 else a.contiguous().view(torch.int16 if a.element_size() == 2 else (torch.int32 if a.element_size() == 4 else torch.int64))
        bb = b.contiguous().view(ab.dtype)
        diff = (ab != bb).sum().item()
        if diff:
            print(f"{k}: {diff} of {a.numel()} elements differ"); bad += 1
    rq = json.load(open(os.path.join(args.ref, "config.json")))["quantization_config"]
    sq = json.load(open(os.path.join(args.smelt, "config.json")))["quantization_config"]
    rq.pop("version", None); sq.pop("version", None)
    if rq != sq:
        print("quantization_config differs:")
        print(" reference:", json.dumps(rq, sort_keys=True))
        print(" Smelt:    ", json.dumps(sq, sort_keys=True))
        bad += 1
    print(f"{len(ref)} reference tensors, {len(got)} Smelt tensors, {bad} differences")
    return 1 if bad else 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("model"); m.add_argument("out")
    m.add_argument("--schemes", default="FP8_DYNAMIC,W8A8,W4A16,W4A16_ASYM,FP8")
    m.add_argument("--calibration", default=os.path.join(os.path.dirname(__file__), "..", "calibration-data", "calibration_data_v5_rc.txt"))
    m.add_argument("--samples", type=int, default=64)
    m.add_argument("--ignore", default="lm_head", help="comma-separated module names or re:REGEX")
    m.add_argument("--suffix", default="", help="appended to the scheme's folder name")
    m.add_argument("--seq-len", type=int, default=512)
    m.add_argument("--group-size", type=int, default=0, help="group size of the int4 group schemes (default: the preset's 128)")
    c = sub.add_parser("compare")
    c.add_argument("ref"); c.add_argument("smelt")
    a = p.parse_args()
    if a.cmd == "make":
        make(a)
    else:
        sys.exit(compare(a))


if __name__ == "__main__":
    main()
