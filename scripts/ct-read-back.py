#!/usr/bin/env python3
"""Reads a compressed-tensors checkpoint with the reference readers (test helper).

  ct-read-back.py FOLDER OUT.safetensors [--transformers]

1. validates config.json's quantization_config with compressed-tensors' QuantizationConfig;
2. dequantizes model.safetensors with compressed-tensors' CompressedTensorsDequantizer (file by
   file, CPU) and writes every resulting tensor as float32 to OUT.safetensors;
3. with --transformers: loads the folder with transformers' AutoModelForCausalLM (which decompresses
   compressed-tensors checkpoints on CPU), writes its linear weights as float32 under the prefix
   "transformers." into the same file, and prints the logits' shape of one forward pass.

Needs the opt-in venv (make venv-ct): compressed-tensors, torch (CPU), transformers.
"""
import json
import os
import sys

import torch
from compressed_tensors.entrypoints.convert.converters.ct_dequantizer import CompressedTensorsDequantizer
from compressed_tensors.quantization import QuantizationConfig
from safetensors.torch import load_file, save_file


def main():
    folder, out = sys.argv[1], sys.argv[2]
    cfg = json.load(open(os.path.join(folder, "config.json")))
    QuantizationConfig.model_validate(cfg["quantization_config"])
    files = [os.path.join(folder, f) for f in sorted(os.listdir(folder)) if f.endswith(".safetensors")]
    # The file-based dequantizer cannot see module classes: a "Linear" target also matches other 2-D
    # `.weight` tensors (embeddings), so the modules without quantization parameters are ignored explicitly.
    names = set()
    for f in files:
        names |= set(load_file(f).keys())
    plain = [n[: -len(".weight")] for n in names if n.endswith(".weight") and n[: -len(".weight")] + ".weight_scale" not in names]
    dq = CompressedTensorsDequantizer(folder, ignore=plain, dtype=torch.float32)
    tensors = {}
    for f in files:
        t = load_file(f)
        # static activation scales (FP8's input_scale) are not weight parameters: the dequantizer's
        # validate() would call them orphans, so they are kept as they are
        scales = {k: t.pop(k) for k in list(t) if k.endswith(".input_scale")}
        tensors.update(dq.validate(t))
        tensors.update(scales)
    result = {k: v.to(torch.float32).contiguous() for k, v in tensors.items()}
    if "--transformers" in sys.argv[3:]:
        from transformers import AutoModelForCausalLM, CompressedTensorsConfig
        model = AutoModelForCausalLM.from_pretrained(
            folder, dtype="auto", quantization_config=CompressedTensorsConfig(run_compressed=False))
        model.eval()
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Linear) and name != "lm_head":
                result["transformers." + name + ".weight"] = module.weight.detach().to(torch.float32).contiguous()
        with torch.no_grad():
            logits = model(torch.tensor([[1, 2, 3, 4]])).logits
        assert torch.isfinite(logits).all()
        print("logits", tuple(logits.shape))
    save_file(result, out)
    print(f"{len(result)} tensors")


if __name__ == "__main__":
    main()
