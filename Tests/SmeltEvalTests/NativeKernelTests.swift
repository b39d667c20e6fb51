import CSmeltKernels
import Foundation
@testable import SmeltEval
import SmeltFormats
import SmeltQuant
import SmeltTestSupport
import XCTest

/// CSmeltKernels (AVX-512 BF16 products, F16C and q8 activation rounding)
/// against plain references: the Swift implementations of ggml's rounding and
/// a portable C product.
final class NativeKernelTests: XCTestCase {
    struct RNG {  // xorshift64*, deterministic
        var s: UInt64
        mutating func next() -> UInt64 { s ^= s >> 12; s ^= s << 25; s ^= s >> 27; return s &* 2685821657736338717 }
        mutating func float() -> Float { Float(next() >> 40) / Float(1 << 24) * 2 - 1 }
    }

    func testBF16ProductMatchesPortableAndDouble() {
        var rng = RNG(s: 0x5eed)
        for (m, n, k) in [(1, 1, 1), (5, 15, 2), (6, 16, 31), (7, 17, 64), (13, 70, 577), (100, 130, 96), (3, 64, 1536),
                          (7, 200, 2048)] {
            let w = (0..<(n * k)).map { _ in FloatFormats.floatToBF16(rng.float() * 4) }
            let x = (0..<(m * k)).map { _ in rng.float() * 3 }
            let lda = BF16Product.rowStride(k)
            XCTAssertEqual(lda, k == 2048 ? 2080 : (k + 1) / 2 * 2, "rows 4 KiB apart get 32 values more")
            var a16 = [UInt16](repeating: 0xffff, count: m * lda)
            var out = [Float](repeating: .nan, count: m * n), ref = out
            // the panel layout, written out: panel p, pair kp, lane l = (w[16p+l][2kp], w[16p+l][2kp+1]), 0 outside
            let pairs = (k + 1) / 2
            var packed = [UInt16](repeating: 0xffff, count: smelt_bf16_packed_count(Int32(n), Int32(k)))
            w.withUnsafeBufferPointer { smelt_bf16_pack($0.baseAddress!, Int32(k), Int32(n), Int32(k), &packed) }
            for p in 0..<((n + 15) / 16) {
                for kp in 0..<pairs {
                    for l in 0..<16 {
                        let r = 16 * p + l, i = (p * pairs + kp) * 32 + 2 * l
                        XCTAssertEqual(packed[i], r < n ? w[r * k + 2 * kp] : 0)
                        XCTAssertEqual(packed[i + 1], r < n && 2 * kp + 1 < k ? w[r * k + 2 * kp + 1] : 0)
                    }
                }
            }
            x.withUnsafeBufferPointer { xp in
                a16.withUnsafeMutableBufferPointer { BF16Product.convert(xp.baseAddress!, m: m, cols: k, out: $0.baseAddress!, threads: 2) }
            }
            w.withUnsafeBufferPointer { wp in
                let product = BF16Product(bf16: wp.baseAddress!, rows: n, cols: k, owner: nil)
                a16.withUnsafeBufferPointer { ap in
                    out.withUnsafeMutableBufferPointer {
                        product.multiply(ap.baseAddress!, lda: lda, m: m, out: $0.baseAddress!, ldc: n, threads: 2, workspace: Workspace())
                    }
                    ref.withUnsafeMutableBufferPointer {
                        smelt_gemm_bf16_portable(Int32(m), Int32(n), Int32(k), ap.baseAddress!, Int32(lda), packed, $0.baseAddress!, Int32(n))
                    }
                }
            }
            for i in 0..<m {
                for j in 0..<n {
                    var exact: Double = 0, mag: Double = 0
                    for kk in 0..<k {
                        let p = Double(FloatFormats.bf16ToFloat(a16[i * lda + kk])) * Double(FloatFormats.bf16ToFloat(w[j * k + kk]))
                        exact += p; mag += abs(p)
                    }
                    // float32 sums of exact bf16 products: a few ulps of the magnitude
                    let tol = mag * 1e-6 + 1e-30
                    XCTAssertEqual(Double(out[i * n + j]), exact, accuracy: tol, "native m\(m) n\(n) k\(k) [\(i),\(j)]")
                    XCTAssertEqual(Double(ref[i * n + j]), exact, accuracy: tol, "portable m\(m) n\(n) k\(k) [\(i),\(j)]")
                }
            }
            // activations were rounded to nearest even bfloat16, the odd pad is 0
            for i in 0..<m {
                for kk in 0..<k { XCTAssertEqual(a16[i * lda + kk], FloatFormats.floatToBF16(x[i * k + kk])) }
                if k % 2 == 1 { XCTAssertEqual(a16[i * lda + k], 0) }
            }
        }
    }

    func testQ8RoundingIsBitIdenticalToReference() {
        var rng = RNG(s: 42)
        for n in [31, 32, 64, 255, 256, 300, 577, 1536] {
            var x = (0..<n).map { _ in rng.float() * 5 }
            if n >= 64 { for i in 32..<64 { x[i] = 0 } }  // an all-zero block
            if n >= 300 { x[260] = -7.25; x[261] = 7.25 }  // equal magnitudes: the first sets the sign
            x[0] = 0.5 * 5 / 127 * 3  // a tie candidate
            var native = [Float](repeating: .nan, count: n), reference = native
            x.withUnsafeBufferPointer { xp in
                for (fmt, nat, ref) in [(ActivationRounding.Format.q8_0, { NativeKernels.round(.q8_0, $0, $1, $2) }, ActivationRounding.roundQ8_0),
                                        (.q8_K, { NativeKernels.round(.q8_K, $0, $1, $2) }, ActivationRounding.roundQ8_K)] {
                    native.withUnsafeMutableBufferPointer { nat(xp.baseAddress!, $0.baseAddress!, n) }
                    reference.withUnsafeMutableBufferPointer { ref(xp.baseAddress!, $0.baseAddress!, n) }
                    // bit for bit, except that the native side goes through integers: no −0
                    let bits = { (v: [Float]) in v.map { $0 == 0 ? UInt32(0) : $0.bitPattern } }
                    XCTAssertEqual(bits(native), bits(reference), "\(fmt) n=\(n)")
                    if n >= (fmt == .q8_0 ? 32 : 256) { XCTAssertNotEqual(native, x, "\(fmt) n=\(n): nothing was rounded") }
                }
            }
        }
    }

    func testHalfAndBFloatRoundTrips() {
        var rng = RNG(s: 7)
        var x = (0..<4000).map { i -> Float in
            let e = Float(Int(rng.next() % 40) - 26)  // 2^-26 … 2^13: half subnormals to large
            return rng.float() * powf(2, e) * (i % 2 == 0 ? 1 : 1e4)
        }
        x += [0, -0, 65504, 65519, 65520, 1e9, -1e9, .infinity, -.infinity, 5.96e-8, 2.98e-8, 1 + 1 / 2048]
        var out = [Float](repeating: .nan, count: x.count)
        x.withUnsafeBufferPointer { xp in out.withUnsafeMutableBufferPointer { NativeKernels.round(.f16, xp.baseAddress!, $0.baseAddress!, x.count) } }
        for (v, o) in zip(x, out) {
            XCTAssertEqual(o.bitPattern, FloatFormats.halfToFloat(FloatFormats.floatToHalf(v)).bitPattern, "f16 \(v)")
        }
        // bfloat16: normal numbers (the AVX-512 conversion treats float32 subnormals as 0, as in ggml)
        let normal = x.filter { $0.isNormal || $0.isInfinite || $0 == 0 }
        var outB = [Float](repeating: .nan, count: normal.count)
        normal.withUnsafeBufferPointer { xp in outB.withUnsafeMutableBufferPointer { NativeKernels.round(.bf16, xp.baseAddress!, $0.baseAddress!, normal.count) } }
        for (v, o) in zip(normal, outB) {
            XCTAssertEqual(o.bitPattern, FloatFormats.bf16ToFloat(FloatFormats.floatToBF16(v)).bitPattern, "bf16 \(v)")
        }
    }

    /// The integer decoding of every supported type gives ggml's dequantized values bit
    /// for bit, the int8 panels hold those values with corrections −128·Σw, the native
    /// product equals the portable C loop bit for bit, and both equal the float product of
    /// the dequantized values on activations rounded as llama.cpp rounds them (up to
    /// float32 summation order).
    func testIntegerDecodingAndProduct() throws {
        var rng = RNG(s: 99)
        let cols = 512, rows = 53, m = 9   // two blocks of rows (48 + 5), the last panel partly empty
        let ones = [Float](repeating: 1, count: cols)   // the importance some IQ types require
        for t in [GGMLType.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_K, .q5_K, .q6_K, .q2_K, .q3_K, .iq4_nl, .iq4_xs,
                  .iq2_xxs, .iq2_xs, .iq2_s, .iq3_xxs, .iq3_s, .iq1_s, .iq1_m, .tq1_0, .tq2_0, .mxfp4, .nvfp4, .q1_0] {
            let layout = try XCTUnwrap(IntegerDecoding.layout(for: t))
            let kernel = try XCTUnwrap(QuantRegistry.kernel(for: t))
            let rowBytes = try XCTUnwrap(t.rowBytes(cols))
            var raw = [UInt8](repeating: 0, count: rows * rowBytes)
            var deq = [Float](repeating: 0, count: rows * cols)
            for r in 0..<rows {
                // rows with an offset so that the min terms matter
                let src = (0..<cols).map { _ in rng.float() * Float(r + 1) + (r % 3 == 0 ? 0.7 : 0) }
                raw.withUnsafeMutableBytes { b in src.withUnsafeBufferPointer { x in ones.withUnsafeBufferPointer { w in
                    kernel.quantizeRow(x.baseAddress!, b.baseAddress! + r * rowBytes, count: cols, importance: w.baseAddress!) } } }
                raw.withUnsafeBytes { b in deq.withUnsafeMutableBufferPointer { kernel.dequantizeRow(b.baseAddress! + r * rowBytes, $0.baseAddress! + r * cols, count: cols) } }
            }
            // decoding
            var q = [Int16](repeating: 0, count: cols), sc = [Float](repeating: 0, count: cols / layout.sub), mn = sc
            for r in 0..<rows {
                raw.withUnsafeBytes { b in IntegerDecoding.decodeRow(t, b.baseAddress! + r * rowBytes, cols: cols, q: &q, scale: &sc, min: &mn) }
                for j in 0..<cols {
                    let s = sc[j / layout.sub], v = s * Float(q[j])
                    let y = layout.hasMin ? v + mn[j / layout.sub] : v
                    XCTAssertEqual(y.bitPattern, deq[r * cols + j].bitPattern, "\(t) row \(r) col \(j)")
                }
            }
            // product
            let x = (0..<(m * cols)).map { _ in rng.float() * 2 }
            // the rows are read from the buffer during each product: all of it inside one access
            let (out, decoded) = try raw.withUnsafeBytes { rb -> ([Float], (q: [Int8], corrections: [Int32], scales: [Float], mins: [Float]?)) in
                let packed = try XCTUnwrap(PackedInt(type: t, raw: rb.baseAddress!, rowBytes: rowBytes, rows: rows, cols: cols))
                var out = [Float](repeating: .nan, count: m * rows)
                x.withUnsafeBufferPointer { xp in
                    out.withUnsafeMutableBufferPointer { packed.multiply(xp.baseAddress!, m: m, out: $0.baseAddress!, ldc: rows, threads: 2, workspace: Workspace()) }
                }
                return (out, packed.decodedPanels())
            }
            // the portable C product on the same integers
            var xq = [Int16](repeating: 0, count: m * cols)
            var xd = [Float](repeating: 0, count: m * cols / layout.activationBlock), xs = [Float](repeating: 0, count: m * cols / layout.sub)
            for i in 0..<m {
                x.withUnsafeBufferPointer { xp in xq.withUnsafeMutableBufferPointer { qp in xd.withUnsafeMutableBufferPointer { dp in xs.withUnsafeMutableBufferPointer { sp in
                    smelt_quantize_activations(xp.baseAddress! + i * cols, Int32(cols), Int32(layout.activationBlock), qp.baseAddress! + i * cols,
                                               dp.baseAddress! + i * cols / layout.activationBlock, Int32(layout.sub), sp.baseAddress! + i * cols / layout.sub)
                } } } }
            }
            var xu = [UInt8](repeating: 0, count: m * cols)
            smelt_activations_u8(xq, Int32(m * cols), &xu)
            XCTAssertEqual(xu.map { Int($0) - 128 }, xq.map { Int($0) }, "\(t) unsigned activations")
            // the packed panels hold the decoded rows, and each correction is −128 × the sub-block's sum
            for r in 0..<rows {
                raw.withUnsafeBytes { b in IntegerDecoding.decodeRow(t, b.baseAddress! + r * rowBytes, cols: cols, q: &q, scale: &sc, min: &mn) }
                let p = r / 16, l = r % 16, nsub = cols / layout.sub
                for k in 0..<cols where Int16(decoded.q[p * cols * 16 + (k / 4) * 64 + 4 * l + k % 4]) != q[k] {
                    XCTFail("\(t) packed row \(r) col \(k)"); break
                }
                for s in 0..<nsub {
                    XCTAssertEqual(decoded.corrections[(p * nsub + s) * 16 + l], -128 * q[(s * layout.sub)..<((s + 1) * layout.sub)].reduce(Int32(0)) { $0 + Int32($1) })
                    // scales and mins as SmeltQuant decodes them (the C decoder of the common types included)
                    XCTAssertEqual(decoded.scales[(p * nsub + s) * 16 + l].bitPattern, sc[s].bitPattern, "\(t) scale row \(r) sub-block \(s)")
                    if let mins = decoded.mins { XCTAssertEqual(mins[(p * nsub + s) * 16 + l].bitPattern, mn[s].bitPattern, "\(t) min row \(r)") }
                }
            }
            var portable = [Float](repeating: .nan, count: m * rows)
            portable.withUnsafeMutableBufferPointer { op in
                smelt_gemm_int8_portable(Int32(m), Int32(rows), Int32(cols), Int32(layout.sub), Int32(layout.activationBlock), xu, Int32(cols), xd,
                                         layout.hasMin ? xs : nil, decoded.q, decoded.corrections, decoded.scales, decoded.mins, op.baseAddress!, Int32(rows))
            }
            // the native product makes the portable loop's sums, bit for bit
            XCTAssertEqual(out.map(\.bitPattern), portable.map(\.bitPattern), "\(t) native against portable")
            var xr = x
            let fmt = ActivationRounding.format(for: t)
            for i in 0..<m {
                x.withUnsafeBufferPointer { xp in xr.withUnsafeMutableBufferPointer {
                    if fmt == .q8_0 { ActivationRounding.roundQ8_0(xp.baseAddress! + i * cols, $0.baseAddress! + i * cols, cols) }
                    else { ActivationRounding.roundQ8_K(xp.baseAddress! + i * cols, $0.baseAddress! + i * cols, cols) }
                } }
            }
            for i in 0..<m {
                for j in 0..<rows {
                    var exact: Double = 0, mag: Double = 0
                    for k in 0..<cols { let p = Double(xr[i * cols + k]) * Double(deq[j * cols + k]); exact += p; mag += abs(p) }
                    XCTAssertEqual(Double(out[i * rows + j]), exact, accuracy: mag * 2e-6, "\(t) [\(i),\(j)]")
                    XCTAssertEqual(Double(portable[i * rows + j]), exact, accuracy: mag * 2e-6, "\(t) portable [\(i),\(j)]")
                }
            }
        }
    }

    /// The float16 product: the native kernel equals the portable loop bit for bit (the same
    /// FMAs in the same order) and both the double-precision product of the float16 weights.
    func testF16ProductMatchesPortableAndDouble() {
        var rng = RNG(s: 0xf16)
        for (m, n, k) in [(1, 1, 2), (5, 15, 2), (6, 16, 32), (7, 17, 64), (13, 70, 578), (3, 64, 1536), (9, 200, 2048)] {
            let w = (0..<(n * k)).map { _ in FloatFormats.floatToHalf(rng.float() * 4) }
            var x = (0..<(m * k)).map { _ in rng.float() * 3 }
            x.withUnsafeMutableBufferPointer { smelt_round_f16($0.baseAddress!, $0.baseAddress!, Int32(m * k)) }
            var out = [Float](repeating: .nan, count: m * n), ref = out
            var scratch = [UInt16](repeating: 0xffff, count: smelt_gemm_bf16_scratch_count(Int32(k)))
            w.withUnsafeBufferPointer { wp in
                smelt_gemm_f16(Int32(m), Int32(n), Int32(k), x, Int32(k), wp.baseAddress!, Int32(k), &out, Int32(n), &scratch)
                // the portable loop, block by block as smelt_gemm_f16 packs them
                for j in stride(from: 0, to: n, by: Int(SMELT_BF16_BLOCK_ROWS)) {
                    let rows = min(Int(SMELT_BF16_BLOCK_ROWS), n - j)
                    var packed = [UInt16](repeating: 0, count: smelt_bf16_packed_count(Int32(rows), Int32(k)))
                    smelt_bf16_pack(wp.baseAddress! + j * k, Int32(k), Int32(rows), Int32(k), &packed)
                    ref.withUnsafeMutableBufferPointer {
                        smelt_gemm_f16_portable(Int32(m), Int32(rows), Int32(k), x, Int32(k), packed, $0.baseAddress! + j, Int32(n))
                    }
                }
            }
            XCTAssertEqual(out.map(\.bitPattern), ref.map(\.bitPattern), "native against portable, \(m)×\(n)×\(k)")
            for i in 0..<m {
                for j in 0..<n {
                    var exact: Double = 0, mag: Double = 0
                    for kk in 0..<k {
                        let p = Double(x[i * k + kk]) * Double(FloatFormats.halfToFloat(w[j * k + kk]))
                        exact += p; mag += abs(p)
                    }
                    XCTAssertEqual(Double(out[i * n + j]), exact, accuracy: mag * 1e-6 + 1e-30, "[\(i),\(j)] of \(m)×\(n)×\(k)")
                }
            }
        }
    }

    func testSoftmaxRowAndSwiGLU() {
        var rng = RNG(s: 1234)
        for (n, lo, hi, cap) in [(1, 0, 0, Float(0)), (17, 0, 16, 0), (64, 5, 40, 0), (300, 0, 299, 30), (513, 100, 512, 0)] {
            var row = (0..<n).map { _ in rng.float() * 40 }
            if n > 3 { row[lo] = -200 }  // an underflowing term
            let orig = row
            row.withUnsafeMutableBufferPointer { NativeKernels.softmaxRow($0.baseAddress!, count: n, lo: lo, hi: hi, softcap: cap) }
            let capped = orig.map { cap > 0 ? Double(tanhf($0 / cap) * cap) : Double($0) }
            let mx = capped[lo...hi].max()!
            let denom = capped[lo...hi].reduce(0) { $0 + Foundation.exp($1 - mx) }
            for j in 0..<n {
                let want = (lo...hi).contains(j) ? Foundation.exp(capped[j] - mx) / denom : 0
                XCTAssertEqual(Double(row[j]), want, accuracy: 2e-6 * max(want, 1e-3), "n\(n) j\(j)")
            }
        }
        for n in [1, 15, 16, 33, 1536] {
            let g = (0..<n).map { _ in rng.float() * 30 }, u = (0..<n).map { _ in rng.float() * 3 }
            var out = [Float](repeating: .nan, count: n)
            out.withUnsafeMutableBufferPointer { NativeKernels.swiglu(g, u, $0.baseAddress!, n) }
            for i in 0..<n {
                let want = Double(g[i]) / (1 + Foundation.exp(-Double(g[i]))) * Double(u[i])
                XCTAssertEqual(Double(out[i]), want, accuracy: 1e-6 * max(abs(want), 1e-3), "swiglu n\(n) i\(i)")
            }
        }
    }

    /// Causal scores and weighted sums of the attention kernels against a double reference.
    func testAttentionKernels() {
        var rng = RNG(s: 77)
        for (nq, nk, d, diag) in [(1, 1, 16, 0), (7, 70, 64, 63), (64, 64, 64, 0), (64, 300, 128, 236), (5, 40, 80, 35)] {
            let ldq = d + 16, ldk = d + 32
            let q = (0..<(nq * ldq)).map { _ in rng.float() }, k = (0..<(nk * ldk)).map { _ in rng.float() }
            let ldkt = nk + 64
            var kt = [Float](repeating: .nan, count: d * ldkt)
            NativeKernels.transposeKeys(k, ldk: ldk, count: nk, headDim: d, into: &kt, ldkt: ldkt)
            var sc = [Float](repeating: .nan, count: nq * nk)
            NativeKernels.attentionScores(q, ldq: ldq, kt, ldkt: ldkt, rows: nq, keys: nk, headDim: d, scale: 0.125,
                                          diagonal: diag, out: &sc, lds: nk)
            var p = [Float](repeating: 0, count: nq * nk)
            for r in 0..<nq {
                for j in 0...min(nk - 1, r + diag) {
                    var want: Double = 0
                    for dd in 0..<d { want += Double(q[r * ldq + dd]) * Double(k[j * ldk + dd]) }
                    XCTAssertEqual(Double(sc[r * nk + j]), want * 0.125, accuracy: 1e-5, "scores \(nq)×\(nk)×\(d) [\(r),\(j)]")
                    p[r * nk + j] = rng.float()  // weights only where the row may look
                }
            }
            let ldo = d + 8
            var out = [Float](repeating: .nan, count: nq * ldo)
            NativeKernels.attentionValues(p, ldp: nk, k, ldv: ldk, rows: nq, keys: nk, headDim: d, diagonal: diag, out: &out, ldo: ldo)
            for r in 0..<nq {
                for c in 0..<d {
                    var want: Double = 0
                    for j in 0..<nk { want += Double(p[r * nk + j]) * Double(k[j * ldk + c]) }
                    XCTAssertEqual(Double(out[r * ldo + c]), want, accuracy: 1e-4, "values \(nq)×\(nk)×\(d) [\(r),\(c)]")
                }
            }
        }
    }

    /// A Hugging Face checkpoint stored in bf16 is used in place (memory-mapped, not
    /// converted to float32) and gives the logits of the same weights as a bf16 GGUF.
    func testBF16HuggingFaceCheckpointInPlace() throws {
        let src = try Fixtures.sharedFile("models/tiny/tiny-llama")
        let dir = try Fixtures.tempDir(self).appendingPathComponent("tiny-llama-bf16-hf")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let ck = try SafetensorsCheckpoint(folder: src)
        let entries = ck.tensors.map { SafetensorsWriter.Entry(name: $0.name, dtype: $0.shape.count == 2 ? .BF16 : .F32, shape: $0.shape) }
        let w = try SafetensorsWriter(url: dir.appendingPathComponent("model.safetensors"), tensors: entries)
        for t in ck.tensors {
            let f = t.floats()
            if t.shape.count == 2 { try f.map { FloatFormats.floatToBF16($0) }.withUnsafeBytes { try w.write($0) } }
            else { try f.withUnsafeBytes { try w.write($0) } }
        }
        try w.finish()
        for name in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
            let from = src.appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: from.path) {
                try FileManager.default.copyItem(at: from, to: dir.appendingPathComponent(name))
            }
        }
        let hf = try InferenceModel(url: dir, threads: 2)
        XCTAssertEqual(hf.layers[0].wq?.type, .bf16, "bf16 matrices stay bf16")
        let gguf = try InferenceModel(url: try Fixtures.sharedFile("models/tiny/tiny-llama.golden/tiny-llama-bf16.gguf"), threads: 2)
        let g = try LogitsTests.golden("tiny-llama")
        let a = try hf.forward(tokens: g.tokens, sequenceLength: g.tokens.count)
        let b = try gguf.forward(tokens: g.tokens, sequenceLength: g.tokens.count)
        let err = LogitsTests.relativeError(a, b)
        print("tiny-llama bf16: HF checkpoint in place vs bf16 GGUF max rel diff \(err)")
        XCTAssertLessThan(err, 1e-2)
    }

    /// An f16 model keeps no float32 copy: its rows are converted block by block during each product
    /// (the same products on the same values as with the copy).
    func testF16ModelConvertsBlocksInsteadOfCaching() throws {
        let g = try LogitsTests.golden("tiny-llama")
        let url = try Fixtures.sharedFile("models/tiny/tiny-llama.golden/tiny-llama-f16.gguf")
        let streamed = try InferenceModel(url: url, threads: 2)
        let cached = try InferenceModel(url: url, threads: 2, cacheFloat32: true)
        XCTAssertEqual(streamed.layers[0].wq?.type, .f16)
        XCTAssertNil(streamed.layers[0].wq?.f32, "no float32 copy")
        XCTAssertEqual(streamed.layers[0].wq?.f16Product != nil, NativeKernels.f16Dot, "the FMA product on the mapped rows")
        XCTAssertNotNil(cached.layers[0].wq?.f32, "the copy when asked for")
        XCTAssertNil(cached.layers[0].wq?.f16Product)
        let a = try streamed.forward(tokens: g.tokens, sequenceLength: g.tokens.count)
        let b = try cached.forward(tokens: g.tokens, sequenceLength: g.tokens.count)
        let err = LogitsTests.relativeError(a, b)
        print("tiny-llama f16: native product (\(NativeKernels.f16Dot)) vs float32 copy max rel diff \(err)")
        // only the float32 summation order differs (tiny random models amplify it)
        XCTAssertLessThan(err, NativeKernels.f16Dot ? 1e-2 : 1e-5)
        XCTAssertLessThan(LogitsTests.relativeError(a, g.logits), 3e-2)
    }

    /// A bfloat16 model through the native kernel and through OpenBLAS on the
    /// same bfloat16-rounded activations: only float32 summation order differs.
    func testBF16ModelNativeAgreesWithBLAS() throws {
        let g = try LogitsTests.golden("tiny-llama")
        let url = try Fixtures.sharedFile("models/tiny/tiny-llama.golden/tiny-llama-bf16.gguf")
        let native = try InferenceModel(url: url, threads: 2, nativeKernels: true)
        let blas = try InferenceModel(url: url, threads: 2, nativeKernels: false)
        let a = try native.forward(tokens: g.tokens, sequenceLength: g.tokens.count)
        let b = try blas.forward(tokens: g.tokens, sequenceLength: g.tokens.count)
        let err = LogitsTests.relativeError(a, b)
        print("tiny-llama bf16: native kernels vs OpenBLAS max rel diff \(err) (bf16 dot: \(NativeKernels.bf16Dot))")
        XCTAssertLessThan(err, 1e-2)  // tiny random models amplify summation-order differences
        XCTAssertLessThan(LogitsTests.relativeError(a, g.logits), 3e-2)
    }
}
