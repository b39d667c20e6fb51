/// A ggml tensor type, identified by the id GGUF stores in each tensor info.
///
/// The one table of block geometry: every other module asks this type for the
/// block size (values per block) and the bytes per block.
public enum GGMLType: UInt32, CaseIterable, Sendable, Hashable, CustomStringConvertible {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3
    case q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9
    case q2_K = 10, q3_K = 11, q4_K = 12, q5_K = 13, q6_K = 14, q8_K = 15
    case iq2_xxs = 16, iq2_xs = 17, iq3_xxs = 18, iq1_s = 19, iq4_nl = 20
    case iq3_s = 21, iq2_s = 22, iq4_xs = 23
    case i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28
    case iq1_m = 29, bf16 = 30
    case tq1_0 = 34, tq2_0 = 35
    case mxfp4 = 39, nvfp4 = 40, q1_0 = 41

    /// Values per block (1 for plain scalar types).
    public var blockSize: Int { Self.geometry[self]!.0 }
    /// Bytes per block.
    public var bytesPerBlock: Int { Self.geometry[self]!.1 }
    /// The lower-case name ggml uses (`q4_K`, `bf16`, `iq2_xxs` …).
    public var name: String { Self.names[self]! }
    public var description: String { name }
    /// True for block-quantized types (anything that is not a plain scalar type).
    public var isQuantized: Bool { blockSize > 1 || self == .q1_0 }
    /// Bits per weight of this type.
    public var bitsPerWeight: Double { Double(bytesPerBlock * 8) / Double(blockSize) }

    /// Bytes taken by `count` values; nil when `count` is not a whole number of blocks.
    public func byteCount(elements count: Int) -> Int? {
        guard count >= 0, count % blockSize == 0 else { return nil }
        let (r, o) = (count / blockSize).multipliedReportingOverflow(by: bytesPerBlock)
        return o ? nil : r
    }

    /// Bytes of one row of `n` values; nil when `n` is not a multiple of the block size.
    public func rowBytes(_ n: Int) -> Int? { byteCount(elements: n) }

    /// Looks a type up by ggml's name, case-insensitively (`Q4_K`, `q4_k`, `BF16`).
    public init?(name: String) {
        let l = name.lowercased()
        guard let t = Self.allCases.first(where: { $0.name.lowercased() == l }) else { return nil }
        self = t
    }

    // ggml-common.h / ggml.c type_traits at llama.cpp 34af94cd9: (block size, bytes per block).
    private static let geometry: [GGMLType: (Int, Int)] = [
        .f32: (1, 4), .f16: (1, 2), .q4_0: (32, 18), .q4_1: (32, 20),
        .q5_0: (32, 22), .q5_1: (32, 24), .q8_0: (32, 34), .q8_1: (32, 36),
        .q2_K: (256, 84), .q3_K: (256, 110), .q4_K: (256, 144), .q5_K: (256, 176),
        .q6_K: (256, 210), .q8_K: (256, 292),
        .iq2_xxs: (256, 66), .iq2_xs: (256, 74), .iq3_xxs: (256, 98), .iq1_s: (256, 50),
        .iq4_nl: (32, 18), .iq3_s: (256, 110), .iq2_s: (256, 82), .iq4_xs: (256, 136),
        .i8: (1, 1), .i16: (1, 2), .i32: (1, 4), .i64: (1, 8), .f64: (1, 8),
        .iq1_m: (256, 56), .bf16: (1, 2), .tq1_0: (256, 54), .tq2_0: (256, 66),
        .mxfp4: (32, 17), .nvfp4: (64, 36), .q1_0: (128, 18),
    ]
    private static let names: [GGMLType: String] = [
        .f32: "f32", .f16: "f16", .q4_0: "q4_0", .q4_1: "q4_1", .q5_0: "q5_0", .q5_1: "q5_1",
        .q8_0: "q8_0", .q8_1: "q8_1", .q2_K: "q2_K", .q3_K: "q3_K", .q4_K: "q4_K", .q5_K: "q5_K",
        .q6_K: "q6_K", .q8_K: "q8_K", .iq2_xxs: "iq2_xxs", .iq2_xs: "iq2_xs", .iq3_xxs: "iq3_xxs",
        .iq1_s: "iq1_s", .iq4_nl: "iq4_nl", .iq3_s: "iq3_s", .iq2_s: "iq2_s", .iq4_xs: "iq4_xs",
        .i8: "i8", .i16: "i16", .i32: "i32", .i64: "i64", .f64: "f64", .iq1_m: "iq1_m",
        .bf16: "bf16", .tq1_0: "tq1_0", .tq2_0: "tq2_0", .mxfp4: "mxfp4", .nvfp4: "nvfp4",
        .q1_0: "q1_0",
    ]
}
