#!/usr/bin/env python3
"""GPTQ as IST-DASLab/gptq (`fasterquant`) and llm-compressor (`quantize_weight`) compute it, in numpy
(float64), for SmeltCalibrationTests: an independent reimplementation of the reference algorithm that
Smelt's Swift GPTQ is compared with.

usage: gptq_reference.py DIR   (DIR/params.json, DIR/w.f64 rows×cols, DIR/h.f64 cols×cols → DIR/q.f64)
"""
import json
import sys

import numpy as np


def qparams(lo, hi, bits, sym, eps):
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    lo = np.minimum(lo, 0.0)
    hi = np.maximum(hi, 0.0)
    if sym:
        s = np.maximum(np.abs(lo), np.abs(hi)) / ((qmax - qmin) / 2)
        s = np.where(s == 0, eps, s)
        return s, np.zeros_like(s)
    s = (hi - lo) / (qmax - qmin)
    s = np.where(s == 0, eps, s)
    z = np.clip(np.round(qmin - lo / s), qmin, qmax)
    return s, z


def fake_quant(x, s, z, bits):
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    q = np.clip(np.round(x / s + z), qmin, qmax)   # numpy rounds half to even, as torch.round
    return (q - z) * s


def gptq(W, H, bits, sym, groupsize, actorder, blocksize, percdamp, eps):
    W = W.copy()
    H = H.copy()
    rows, cols = W.shape
    gs = groupsize if groupsize else cols
    ngroups = (cols + gs - 1) // gs
    S = np.zeros((rows, ngroups))
    Z = np.zeros((rows, ngroups))

    def find(g, Wsrc, c0):
        blk = Wsrc[:, c0:c0 + gs]
        S[:, g], Z[:, g] = qparams(blk.min(axis=1), blk.max(axis=1), bits, sym, eps)

    perm = np.arange(cols)
    if actorder or not groupsize:
        for g in range(ngroups):
            find(g, W, g * gs)
    if actorder:
        perm = np.argsort(-np.diag(H), kind="stable")
        W = W[:, perm]
        H = H[perm][:, perm]
    dead = np.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    damp = percdamp * np.mean(np.diag(H))
    H[np.arange(cols), np.arange(cols)] += damp
    L = np.linalg.cholesky(H)
    Linv = np.linalg.inv(L)
    Hinv = np.linalg.cholesky(Linv.T @ Linv).T      # upper factor of H^-1
    Q = np.zeros_like(W)
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        W1 = W[:, i1:i2].copy()
        Err1 = np.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        for i in range(i2 - i1):
            col = i1 + i
            if actorder:
                g = perm[col] // gs
            else:
                g = col // gs
                if groupsize and col % gs == 0:
                    find(g, W, col)
            w = W1[:, i]
            d = Hinv1[i, i]
            q = fake_quant(w, S[:, g], Z[:, g], bits)
            Q[:, col] = q
            err = (w - q) / d
            W1[:, i:] -= np.outer(err, Hinv1[i, i:])
            Err1[:, i] = err
        W[:, i2:] -= Err1 @ Hinv[i1:i2, i2:]
    out = np.zeros_like(Q)
    out[:, perm] = Q
    return out


def main():
    d = sys.argv[1]
    p = json.load(open(f"{d}/params.json"))
    rows, cols = p["rows"], p["cols"]
    W = np.fromfile(f"{d}/w.f64", dtype="<f8").reshape(rows, cols)
    H = np.fromfile(f"{d}/h.f64", dtype="<f8").reshape(cols, cols)
    Q = gptq(W, H, p["bits"], p["symmetric"], p["group_size"], p["actorder"], p["block_size"], p["dampening"], p["eps"])
    Q.astype("<f8").tofile(f"{d}/q.f64")


if __name__ == "__main__":
    main()
