import SmeltFormats

/// ggml `tq1_0` (ternary, 1.6875 bpw): blocks of 256 values as `qs: [48 bytes]` (5 trits
/// per byte), `qh: [4 bytes]` (4 trits per byte), `d: f16` (54 bytes); x ≈ d·t, t ∈ {−1,0,1}.
/// ggml ignores importance weights for this type.
public enum TQ1_0: QuantType {
    public static let ggmlType = GGMLType.tq1_0
    static let blockSize = 256, blockBytes = 54

    public static func quantizeRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer,
                                   count: Int, importance: UnsafePointer<Float>?) {
        for ib in 0..<(count / blockSize) {
            quantizeBlock(src + ib * blockSize, dst + ib * blockBytes)
        }
    }

    @inline(__always) static func trit(_ v: Float, _ id: Float) -> UInt8 {
        UInt8(truncatingIfNeeded: lroundToInt(v * id) &+ 1)
    }

    /// ceil(q · 256 / 243) as ggml packs base-3 digits.
    @inline(__always) static func packTrits(_ q: UInt8) -> UInt8 {
        UInt8(truncatingIfNeeded: (UInt32(q) * 256 + 242) / 243)
    }

    /// `quantize_row_tq1_0_ref` for one block.
    @inline(__always) static func quantizeBlock(_ xIn: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        var x = xIn
        var amax: Float = 0
        for j in 0..<256 {
            let a = abs(x[j])
            amax = amax > a ? amax : a
        }
        let d = amax
        let id: Float = d != 0 ? 1 / d : 0
        storeU16(y, 52, fp32ToFP16(d))
        let qs = y.assumingMemoryBound(to: UInt8.self)
        // 5 values per byte along 32 bytes
        for m in 0..<32 {
            var q: UInt8 = 0
            for n in 0..<5 { q = q &* 3 &+ trit(x[m + n * 32], id) }
            qs[m] = packTrits(q)
        }
        x += 160
        // along 16 bytes
        for m in 0..<16 {
            var q: UInt8 = 0
            for n in 0..<5 { q = q &* 3 &+ trit(x[m + n * 16], id) }
            qs[32 + m] = packTrits(q)
        }
        x += 80
        // 4 values per byte
        for j in 0..<4 {
            var q: UInt8 = 0
            for m in 0..<4 { q = q &* 3 &+ trit(x[j + m * 4], id) }
            q = q &* 3
            qs[48 + j] = packTrits(q)
        }
    }

    public static func dequantizeRow(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        @inline(__always) func value(_ byte: UInt8, _ p3: UInt8, _ d: Float) -> Float {
            let q = byte &* p3
            let xi = Int16((UInt16(q) * 3) >> 8)
            return Float(xi - 1) * d
        }
        for ib in 0..<(count / blockSize) {
            let b = src.advanced(by: ib * blockBytes).assumingMemoryBound(to: UInt8.self)
            let d = fp16ToFP32(loadU16(UnsafeRawPointer(b), 52))
            var y = dst + ib * blockSize
            var p3: UInt8 = 1
            for _ in 0..<5 {
                for m in 0..<32 { y[m] = value(b[m], p3, d) }
                y += 32
                p3 &*= 3
            }
            p3 = 1
            for _ in 0..<5 {
                for m in 0..<16 { y[m] = value(b[32 + m], p3, d) }
                y += 16
                p3 &*= 3
            }
            p3 = 1
            for _ in 0..<4 {
                for j in 0..<4 { y[j] = value(b[48 + j], p3, d) }
                y += 4
                p3 &*= 3
            }
        }
    }
}
