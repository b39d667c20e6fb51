#!/usr/bin/env python3
"""One linear layer with its input activations fake-quantized as compressed-tensors' forward pass does
(`quantization/lifecycle/forward.py`), in numpy float32, for SmeltEvalTests: an independent check of the
evaluator's activation quantization.

usage: fake_quant_reference.py DIR   (DIR/params.json {"mode", "tokens", "cols", "rows", "scale"},
DIR/x.f32 tokens×cols, DIR/w.f32 rows×cols → DIR/y.f32 tokens×rows)
modes: int8_token (W8A8: dynamic per-token int8), fp8_token (FP8_DYNAMIC), fp8_tensor (FP8: static scale)
"""
import json
import sys

import numpy as np

F32 = np.float32


def e4m3(v):
    """Round float32 values to the nearest float8_e4m3fn value (round half to even, subnormals)."""
    a = np.abs(v).astype(np.float64)
    e = np.floor(np.log2(np.where(a > 0, a, 1.0)))
    e = np.maximum(e, -6)                  # below 2^-6: subnormal spacing 2^-9
    step = np.exp2(e - 3)
    return (np.sign(v) * np.round(a / step) * step).astype(F32)


def fake_quant(x, mode, static_scale):
    if mode == "int8_token":
        lo = np.minimum(x.min(axis=1, keepdims=True), 0)
        hi = np.maximum(x.max(axis=1, keepdims=True), 0)
        s = (np.maximum(np.abs(lo), np.abs(hi)) / F32(127.5)).astype(F32)
        s = np.where(s == 0, np.finfo(F32).eps, s).astype(F32)
        q = np.clip(np.round((x / s).astype(F32)), -128, 127)
        return (q * s).astype(F32)
    if mode == "fp8_token":
        lo = np.minimum(x.min(axis=1, keepdims=True), 0)
        hi = np.maximum(x.max(axis=1, keepdims=True), 0)
        s = (np.maximum(np.abs(lo), np.abs(hi)) / F32(448)).astype(F32)
        s = np.where(s == 0, np.finfo(F32).eps, s).astype(F32)
    else:
        s = F32(static_scale)
    q = e4m3(np.clip((x / s).astype(F32), -448, 448))
    return (q * s).astype(F32)


def main():
    d = sys.argv[1]
    p = json.load(open(f"{d}/params.json"))
    x = np.fromfile(f"{d}/x.f32", dtype="<f4").reshape(p["tokens"], p["cols"])
    w = np.fromfile(f"{d}/w.f32", dtype="<f4").reshape(p["rows"], p["cols"])
    xq = fake_quant(x, p["mode"], p.get("scale", 0.0))
    y = xq.astype(np.float64) @ w.astype(np.float64).T
    y.astype("<f4").tofile(f"{d}/y.f32")


if __name__ == "__main__":
    main()
