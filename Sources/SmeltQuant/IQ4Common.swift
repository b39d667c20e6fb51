/// ggml's `kvalues_iq4nl`: the 16 non-linear 4-bit levels of iq4_nl / iq4_xs.
nonisolated(unsafe) let kvaluesIQ4NL: UnsafePointer<Int8> = makeTable([-127, -104, -83, -65, -49, -35, -22, -10,
                                                   1, 13, 25, 38, 53, 69, 89, 113])

/// ggml's `quantize_row_iq4_nl_impl` for one super-block of `superBlockSize` values
/// (32 for iq4_nl, 256 for iq4_xs) made of 32-value blocks. Writes the f16 scale at
/// `dh`, the nibbles at `q4`, and for several blocks the 6-bit block scales at
/// `scalesH` (u16, little-endian) / `scalesL`. `weight` holds 32 floats, `scales`
/// superBlockSize/32 floats, `L` superBlockSize bytes of scratch.
@inline(__always)
func quantizeIQ4Impl(superBlockSize: Int, _ x: UnsafePointer<Float>, dh: UnsafeMutableRawPointer,
                     q4: UnsafeMutablePointer<UInt8>, scalesH: UnsafeMutableRawPointer?,
                     scalesL: UnsafeMutablePointer<UInt8>?, scales: UnsafeMutablePointer<Float>,
                     weight: UnsafeMutablePointer<Float>, L: UnsafeMutablePointer<UInt8>,
                     quantWeights: UnsafePointer<Float>?, ntry: Int) {
    let blockSize = 32
    let values = kvaluesIQ4NL
    var sigma2: Float = 0
    for j in 0..<superBlockSize { sigma2 += x[j] * x[j] }
    sigma2 *= 2 / Float(superBlockSize)

    for j in 0..<(superBlockSize / 2) { q4[j] = 0 }
    storeU16(dh, 0, fp32ToFP16(0))

    var maxScale: Float = 0, amaxScale: Float = 0
    let nblocks = superBlockSize / blockSize
    for ib in 0..<nblocks {
        let xb = x + ib * blockSize
        let Lb = L + ib * blockSize
        if let qw0 = quantWeights {
            let qw = qw0 + ib * blockSize
            for j in 0..<blockSize { weight[j] = qw[j] * (sigma2 + xb[j] * xb[j]).squareRoot() }
        } else {
            for j in 0..<blockSize { weight[j] = xb[j] * xb[j] }
        }
        var amax: Float = 0, max: Float = 0
        for j in 0..<blockSize {
            let ax = abs(xb[j])
            if ax > amax { amax = ax; max = xb[j] }
        }
        if amax < groupMaxEps {
            scales[ib] = 0
            continue
        }
        var d: Float = ntry > 0 ? -max / Float(values[0]) : max / Float(values[0])
        var id = 1 / d
        var sumqx: Float = 0, sumq2: Float = 0
        for j in 0..<blockSize {
            let al = id * xb[j]
            let l = bestIndexInt8(16, values, al)
            Lb[j] = UInt8(truncatingIfNeeded: l)
            let q = Float(values[l])
            let w = weight[j]
            sumqx += w * q * xb[j]
            sumq2 += w * q * q
        }
        d = sumq2 > 0 ? sumqx / sumq2 : 0
        var best = d * sumqx
        if ntry >= 0 {
            for itry in -ntry...ntry {
                id = Float(itry + Int(values[0])) / max
                sumqx = 0
                sumq2 = 0
                for j in 0..<blockSize {
                    let al = id * xb[j]
                    let l = bestIndexInt8(16, values, al)
                    let q = Float(values[l])
                    let w = weight[j]
                    sumqx += w * q * xb[j]
                    sumq2 += w * q * q
                }
                if sumq2 > 0 && sumqx * sumqx > best * sumq2 {
                    d = sumqx / sumq2
                    best = d * sumqx
                }
            }
        }
        scales[ib] = d
        let absD = abs(d)
        if absD > amaxScale { amaxScale = absD; maxScale = d }
    }

    if nblocks > 1 {
        var sh: UInt16 = 0
        let d = -maxScale / 32
        storeU16(dh, 0, fp32ToFP16(d))
        let id: Float = d != 0 ? 1 / d : 0
        for ib in 0..<nblocks {
            var l = nearestInt(id * scales[ib])
            l = Swift.max(-32, Swift.min(31, l))
            let dl = d * Float(l)
            let idl: Float = dl != 0 ? 1 / dl : 0
            let Lb = L + ib * blockSize
            let xb = x + ib * blockSize
            for j in 0..<blockSize { Lb[j] = UInt8(truncatingIfNeeded: bestIndexInt8(16, values, idl * xb[j])) }
            l += 32
            let lL = UInt8(truncatingIfNeeded: l & 0xf)
            let lH = UInt16(truncatingIfNeeded: l >> 4)
            if ib % 2 == 0 { scalesL![ib / 2] = lL } else { scalesL![ib / 2] |= lL << 4 }
            sh |= lH << UInt16(2 * (ib % 8))
        }
        storeU16(scalesH!, 0, sh)
    } else {
        storeU16(dh, 0, fp32ToFP16(scales[0]))
        if ntry > 0 {
            let id: Float = scales[0] != 0 ? 1 / scales[0] : 0
            for j in 0..<superBlockSize { L[j] = UInt8(truncatingIfNeeded: bestIndexInt8(16, values, id * x[j])) }
        }
    }

    for i in 0..<(superBlockSize / 32) {
        for j in 0..<16 { q4[16 * i + j] = L[32 * i + j] | (L[32 * i + 16 + j] << 4) }
    }
}
