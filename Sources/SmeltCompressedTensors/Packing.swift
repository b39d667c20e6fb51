import SmeltFormats

/// compressed-tensors' dense int32 packing (`compressors/pack_quantized/helpers.py`): b-bit integers
/// (b in 1…8) are offset by 2^(b−1) to unsigned and laid one after another, element i at bit i·b of its
/// row, low bits first; 32 elements fill exactly b words. Int4: 8 values per int32, value j of a word
/// in bits 4j…4j+3. Rows are padded with zeros to a multiple of 32 elements and cut to ⌈columns·b/32⌉
/// words.
public enum CTPacking {
    /// Words per packed row.
    public static func packedColumns(_ columns: Int, bits: Int) -> Int { (columns * bits + 31) / 32 }

    /// Packs a row-major `rows × columns` int8 matrix along its rows (`packed_dim=1`).
    public static func pack(_ q: [Int8], rows: Int, columns: Int, bits: Int) throws -> [Int32] {
        guard (1...8).contains(bits) else { throw SmeltError("packing supports 1…8 bits, not \(bits)") }
        guard q.count == rows * columns else { throw SmeltError("packing: \(q.count) values for \(rows) × \(columns)") }
        let pc = packedColumns(columns, bits: bits)
        let offset = Int32(1 << (bits - 1)), mask = UInt64((1 << bits) - 1)
        var out = [Int32](repeating: 0, count: rows * pc)
        for r in 0..<rows {
            for c in 0..<columns {
                let v = UInt64(UInt32(bitPattern: Int32(q[r * columns + c]) + offset)) & mask
                let bit = c * bits, w = bit / 32, o = bit % 32
                let cur = UInt64(UInt32(bitPattern: out[r * pc + w])) | (v << UInt64(o))
                out[r * pc + w] = Int32(bitPattern: UInt32(truncatingIfNeeded: cur))
                if o + bits > 32, w + 1 < pc {
                    let hi = UInt64(UInt32(bitPattern: out[r * pc + w + 1])) | (v >> UInt64(32 - o))
                    out[r * pc + w + 1] = Int32(bitPattern: UInt32(truncatingIfNeeded: hi))
                }
            }
        }
        return out
    }

    /// Packs along the columns (`packed_dim=0`: used for zero points, rows × groups →
    /// ⌈rows·b/32⌉ × groups).
    public static func packColumns(_ q: [Int8], rows: Int, columns: Int, bits: Int) throws -> [Int32] {
        let t = transpose(q, rows: rows, columns: columns)
        let p = try pack(t, rows: columns, columns: rows, bits: bits)
        return transpose(p, rows: columns, columns: packedColumns(rows, bits: bits))
    }

    /// Unpacks `rows × packedColumns(columns)` words into `rows × columns` int8 values.
    public static func unpack(_ p: [Int32], rows: Int, columns: Int, bits: Int) throws -> [Int8] {
        guard (1...8).contains(bits) else { throw SmeltError("unpacking supports 1…8 bits, not \(bits)") }
        let pc = packedColumns(columns, bits: bits)
        guard p.count == rows * pc else { throw SmeltError("unpacking: \(p.count) words, expected \(rows) × \(pc)") }
        let offset = Int32(1 << (bits - 1)), mask = UInt64((1 << bits) - 1)
        var out = [Int8](repeating: 0, count: rows * columns)
        for r in 0..<rows {
            for c in 0..<columns {
                let bit = c * bits, w = bit / 32, o = bit % 32
                var v = UInt64(UInt32(bitPattern: p[r * pc + w])) >> UInt64(o)
                if o + bits > 32, w + 1 < pc { v |= UInt64(UInt32(bitPattern: p[r * pc + w + 1])) << UInt64(32 - o) }
                out[r * columns + c] = Int8(truncatingIfNeeded: Int32(v & mask) - offset)
            }
        }
        return out
    }

    /// Unpacks values packed along the columns (`packed_dim=0`).
    public static func unpackColumns(_ p: [Int32], rows: Int, columns: Int, bits: Int) throws -> [Int8] {
        let pr = packedColumns(rows, bits: bits)
        guard p.count == pr * columns else { throw SmeltError("unpacking: \(p.count) words, expected \(pr) × \(columns)") }
        let t = transpose(p, rows: pr, columns: columns)
        let u = try unpack(t, rows: columns, columns: rows, bits: bits)
        return transpose(u, rows: columns, columns: rows)
    }

    static func transpose<T>(_ a: [T], rows: Int, columns: Int) -> [T] {
        guard let first = a.first else { return a }
        var out = [T](repeating: first, count: a.count)
        for r in 0..<rows { for c in 0..<columns { out[c * rows + r] = a[r * columns + c] } }
        return out
    }
}
