#!/usr/bin/env python3
"""transformers' logits for tiny checkpoints with RoPE scaling (linear, llama3, yarn).

Run by hand, never in CI: it needs torch and transformers, which Smelt's tests do not.
The checkpoints are the shared tiny fixtures (../shared/models/tiny) with `rope_scaling`
added to config.json; the weights are used as they are (symlinked), so nothing but the
config and the logits is new, and the Swift test (Tests/SmeltEvalTests/RopeScalingTests.swift)
rebuilds the same folders itself.

For each variant it writes, into Tests/SmeltEvalTests/Fixtures/rope-scaling/:
  VARIANT.f32   float32 little-endian logits, row-major [len(positions), n_vocab]
  VARIANT.json  the model, the rope_scaling object, the config overrides, token ids,
                the positions kept, n_vocab, and the torch/transformers versions

The token sequence (256 ids, fixed seed) runs past each variant's original context,
so positions beyond it, where the scalings differ most, are among those kept.

    python3 -m venv /work/tf-venv
    /work/tf-venv/bin/pip install torch==2.13.0 transformers==4.57.6 safetensors numpy
    /work/tf-venv/bin/python scripts/make-rope-scaling-fixtures.py [--shared ../shared]
"""
import argparse
import json
import os
import shutil
import tempfile

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM

# name: (tiny model, rope_scaling, other config.json overrides)
VARIANTS = {
    "llama-linear": ("tiny-llama", {"rope_type": "linear", "factor": 4.0}, {}),
    "llama-llama3": ("tiny-llama", {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                    "high_freq_factor": 4.0, "original_max_position_embeddings": 64}, {}),
    # max_position_embeddings = factor x original: transformers takes YaRN's factor from
    # that ratio when original_max_position_embeddings is given, llama.cpp from `factor`.
    "qwen3-yarn": ("tiny-qwen3", {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 128},
                   {"max_position_embeddings": 512}),
}
SEQ_LEN = 256
POSITIONS = [0, 1, 17, 63, 64, 100, 127, 128, 200, 255]


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    ap.add_argument("--shared", default=os.path.join(os.path.dirname(root), "shared"))
    ap.add_argument("--out", default=os.path.join(root, "Tests/SmeltEvalTests/Fixtures/rope-scaling"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    for name, (model, scaling, overrides) in VARIANTS.items():
        src = os.path.join(args.shared, "models/tiny", model)
        with open(os.path.join(src, "config.json")) as f:
            cfg = json.load(f)
        cfg["rope_scaling"] = scaling
        cfg.update(overrides)
        vocab = cfg["vocab_size"]
        ids = np.random.RandomState(14).randint(3, min(vocab, 1000), size=SEQ_LEN).tolist()
        with tempfile.TemporaryDirectory() as tmp:
            for f in os.listdir(src):
                if f != "config.json":
                    os.symlink(os.path.join(src, f), os.path.join(tmp, f))
            with open(os.path.join(tmp, "config.json"), "w") as f:
                json.dump(cfg, f, indent=2)
            m = AutoModelForCausalLM.from_pretrained(tmp, dtype=torch.float32, attn_implementation="eager")
            m.eval()
            with torch.no_grad():
                logits = m(torch.tensor([ids])).logits[0].float().numpy()
        # a control: the same tokens without scaling must differ (else the fixture exercises nothing)
        plain = dict(cfg)
        plain["rope_scaling"] = None
        with tempfile.TemporaryDirectory() as tmp:
            for f in os.listdir(src):
                if f != "config.json":
                    os.symlink(os.path.join(src, f), os.path.join(tmp, f))
            with open(os.path.join(tmp, "config.json"), "w") as f:
                json.dump(plain, f, indent=2)
            m0 = AutoModelForCausalLM.from_pretrained(tmp, dtype=torch.float32, attn_implementation="eager")
            with torch.no_grad():
                base = m0(torch.tensor([ids])).logits[0].float().numpy()
        kept = logits[POSITIONS].astype("<f4")
        diff = float(np.abs(base[POSITIONS] - logits[POSITIONS]).max() / np.abs(logits[POSITIONS]).max())
        kept.tofile(os.path.join(args.out, name + ".f32"))
        meta = {
            "model": model, "rope_scaling": scaling, "config_overrides": overrides,
            "token_ids": ids, "positions": POSITIONS, "n_vocab": int(logits.shape[1]),
            "unscaled_relative_difference": diff,
            "torch": torch.__version__, "transformers": transformers.__version__,
            "made_by": "scripts/make-rope-scaling-fixtures.py",
        }
        with open(os.path.join(args.out, name + ".json"), "w") as f:
            json.dump(meta, f, indent=1)
            f.write("\n")
        print(f"{name}: {kept.shape} logits, unscaled differs by {diff:.3g} relative")


if __name__ == "__main__":
    main()
