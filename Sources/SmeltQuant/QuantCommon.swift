// Helpers shared by the quantization kernels. Each one reproduces a routine of
// ggml (ggml-quants.c / ggml-impl.h at llama.cpp 34af94cd9) operation for
// operation: same evaluation order, same precision (Float, never Double), no
// fused multiply-add, the same integer truncations.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Scalars

/// ggml's `GROUP_MAX_EPS`.
let groupMaxEps: Float = 1e-15

/// ggml's `nearest_int`: round half to even through the 1.5·2^23 magic number.
/// Only meaningful for |fval| ≤ 4194303 (as in ggml, larger values wrap the same way).
@inline(__always) func nearestInt(_ fval: Float) -> Int32 {
    let val = fval + 12582912.0
    return Int32(bitPattern: val.bitPattern & 0x007f_ffff) &- 0x0040_0000
}

/// A C float→int conversion as x86-64 does it (`cvttss2si`): truncation toward zero,
/// and INT32_MIN for NaN and values out of range (C leaves those undefined).
@inline(__always) func truncToInt32(_ f: Float) -> Int32 {
    if f > -2147483904.0 && f < 2147483648.0 { return Int32(f) }
    return Int32.min
}

/// C `lroundf` (half away from zero) for the values the kernels feed it; non-finite gives Int.min.
@inline(__always) func lroundToInt(_ f: Float) -> Int {
    let r = f.rounded(.toNearestOrAwayFromZero)
    if r > -9.2233715e18 && r < 9.2233715e18 { return Int(r) }
    return Int.min
}

/// ggml's `GGML_FP32_TO_FP16` (`ggml_compute_fp32_to_fp16`): round to nearest even,
/// NaN becomes 0x7E00 with the sign kept.
@inline(__always) func fp32ToFP16(_ f: Float) -> UInt16 {
    let scaleToInf = Float(bitPattern: 0x7780_0000)   // 0x1.0p+112
    let scaleToZero = Float(bitPattern: 0x0880_0000)  // 0x1.0p-110
    var base = (abs(f) * scaleToInf) * scaleToZero
    let w = f.bitPattern
    let shl1w = w &+ w
    let sign = w & 0x8000_0000
    var bias = shl1w & 0xFF00_0000
    if bias < 0x7100_0000 { bias = 0x7100_0000 }
    base = Float(bitPattern: (bias >> 1) &+ 0x0780_0000) + base
    let bits = base.bitPattern
    let expBits = (bits >> 13) & 0x0000_7C00
    let mantissaBits = bits & 0x0000_0FFF
    let nonsign = expBits &+ mantissaBits
    return UInt16(truncatingIfNeeded: (sign >> 16) | (shl1w > 0xFF00_0000 ? 0x7E00 : nonsign))
}

/// ggml's `GGML_FP16_TO_FP32` (`ggml_compute_fp16_to_fp32`), exact.
@inline(__always) func fp16ToFP32(_ h: UInt16) -> Float {
    let w = UInt32(h) << 16
    let sign = w & 0x8000_0000
    let twoW = w &+ w
    let expOffset: UInt32 = 0xE0 << 23
    let expScale = Float(bitPattern: 0x0780_0000)     // 0x1.0p-112
    let normalized = Float(bitPattern: (twoW >> 4) &+ expOffset) * expScale
    let magicMask: UInt32 = 126 << 23
    let denormalized = Float(bitPattern: (twoW >> 17) | magicMask) - 0.5
    let cutoff: UInt32 = 1 << 27
    return Float(bitPattern: sign | (twoW < cutoff ? denormalized.bitPattern : normalized.bitPattern))
}

/// `nearestInt` on eight lanes.
@inline(__always) func nearestInt8(_ fval: SIMD8<Float>) -> SIMD8<Int32> {
    let val = fval + 12582912.0
    return (unsafeBitCast(val, to: SIMD8<Int32>.self) & 0x007f_ffff) &- 0x0040_0000
}

/// `fabsf` on eight lanes (clears the sign bits).
@inline(__always) func fabs8(_ v: SIMD8<Float>) -> SIMD8<Float> {
    unsafeBitCast(unsafeBitCast(v, to: SIMD8<UInt32>.self) & 0x7fff_ffff, to: SIMD8<Float>.self)
}

/// C `log2f` from the platform libm (ggml's mxfp4 uses it; must be the same libm result).
@inline(__always) func cLog2f(_ x: Float) -> Float { log2f(x) }

// MARK: - Raw little-endian access

@inline(__always) func loadU16(_ p: UnsafeRawPointer, _ offset: Int) -> UInt16 {
    UInt16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
}

@inline(__always) func storeU16(_ p: UnsafeMutableRawPointer, _ offset: Int, _ v: UInt16) {
    p.storeBytes(of: v.littleEndian, toByteOffset: offset, as: UInt16.self)
}

@inline(__always) func loadU32(_ p: UnsafeRawPointer, _ offset: Int) -> UInt32 {
    UInt32(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
}

@inline(__always) func storeU32(_ p: UnsafeMutableRawPointer, _ offset: Int, _ v: UInt32) {
    p.storeBytes(of: v.littleEndian, toByteOffset: offset, as: UInt32.self)
}

/// Runs `body` with uninitialised stack scratch space: `floats` Floats and `bytes` bytes.
@inline(__always) func withQuantScratch<R>(floats: Int, bytes: Int,
                                           _ body: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<UInt8>) -> R) -> R {
    withUnsafeTemporaryAllocation(of: Float.self, capacity: floats) { f in
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: bytes) { b in
            body(f.baseAddress!, b.baseAddress!)
        }
    }
}

// MARK: - ggml's scale searches

/// ggml's `best_index_int8`: index of the nearest entry of the sorted table `values`.
@inline(__always) func bestIndexInt8(_ n: Int, _ values: UnsafePointer<Int8>, _ x: Float) -> Int {
    if x <= Float(values[0]) { return 0 }
    if x >= Float(values[n - 1]) { return n - 1 }
    var ml = 0, mu = n - 1
    while mu - ml > 1 {
        let mav = (ml + mu) / 2
        if x < Float(values[mav]) { mu = mav } else { ml = mav }
    }
    return x - Float(values[mu - 1]) < Float(values[mu]) - x ? mu - 1 : mu
}

/// ggml's `make_qx_quants` with `rmse_type == 1`: symmetric quants `L` in `0..<2*nmax`,
/// weights `qw` (or x² when nil); returns the scale.
@inline(__always)
func makeQxQuants(_ n: Int, _ nmax: Int32, _ x: UnsafePointer<Float>, _ L: UnsafeMutablePointer<Int8>,
                  _ qw: UnsafePointer<Float>?) -> Float {
    if let qw = qw {
        return makeQxQuantsBody(n, nmax, x, L) { qw[$0] }
    }
    return makeQxQuantsBody(n, nmax, x, L) { x[$0] * x[$0] }
}

@inline(__always)
func makeQxQuantsBody(_ n: Int, _ nmax: Int32, _ x: UnsafePointer<Float>, _ L: UnsafeMutablePointer<Int8>,
                      _ weight: (Int) -> Float) -> Float {
    var max: Float = 0
    var amax: Float = 0
    for i in 0..<n {
        let ax = abs(x[i])
        if ax > amax { amax = ax; max = x[i] }
    }
    if amax < groupMaxEps {
        for i in 0..<n { L[i] = 0 }
        return 0
    }
    let iscale = Float(-nmax) / max
    var sumlx: Float = 0
    var suml2: Float = 0
    for i in 0..<n {
        var l = nearestInt(iscale * x[i])
        l = Swift.max(-nmax, Swift.min(nmax - 1, l))
        L[i] = Int8(truncatingIfNeeded: l + nmax)
        let w = weight(i)
        let fl = Float(l)
        sumlx += w * x[i] * fl
        suml2 += w * fl * fl
    }
    var scale: Float = suml2 != 0 ? sumlx / suml2 : 0
    var best = scale * sumlx
    // ggml tries is = -9...-1, 1...9 in order. Every trial depends only on `max`, so the
    // sums of eight trials are computed side by side (each lane in ggml's exact order);
    // the accept/reject decisions are then taken trial by trial, as in ggml.
    let lo = SIMD8<Int32>(repeating: -nmax), hi = SIMD8<Int32>(repeating: nmax - 1)
    for batch in 0..<3 {
        var steps = SIMD8<Float>(repeating: 1)
        for k in 0..<8 {
            let t = batch * 8 + k
            if t < 18 { steps[k] = Float(t < 9 ? t - 9 : t - 8) }
        }
        let isc = -(SIMD8<Float>(repeating: Float(nmax)) + 0.1 * steps) / max
        var slx = SIMD8<Float>(), sl2 = SIMD8<Float>()
        for i in 0..<n {
            let xi = x[i]
            let l = pointwiseMax(lo, pointwiseMin(hi, nearestInt8(isc * xi)))
            let w = weight(i)
            let fl = SIMD8<Float>(l)
            slx += (w * xi) * fl
            sl2 += (w * fl) * fl
        }
        for k in 0..<(batch < 2 ? 8 : 2) {
            let sumlxK = slx[k], suml2K = sl2[k]
            if suml2K > 0 && sumlxK * sumlxK > best * suml2K {
                let iscK = isc[k]
                for i in 0..<n {
                    let l = nearestInt(iscK * x[i])
                    L[i] = Int8(truncatingIfNeeded: nmax + Swift.max(-nmax, Swift.min(nmax - 1, l)))
                }
                scale = sumlxK / suml2K
                best = scale * sumlxK
            }
        }
    }
    return scale
}

/// ggml's `make_q3_quants` with `do_rmse == true`: quants in `0..<2*nmax`, returns the scale.
func makeQ3Quants(_ n: Int, _ nmax: Int32, _ x: UnsafePointer<Float>, _ L: UnsafeMutablePointer<Int8>) -> Float {
    var max: Float = 0
    var amax: Float = 0
    for i in 0..<n {
        let ax = abs(x[i])
        if ax > amax { amax = ax; max = x[i] }
    }
    if amax < groupMaxEps {
        for i in 0..<n { L[i] = 0 }
        return 0
    }
    let iscale = Float(-nmax) / max
    var sumlx: Float = 0
    var suml2: Float = 0
    for i in 0..<n {
        var l = nearestInt(iscale * x[i])
        l = Swift.max(-nmax, Swift.min(nmax - 1, l))
        L[i] = Int8(truncatingIfNeeded: l)
        let w = x[i] * x[i]
        let fl = Float(l)
        sumlx += w * x[i] * fl
        suml2 += w * fl * fl
    }
    for _ in 0..<5 {
        var nChanged = 0
        for i in 0..<n {
            let w = x[i] * x[i]
            let li = Float(L[i])
            var slx = sumlx - w * x[i] * li
            if slx > 0 {
                var sl2 = suml2 - w * li * li
                var newL = nearestInt(x[i] * sl2 / slx)
                newL = Swift.max(-nmax, Swift.min(nmax - 1, newL))
                if newL != Int32(L[i]) {
                    let fn = Float(newL)
                    slx += w * x[i] * fn
                    sl2 += w * fn * fn
                    if sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                        L[i] = Int8(truncatingIfNeeded: newL)
                        sumlx = slx
                        suml2 = sl2
                        nChanged += 1
                    }
                }
            }
        }
        if nChanged == 0 { break }
    }
    for i in 0..<n { L[i] = L[i] &+ Int8(truncatingIfNeeded: nmax) }
    return suml2 > 0 ? sumlx / suml2 : 0
}

/// ggml's `make_qkx2_quants` (`strictEqual == true`) and `make_qkx3_quants` with
/// weights (`strictEqual == false`): asymmetric quants `L` in `0...nmax` with a min;
/// returns the scale and stores `-min` in `theMin`. `Laux` (ggml's scratch) is not needed
/// here and kept only to mirror ggml's signature.
@inline(__always)
func makeQkxQuants(_ n: Int, _ nmax: Int32, _ x: UnsafePointer<Float>, _ weights: UnsafePointer<Float>,
                   _ L: UnsafeMutablePointer<UInt8>, _ theMin: inout Float, _ Laux: UnsafeMutablePointer<UInt8>,
                   _ rmin: Float, _ rdelta: Float, _ nstep: Int, _ useMad: Bool, strictEqual: Bool) -> Float {
    var min = x[0]
    var max = x[0]
    var sumW = weights[0]
    var sumX = sumW * x[0]
    for i in 1..<n {
        if x[i] < min { min = x[i] }
        if x[i] > max { max = x[i] }
        let w = weights[i]
        sumW += w
        sumX += w * x[i]
    }
    if min > 0 { min = 0 }
    if strictEqual ? (max == min) : (max <= min) {
        for i in 0..<n { L[i] = 0 }
        theMin = -min
        return 0
    }
    let iscale = Float(nmax) / (max - min)
    var scale = 1 / iscale
    var bestError: Float = 0
    for i in 0..<n {
        let l = nearestInt(iscale * (x[i] - min))
        L[i] = UInt8(truncatingIfNeeded: Swift.max(0, Swift.min(nmax, l)))
        var diff = scale * Float(L[i]) + min - x[i]
        diff = useMad ? abs(diff) : diff * diff
        let w = weights[i]
        bestError += w * diff
    }
    if nstep < 1 {
        theMin = -min
        return scale
    }
    // ggml tries is = 0...nstep in order; a trial depends on `min`, which changes only when
    // a trial is accepted. Eight trials are computed side by side with the current `min`
    // (each lane in ggml's exact order) and then examined one by one; after an accepted
    // trial that changes `min`, the following trials are recomputed.
    let zero8 = SIMD8<Int32>(repeating: 0), nmax8 = SIMD8<Int32>(repeating: nmax)
    var base = 0
    while base <= nstep {
        var steps = SIMD8<Float>()
        for k in 0..<8 { steps[k] = Float(base + k) }
        let range = max - min
        let isc = (SIMD8<Float>(repeating: rmin) + rdelta * steps + Float(nmax)) / range
        var sumL = SIMD8<Float>(), sumL2 = SIMD8<Float>(), sumXL = SIMD8<Float>()
        for i in 0..<n {
            let l = pointwiseMax(zero8, pointwiseMin(nmax8, nearestInt8(isc * (x[i] - min))))
            let w = weights[i]
            let fl = SIMD8<Float>(l)
            let wfl = w * fl
            sumL += wfl
            sumL2 += wfl * fl
            sumXL += wfl * x[i]
        }
        let D = sumW * sumL2 - sumL * sumL
        var thisScale = (sumW * sumXL - sumX * sumL) / D
        var thisMin = (sumL2 * sumX - sumL * sumXL) / D
        let positive = thisMin .> 0
        thisMin.replace(with: 0, where: positive)
        thisScale.replace(with: sumXL / sumL2, where: positive)
        var curError = SIMD8<Float>()
        for i in 0..<n {
            let l = pointwiseMax(zero8, pointwiseMin(nmax8, nearestInt8(isc * (x[i] - min))))
            var diff = thisScale * SIMD8<Float>(l) + thisMin - x[i]
            diff = useMad ? fabs8(diff) : diff * diff
            curError += weights[i] * diff
        }
        let lanes = Swift.min(8, nstep - base + 1)
        var next = base + lanes
        for k in 0..<lanes where D[k] > 0 && curError[k] < bestError {
            let oldMin = min
            let iscK = isc[k]
            for i in 0..<n {
                let l = nearestInt(iscK * (x[i] - oldMin))
                L[i] = UInt8(truncatingIfNeeded: Swift.max(0, Swift.min(nmax, l)))
            }
            bestError = curError[k]
            scale = thisScale[k]
            min = thisMin[k]
            if min.bitPattern != oldMin.bitPattern {
                next = base + k + 1
                break
            }
        }
        base = next
    }
    theMin = -min
    return scale
}

/// ggml's `make_qp_quants`: non-negative quants in `0...nmax` (stored as `uint8_t`,
/// with C's wrap-around), weighted by `quantWeights`; returns the scale.
func makeQpQuants(_ n: Int, _ nmax: Int32, _ x: UnsafePointer<Float>, _ L: UnsafeMutablePointer<UInt8>,
                  _ quantWeights: UnsafePointer<Float>) -> Float {
    var max: Float = 0
    for i in 0..<n { max = max > x[i] ? max : x[i] }
    if max < groupMaxEps {
        for i in 0..<n { L[i] = 0 }
        return 0
    }
    var iscale = Float(nmax) / max
    for i in 0..<n { L[i] = UInt8(truncatingIfNeeded: nearestInt(iscale * x[i])) }
    let scale = 1 / iscale
    var bestMse: Float = 0
    for i in 0..<n {
        let diff = x[i] - scale * Float(L[i])
        let w = quantWeights[i]
        bestMse += w * diff * diff
    }
    for step in -4...4 where step != 0 {
        let iscaleIs = (0.1 * Float(step) + Float(nmax)) / max
        let scaleIs = 1 / iscaleIs
        var mse: Float = 0
        for i in 0..<n {
            var l = nearestInt(iscaleIs * x[i])
            l = Swift.min(nmax, l)
            let diff = x[i] - scaleIs * Float(l)
            let w = quantWeights[i]
            mse += w * diff * diff
        }
        if mse < bestMse {
            bestMse = mse
            iscale = iscaleIs
        }
    }
    var sumlx: Float = 0
    var suml2: Float = 0
    for i in 0..<n {
        var l = nearestInt(iscale * x[i])
        l = Swift.min(nmax, l)
        L[i] = UInt8(truncatingIfNeeded: l)
        let w = quantWeights[i]
        let fl = Float(l)
        sumlx += w * x[i] * fl
        suml2 += w * fl * fl
    }
    for _ in 0..<5 {
        var nChanged = 0
        for i in 0..<n {
            let w = quantWeights[i]
            let li = Float(L[i])
            var slx = sumlx - w * x[i] * li
            var sl2 = suml2 - w * li * li
            if slx > 0 && sl2 > 0 {
                var newL = nearestInt(x[i] * sl2 / slx)
                newL = Swift.min(nmax, newL)
                if newL != Int32(L[i]) {
                    let fn = Float(newL)
                    slx += w * x[i] * fn
                    sl2 += w * fn * fn
                    if slx * slx * suml2 > sumlx * sumlx * sl2 {
                        L[i] = UInt8(truncatingIfNeeded: newL)
                        sumlx = slx
                        suml2 = sl2
                        nChanged += 1
                    }
                }
            }
        }
        if nChanged == 0 { break }
    }
    return suml2 > 0 ? sumlx / suml2 : 0
}

/// A constant lookup table in immortal memory (fast to index from the kernels).
func makeTable<T>(_ values: [T]) -> UnsafePointer<T> {
    let p = UnsafeMutablePointer<T>.allocate(capacity: values.count)
    p.initialize(from: values, count: values.count)
    return UnsafePointer(p)
}
