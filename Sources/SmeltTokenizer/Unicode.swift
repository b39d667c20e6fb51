// Code point helpers matching llama.cpp's src/unicode.cpp (categories, UTF-8 decoding,
// GPT-2 byte-level mapping).

/// Category flags of one code point, with the same bit values as llama.cpp's `unicode_cpt_flags`.
struct CptFlags: Equatable {
    var raw: UInt16
    static let undefined: UInt16 = 0x0001
    static let number: UInt16 = 0x0002
    static let letter: UInt16 = 0x0004
    static let separator: UInt16 = 0x0008
    static let accentMark: UInt16 = 0x0010
    static let punctuation: UInt16 = 0x0020
    static let symbol: UInt16 = 0x0040
    static let control: UInt16 = 0x0080
    static let whitespaceBit: UInt16 = 0x0100

    @inline(__always) var isNumber: Bool { raw & CptFlags.number != 0 }
    @inline(__always) var isLetter: Bool { raw & CptFlags.letter != 0 }
    @inline(__always) var isAccentMark: Bool { raw & CptFlags.accentMark != 0 }
    @inline(__always) var isPunctuation: Bool { raw & CptFlags.punctuation != 0 }
    @inline(__always) var isWhitespace: Bool { raw & CptFlags.whitespaceBit != 0 }
    @inline(__always) var category: UInt16 { raw & 0xFF }
    @inline(__always) var isZero: Bool { raw == 0 }
}

/// Lookup table of llama.cpp's code point flags (built once, 2.2 MB).
enum UnicodeTable {
    static let maxCodepoints = 0x110000

    static let flags: [UInt16] = {
        var table = [UInt16](repeating: CptFlags.undefined, count: maxCodepoints)
        var starts: [Int] = []
        var values: [UInt16] = []
        for item in UnicodeData.rangeFlags.split(whereSeparator: { $0 == "," || $0 == "\n" || $0 == " " }) {
            let parts = item.split(separator: ":")
            guard parts.count == 2, let s = Int(parts[0], radix: 16), let f = UInt16(parts[1], radix: 16) else { continue }
            starts.append(s); values.append(f)
        }
        for i in 1..<starts.count {
            let lo = starts[i - 1], hi = min(starts[i], maxCodepoints)
            if lo < hi { for c in lo..<hi { table[c] = values[i - 1] } }
        }
        for w in UnicodeData.whitespace where Int(w) < maxCodepoints { table[Int(w)] |= CptFlags.whitespaceBit }
        return table
    }()

    @inline(__always) static func flags(_ cpt: UInt32) -> CptFlags {
        Int(cpt) < maxCodepoints ? CptFlags(raw: flags[Int(cpt)]) : CptFlags(raw: CptFlags.undefined)
    }

    /// `unicode_tolower` restricted to what the pre-tokenizers compare against (ASCII letters);
    /// llama.cpp's table maps no other code point onto s, t, r, e, v, m, l or d.
    @inline(__always) static func toLowerASCII(_ c: UInt32) -> UInt32 {
        (c >= 0x41 && c <= 0x5A) ? c + 0x20 : c
    }
}

enum UTF8Util {
    /// Decodes UTF-8 as llama.cpp's `unicode_cpts_from_utf8`: an invalid sequence yields U+FFFD and skips one byte.
    static func codepoints(_ b: UnsafeBufferPointer<UInt8>) -> [UInt32] {
        var out: [UInt32] = []
        out.reserveCapacity(b.count)
        var i = 0
        let n = b.count
        while i < n {
            let c0 = b[i]
            if c0 & 0x80 == 0 { out.append(UInt32(c0)); i += 1; continue }
            if c0 & 0x40 == 0 { out.append(0xFFFD); i += 1; continue }
            if c0 & 0x20 == 0 {
                if i + 1 >= n || b[i + 1] & 0xC0 != 0x80 { out.append(0xFFFD); i += 1; continue }
                out.append(UInt32(c0 & 0x1F) << 6 | UInt32(b[i + 1] & 0x3F)); i += 2; continue
            }
            if c0 & 0x10 == 0 {
                if i + 2 >= n || b[i + 1] & 0xC0 != 0x80 || b[i + 2] & 0xC0 != 0x80 { out.append(0xFFFD); i += 1; continue }
                out.append(UInt32(c0 & 0x0F) << 12 | UInt32(b[i + 1] & 0x3F) << 6 | UInt32(b[i + 2] & 0x3F)); i += 3; continue
            }
            if c0 & 0x08 == 0 {
                if i + 3 >= n || b[i + 1] & 0xC0 != 0x80 || b[i + 2] & 0xC0 != 0x80 || b[i + 3] & 0xC0 != 0x80 {
                    out.append(0xFFFD); i += 1; continue
                }
                out.append(UInt32(c0 & 0x07) << 18 | UInt32(b[i + 1] & 0x3F) << 12 | UInt32(b[i + 2] & 0x3F) << 6 | UInt32(b[i + 3] & 0x3F))
                i += 4; continue
            }
            out.append(0xFFFD); i += 1
        }
        return out
    }

    /// Appends the UTF-8 encoding of a code point (llama.cpp's `unicode_cpt_to_utf8`).
    @inline(__always) static func append(_ cpt: UInt32, to out: inout [UInt8]) {
        if cpt <= 0x7F { out.append(UInt8(cpt)) }
        else if cpt <= 0x7FF {
            out.append(0xC0 | UInt8((cpt >> 6) & 0x1F)); out.append(0x80 | UInt8(cpt & 0x3F))
        } else if cpt <= 0xFFFF {
            out.append(0xE0 | UInt8((cpt >> 12) & 0x0F)); out.append(0x80 | UInt8((cpt >> 6) & 0x3F))
            out.append(0x80 | UInt8(cpt & 0x3F))
        } else {
            out.append(0xF0 | UInt8((cpt >> 18) & 0x07)); out.append(0x80 | UInt8((cpt >> 12) & 0x3F))
            out.append(0x80 | UInt8((cpt >> 6) & 0x3F)); out.append(0x80 | UInt8(cpt & 0x3F))
        }
    }

    /// Length of the UTF-8 sequence announced by a lead byte (llama.cpp's `unicode_len_utf8`).
    @inline(__always) static func seqLen(_ b: UInt8) -> Int {
        switch b >> 4 {
        case 0xC, 0xD: return 2
        case 0xE: return 3
        case 0xF: return 4
        default: return 1
        }
    }
}

/// GPT-2's byte ↔ printable code point mapping (bytes_to_unicode).
public enum ByteLevel {
    /// The code point standing for each byte value.
    public static let byteToCpt: [UInt32] = {
        var map = [UInt32](repeating: 0, count: 256)
        var assigned = [Bool](repeating: false, count: 256)
        for ch in 0x21...0x7E { map[ch] = UInt32(ch); assigned[ch] = true }
        for ch in 0xA1...0xAC { map[ch] = UInt32(ch); assigned[ch] = true }
        for ch in 0xAE...0xFF { map[ch] = UInt32(ch); assigned[ch] = true }
        var n: UInt32 = 0
        for ch in 0..<256 where !assigned[ch] { map[ch] = 256 + n; n += 1 }
        return map
    }()

    /// UTF-8 of the code point standing for each byte.
    static let byteToUTF8: [[UInt8]] = byteToCpt.map { c in var o: [UInt8] = []; UTF8Util.append(c, to: &o); return o }

    /// The byte a byte-level code point stands for, or nil.
    public static func byte(forCpt c: UInt32) -> UInt8? { cptToByte[c] }
    static let cptToByte: [UInt32: UInt8] = {
        var m: [UInt32: UInt8] = [:]
        for (b, c) in byteToCpt.enumerated() { m[c] = UInt8(b) }
        return m
    }()

    /// Maps text to its byte-level form ("Ġ" for space, ...).
    public static func encode(_ s: String) -> String {
        var out: [UInt8] = []
        for b in s.utf8 { out.append(contentsOf: byteToUTF8[Int(b)]) }
        return String(decoding: out, as: UTF8.self)
    }
}
