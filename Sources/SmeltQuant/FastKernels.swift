import SmeltFormats
#if canImport(Glibc)
import Glibc
#endif

// Faster, bit-identical versions of the hottest reference (no imatrix) kernels.
// q4_K, q5_K and q6_K spend almost all their time in ggml's scale search
// (make_qkx2_quants: 21 / 16 candidate scales per 32-value sub-block,
// make_qx_quants: 18 per 16-value sub-block), a chain of dependent float sums.
// The sub-blocks of a 256-value super-block are independent, so SIMD lane j runs
// ggml's sequential algorithm on sub-block j: the same operations in the same
// order per lane (no reassociation, no fused multiply-add), state updates through
// lane masks. Tests compare every output byte with SmeltQuant's kernels.

typealias V8 = SIMD8<Float>
typealias I8 = SIMD8<Int32>

/// SIMD versions of the reference (no imatrix) paths of q4_0, q4_K, q5_K, q6_K and q8_0, used by
/// those types' `quantizeRow`; `SMELT_NO_FAST_KERNELS=1` (or `enabled = false`) selects the
/// scalar kernels, which tests compare them with byte for byte.
enum FastKernels {
    /// Whether the `quantizeRow` of q4_0, q4_K, q5_K, q6_K and q8_0 take these kernels.
    nonisolated(unsafe) static var enabled = getenv("SMELT_NO_FAST_KERNELS") == nil

    /// The fast row kernel for `type`, when there is one (reference path only).
    static func rowKernel(for type: GGMLType, importance: Bool) -> ((UnsafePointer<Float>, UnsafeMutableRawPointer, Int) -> Void)? {
        if importance { return nil }
        switch type {
        case .q4_K: return { s, d, n in quantizeRowK45(s, d, n, nmax: 15) }
        case .q5_K: return { s, d, n in quantizeRowK45(s, d, n, nmax: 31) }
        case .q6_K: return { s, d, n in quantizeRowQ6K(s, d, n) }
        case .q8_0: return { s, d, n in quantizeRowQ80(s, d, n) }
        case .q4_0: return { s, d, n in quantizeRowQ40(s, d, n) }
        default: return nil
        }
    }

    // MARK: - scalar helpers (as SmeltQuant / ggml)

    @inline(__always) static func nearestInt(_ fval: Float) -> Int32 { SmeltQuant.nearestInt(fval) }

    @inline(__always) static func nearestInt(_ f: V8) -> I8 {
        let v = f + V8(repeating: 12582912.0)
        let bits = unsafeBitCast(v, to: SIMD8<UInt32>.self) & SIMD8<UInt32>(repeating: 0x007f_ffff)
        return unsafeBitCast(bits, to: I8.self) &- I8(repeating: 0x0040_0000)
    }

    @inline(__always) static func absV(_ v: V8) -> V8 {
        unsafeBitCast(unsafeBitCast(v, to: SIMD8<UInt32>.self) & SIMD8<UInt32>(repeating: 0x7fff_ffff), to: V8.self)
    }

    @inline(__always) static func fp32ToFP16(_ f: Float) -> UInt16 { SmeltQuant.fp32ToFP16(f) }

    @inline(__always) static func fp16ToFP32(_ h: UInt16) -> Float { SmeltQuant.fp16ToFP32(h) }

    @inline(__always) static func storeU16(_ p: UnsafeMutableRawPointer, _ offset: Int, _ v: UInt16) { SmeltQuant.storeU16(p, offset, v) }
    @inline(__always) static func loadU16(_ p: UnsafeRawPointer, _ offset: Int) -> UInt16 { SmeltQuant.loadU16(p, offset) }

    // MARK: - q8_0

    /// `quantize_row_q8_0_ref`: amax (order-free for non-NaN data), then `roundf(x*id)`,
    /// done as round-half-even through the magic number plus a tie fix (exact for |v| < 2^22).
    /// Rows holding a NaN or an infinity are redone with SmeltQuant's scalar kernel.
    static func quantizeRowQ80(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ count: Int) {
        var poison = V8()  // becomes NaN in some lane if the row holds a NaN or an infinity
        let half = V8(repeating: 0.5), mhalf = V8(repeating: -0.5)
        for ib in 0..<(count / 32) {
            let x = UnsafeRawPointer(src + ib * 32)
            let y = dst + ib * 34
            let a0 = x.loadUnaligned(as: V8.self), a1 = x.loadUnaligned(fromByteOffset: 32, as: V8.self)
            let a2 = x.loadUnaligned(fromByteOffset: 64, as: V8.self), a3 = x.loadUnaligned(fromByteOffset: 96, as: V8.self)
            poison += (a0 - a0) + (a1 - a1) + (a2 - a2) + (a3 - a3)
            @inline(__always) func vmax(_ a: V8, _ b: V8) -> V8 { a.replacing(with: b, where: b .> a) }
            let m = vmax(vmax(absV(a0), absV(a1)), vmax(absV(a2), absV(a3)))
            var amax = m[0]
            for j in 1..<8 where m[j] > amax { amax = m[j] }
            let d = amax / 127
            let id: Float = d != 0 ? 1 / d : 0
            storeU16(y, 0, fp32ToFP16(d))
            let idv = V8(repeating: id)
            @inline(__always) func put(_ a: V8, _ k: Int) {
                let x0 = a * idv
                var n = nearestInt(x0)
                let diff = x0 - V8(n)
                n = n &+ I8(repeating: 1).replacing(with: 0, where: .!((diff .== half) .& (x0 .> V8())))
                n = n &- I8(repeating: 1).replacing(with: 0, where: .!((diff .== mhalf) .& (x0 .< V8())))
                (y + 2 + 8 * k).storeBytes(of: SIMD8<UInt8>(truncatingIfNeeded: n), as: SIMD8<UInt8>.self)
            }
            put(a0, 0); put(a1, 1); put(a2, 2); put(a3, 3)
        }
        if poison != poison {  // some lane is NaN: ggml's NaN/inf behaviour is order-dependent
            for ib in 0..<(count / 32) { Q8_0.quantizeBlock(src + ib * 32, dst + ib * 34) }  // scalar path
        }
    }

    // MARK: - q4_0

    /// `quantize_row_q4_0_ref`: `max` is the first value of largest magnitude (found as
    /// the first lane equal to the block's amax), quants `min(15, (int8_t)(x*id + 8.5))`
    /// with the truncation done as an exact floor (the argument is ≥ 0 here).
    /// Rows with a non-finite value take SmeltQuant's scalar kernel.
    static func quantizeRowQ40(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ count: Int) {
        var poison = V8()
        let one = I8(repeating: 1), fifteen = I8(repeating: 15)
        for ib in 0..<(count / 32) {
            let xp = src + ib * 32
            let x = UnsafeRawPointer(xp)
            let y = dst + ib * 18
            let a0 = x.loadUnaligned(as: V8.self), a1 = x.loadUnaligned(fromByteOffset: 32, as: V8.self)
            let a2 = x.loadUnaligned(fromByteOffset: 64, as: V8.self), a3 = x.loadUnaligned(fromByteOffset: 96, as: V8.self)
            poison += (a0 - a0) + (a1 - a1) + (a2 - a2) + (a3 - a3)
            @inline(__always) func vmax(_ a: V8, _ b: V8) -> V8 { a.replacing(with: b, where: b .> a) }
            let m = vmax(vmax(absV(a0), absV(a1)), vmax(absV(a2), absV(a3)))
            var amax = m[0]
            for j in 1..<8 where m[j] > amax { amax = m[j] }
            var max: Float = 0
            if amax > 0 {
                for j in 0..<32 where abs(xp[j]) == amax { max = xp[j]; break }
            }
            let d = max / -8
            let id: Float = d != 0 ? 1 / d : 0
            storeU16(y, 0, fp32ToFP16(d))
            let idv = V8(repeating: id), h = V8(repeating: 8.5)
            @inline(__always) func q(_ a: V8) -> I8 {
                let v = a * idv + h
                var n = nearestInt(v)
                n = n &- one.replacing(with: 0, where: .!(V8(n) .> v))  // floor
                return n.replacing(with: fifteen, where: n .> fifteen)
            }
            let lo = q(a0) | (q(a2) &<< 4), hi = q(a1) | (q(a3) &<< 4)
            (y + 2).storeBytes(of: SIMD8<UInt8>(truncatingIfNeeded: lo), as: SIMD8<UInt8>.self)
            (y + 10).storeBytes(of: SIMD8<UInt8>(truncatingIfNeeded: hi), as: SIMD8<UInt8>.self)
        }
        if poison != poison {  // a NaN or an infinity: redo the row with the scalar kernel
            for ib in 0..<(count / 32) { Q4_0.quantizeBlockRef(src + ib * 32, dst + ib * 18) }  // scalar path
        }
    }

    // MARK: - q4_K / q5_K


    /// `make_qkx2_quants` for the eight 32-value sub-blocks of a super-block at once:
    /// lane j runs ggml's sequential algorithm on sub-block j (same operations and
    /// order per lane, per-lane state updates through masks). `xt[i]` holds value i of
    /// every sub-block. Writes the quants of sub-block j to `L[32*j ..< 32*j+32]`.
    @inline(__always)
    static func makeQkx2x8(_ nmax: Int32, _ xt: UnsafePointer<V8>, _ wt: UnsafePointer<V8>, _ flt: UnsafeMutablePointer<V8>,
                           _ L: UnsafeMutablePointer<UInt8>, _ rmin: Float, _ rdelta: Float,
                           _ nstep: Int) -> (scale: V8, theMin: V8) {
        let n = 32
        var min = xt[0], max = xt[0]
        var sumW = wt[0]
        var sumX = sumW * xt[0]
        for i in 1..<n {
            let xi = xt[i]
            min = min.replacing(with: xi, where: xi .< min)
            max = max.replacing(with: xi, where: xi .> max)
            let w = wt[i]
            sumW += w
            sumX += w * xi
        }
        min = min.replacing(with: 0, where: min .> V8())
        let flat = max .== min
        let zero = I8(repeating: 0), top = I8(repeating: nmax)
        let nmaxV = V8(repeating: Float(nmax))
        let iscale0 = nmaxV / (max - min)
        var scale = V8(repeating: 1) / iscale0
        var bestError = V8()
        var winIscale = iscale0, winMin = min
        for i in 0..<n {
            let xi = xt[i]
            var l = nearestInt(iscale0 * (xi - min))
            l = l.replacing(with: zero, where: l .< zero)
            l = l.replacing(with: top, where: l .> top)
            let diff = scale * V8(l) + min - xi
            bestError += wt[i] * (diff * diff)
        }
        for step in 0...nstep {
            let num = rmin + rdelta * Float(step) + Float(nmax)
            let iscale = V8(repeating: num) / (max - min)
            var sumL = V8(), sumL2 = V8(), sumXL = V8()
            for i in 0..<n {
                let xi = xt[i]
                var l = nearestInt(iscale * (xi - min))
                l = l.replacing(with: zero, where: l .< zero)
                l = l.replacing(with: top, where: l .> top)
                let fl = V8(l)
                flt[i] = fl
                let wfl = wt[i] * fl
                sumL += wfl
                sumL2 += wfl * fl
                sumXL += wfl * xi
            }
            let D = sumW * sumL2 - sumL * sumL
            var thisScale = (sumW * sumXL - sumX * sumL) / D
            var thisMin = (sumL2 * sumX - sumL * sumXL) / D
            let pos = thisMin .> V8()
            thisMin = thisMin.replacing(with: 0, where: pos)
            thisScale = thisScale.replacing(with: sumXL / sumL2, where: pos)
            var cur = V8()
            for i in 0..<n {
                let xi = xt[i]
                let diff = thisScale * flt[i] + thisMin - xi
                cur += wt[i] * (diff * diff)
            }
            let win = (D .> V8()) .& (cur .< bestError) .& .!flat
            bestError = bestError.replacing(with: cur, where: win)
            scale = scale.replacing(with: thisScale, where: win)
            winIscale = winIscale.replacing(with: iscale, where: win)
            winMin = winMin.replacing(with: min, where: win)
            min = min.replacing(with: thisMin, where: win)
        }
        // quants of the winning candidate (or of the first pass: winIscale/winMin start there)
        for i in 0..<n {
            var l = nearestInt(winIscale * (xt[i] - winMin))
            l = l.replacing(with: zero, where: l .< zero)
            l = l.replacing(with: top, where: l .> top)
            l = l.replacing(with: zero, where: flat)
            for j in 0..<8 { L[32 * j + i] = UInt8(truncatingIfNeeded: l[j]) }
        }
        scale = scale.replacing(with: 0, where: flat)
        return (scale, -min)
    }

    /// `quantize_row_q4_K_ref` (nmax 15) / `quantize_row_q5_K_ref` (nmax 31).
    static func quantizeRowK45(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ count: Int, nmax: Int32) {
        let blockBytes = nmax == 15 ? 144 : 176
        withUnsafeTemporaryAllocation(of: V8.self, capacity: 96) { vb in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256) { lb in
                let xt = vb.baseAddress!, wt = xt + 32, flt = xt + 64
                let L = lb.baseAddress!
                for ib in 0..<(count / 256) {
                    let x = src + ib * 256, y = dst + ib * blockBytes
                    for i in 0..<32 {
                        var v = V8()
                        for j in 0..<8 { v[j] = x[32 * j + i] }
                        xt[i] = v
                    }
                    var sumX2 = V8()
                    for l in 0..<32 { sumX2 += xt[l] * xt[l] }
                    let avX = (sumX2 / V8(repeating: 32)).squareRoot()
                    for l in 0..<32 { wt[l] = avX + absV(xt[l]) }
                    let (scales, mins) = nmax == 15
                        ? makeQkx2x8(15, xt, wt, flt, L, -1, 0.1, 20)
                        : makeQkx2x8(31, xt, wt, flt, L, -0.5, 0.1, 15)
                    var maxScale: Float = 0, maxMin: Float = 0
                    for j in 0..<8 {
                        if scales[j] > maxScale { maxScale = scales[j] }
                        if mins[j] > maxMin { maxMin = mins[j] }
                    }
                    let invScale: Float = maxScale > 0 ? 63 / maxScale : 0
                    let invMin: Float = maxMin > 0 ? 63 / maxMin : 0
                    let s = (y + 4).assumingMemoryBound(to: UInt8.self)
                    for j in 0..<8 {
                        let ls = Swift.min(63, UInt8(truncatingIfNeeded: nearestInt(invScale * scales[j])))
                        let lm = Swift.min(63, UInt8(truncatingIfNeeded: nearestInt(invMin * mins[j])))
                        packScaleMinK4(s, j, ls, lm)
                    }
                    storeU16(y, 0, fp32ToFP16(maxScale / 63))
                    storeU16(y, 2, fp32ToFP16(maxMin / 63))
                    let dAll = fp16ToFP32(loadU16(y, 0)), mAll = fp16ToFP32(loadU16(y, 2))
                    for j in 0..<8 {
                        let (sc, m) = getScaleMinK4(j, s)
                        let d = dAll * Float(sc)
                        if d == 0 { continue }
                        let dm = mAll * Float(m)
                        for ii in 0..<32 {
                            let l = nearestInt((x[32 * j + ii] + dm) / d)
                            L[32 * j + ii] = UInt8(truncatingIfNeeded: Swift.max(0, Swift.min(nmax, l)))
                        }
                    }
                    if nmax == 15 {
                        var q = (y + 16).assumingMemoryBound(to: UInt8.self)
                        for j in stride(from: 0, to: 256, by: 64) {
                            for l in 0..<32 { q[l] = L[j + l] | (L[j + l + 32] << 4) }
                            q += 32
                        }
                    } else {
                        let qh = (y + 16).assumingMemoryBound(to: UInt8.self)
                        var ql = (y + 48).assumingMemoryBound(to: UInt8.self)
                        for j in 0..<32 { qh[j] = 0 }
                        var m1: UInt8 = 1, m2: UInt8 = 2
                        for nn in stride(from: 0, to: 256, by: 64) {
                            for j in 0..<32 {
                                var l1 = L[nn + j]
                                if l1 > 15 { l1 -= 16; qh[j] |= m1 }
                                var l2 = L[nn + j + 32]
                                if l2 > 15 { l2 -= 16; qh[j] |= m2 }
                                ql[j] = l1 | (l2 << 4)
                            }
                            m1 <<= 2
                            m2 <<= 2
                            ql += 32
                        }
                    }
                }
            }
        }
    }

    // MARK: - q6_K

    typealias V16 = SIMD16<Float>
    typealias I16 = SIMD16<Int32>

    @inline(__always) static func nearestInt(_ f: V16) -> I16 {
        let v = f + V16(repeating: 12582912.0)
        let bits = unsafeBitCast(v, to: SIMD16<UInt32>.self) & SIMD16<UInt32>(repeating: 0x007f_ffff)
        return unsafeBitCast(bits, to: I16.self) &- I16(repeating: 0x0040_0000)
    }

    /// `make_qx_quants(16, 32, x, L, 1, NULL)` for the sixteen 16-value sub-blocks of a
    /// q6_K super-block at once (lane b = sub-block b, ggml's sequential algorithm per lane).
    @inline(__always)
    static func makeQx16x16(_ xt: UnsafePointer<V16>, _ L: UnsafeMutablePointer<Int8>) -> V16 {
        let n = 16
        let nmax: Int32 = 32
        var max = V16(), amax = V16()
        for i in 0..<n {
            let xi = xt[i]
            let ax = unsafeBitCast(unsafeBitCast(xi, to: SIMD16<UInt32>.self) & SIMD16<UInt32>(repeating: 0x7fff_ffff), to: V16.self)
            let m = ax .> amax
            amax = amax.replacing(with: ax, where: m)
            max = max.replacing(with: xi, where: m)
        }
        let flat = amax .< V16(repeating: 1e-15)
        let lo = I16(repeating: -nmax), hi = I16(repeating: nmax - 1)
        let iscale0 = V16(repeating: Float(-nmax)) / max
        var sumlx = V16(), suml2 = V16()
        for i in 0..<n {
            let xi = xt[i]
            var l = nearestInt(iscale0 * xi)
            l = l.replacing(with: lo, where: l .< lo)
            l = l.replacing(with: hi, where: l .> hi)
            let w = xi * xi
            let fl = V16(l)
            sumlx += w * xi * fl
            suml2 += w * fl * fl
        }
        var scale = (sumlx / suml2).replacing(with: 0, where: suml2 .== V16())
        var best = scale * sumlx
        var winIscale = iscale0
        for step in -9...9 where step != 0 {
            let num = -(Float(nmax) + 0.1 * Float(step))
            let iscale = V16(repeating: num) / max
            var slx = V16(), sl2 = V16()
            for i in 0..<n {
                let xi = xt[i]
                var l = nearestInt(iscale * xi)
                l = l.replacing(with: lo, where: l .< lo)
                l = l.replacing(with: hi, where: l .> hi)
                let w = xi * xi
                let fl = V16(l)
                slx += w * xi * fl
                sl2 += w * fl * fl
            }
            let win = (sl2 .> V16()) .& (slx * slx .> best * sl2) .& .!flat
            let sc = slx / sl2
            scale = scale.replacing(with: sc, where: win)
            best = best.replacing(with: sc * slx, where: win)
            winIscale = winIscale.replacing(with: iscale, where: win)
        }
        let nm = I16(repeating: nmax)
        for i in 0..<n {
            var l = nearestInt(winIscale * xt[i])
            l = l.replacing(with: lo, where: l .< lo)
            l = l.replacing(with: hi, where: l .> hi)
            l = (l &+ nm).replacing(with: 0, where: flat)
            for b in 0..<16 { L[16 * b + i] = Int8(truncatingIfNeeded: l[b]) }
        }
        return scale.replacing(with: 0, where: flat)
    }

    /// `quantize_row_q6_K_ref`.
    static func quantizeRowQ6K(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ count: Int) {
        withUnsafeTemporaryAllocation(of: V16.self, capacity: 16) { vb in
            withUnsafeTemporaryAllocation(of: Int8.self, capacity: 256) { lb in
                let xt = vb.baseAddress!, L = lb.baseAddress!
                for ib in 0..<(count / 256) {
                    let x = src + ib * 256, y = dst + ib * 210
                    for i in 0..<16 {
                        var v = V16()
                        for b in 0..<16 { v[b] = x[16 * b + i] }
                        xt[i] = v
                    }
                    let scales = makeQx16x16(xt, L)
                    var maxScale: Float = 0, maxAbsScale: Float = 0
                    for b in 0..<16 {
                        let scale = scales[b]
                        let a = abs(scale)
                        if a > maxAbsScale { maxAbsScale = a; maxScale = scale }
                    }
                    let p = y.assumingMemoryBound(to: UInt8.self)
                    if maxAbsScale < 1e-15 {
                        for j in 0..<210 { p[j] = 0 }
                        storeU16(y, 208, fp32ToFP16(0))
                        continue
                    }
                    let iscale = -128 / maxScale
                    storeU16(y, 208, fp32ToFP16(1 / iscale))
                    let sc = (y + 192).assumingMemoryBound(to: Int8.self)
                    for b in 0..<16 { sc[b] = Int8(truncatingIfNeeded: Swift.min(127, nearestInt(iscale * scales[b]))) }
                    let dAll = fp16ToFP32(loadU16(y, 208))
                    for j in 0..<16 {
                        let d = dAll * Float(sc[j])
                        if d == 0 { continue }
                        for ii in 0..<16 {
                            let l = Swift.max(-32, Swift.min(31, nearestInt(x[16 * j + ii] / d)))
                            L[16 * j + ii] = Int8(truncatingIfNeeded: l + 32)
                        }
                    }
                    var ql = p, qh = p + 128
                    let U = UnsafeMutableRawPointer(L).assumingMemoryBound(to: UInt8.self)
                    for j in stride(from: 0, to: 256, by: 128) {
                        for l in 0..<32 {
                            let q1 = U[j + l] & 0xF, q2 = U[j + l + 32] & 0xF
                            let q3 = U[j + l + 64] & 0xF, q4 = U[j + l + 96] & 0xF
                            ql[l] = q1 | (q3 << 4)
                            ql[l + 32] = q2 | (q4 << 4)
                            qh[l] = (U[j + l] >> 4) | ((U[j + l + 32] >> 4) << 2) | ((U[j + l + 64] >> 4) << 4)
                                | ((U[j + l + 96] >> 4) << 6)
                        }
                        ql += 64
                        qh += 32
                    }
                }
            }
        }
    }
}

