import Foundation
import XCTest
import SmeltFormats
import SmeltTestSupport

/// Write → read round trips of GGUF files built here.
final class GGUFRoundTripTests: XCTestCase {
    /// Every metadata value type, including nested and empty arrays.
    static func allTypesMetadata(alignment: UInt32? = nil) -> GGUFMetadata {
        var m = GGUFMetadata()
        m["general.architecture"] = .string("llama")
        if let a = alignment { m["general.alignment"] = .uint32(a) }
        m["t.u8"] = .uint8(255); m["t.i8"] = .int8(-128)
        m["t.u16"] = .uint16(65535); m["t.i16"] = .int16(-32768)
        m["t.u32"] = .uint32(4_000_000_000); m["t.i32"] = .int32(-2_000_000_000)
        m["t.f32"] = .float32(-1.5e-7); m["t.bool"] = .bool(true); m["t.false"] = .bool(false)
        m["t.str"] = .string("héllo\n\"wörld\" 🦙")
        m["t.empty"] = .string("")
        m["t.u64"] = .uint64(UInt64.max); m["t.i64"] = .int64(Int64.min); m["t.f64"] = .float64(.pi)
        m["t.nan"] = .float32(.nan)
        m["t.arr.str"] = .strings(["a", "", "ß", String(repeating: "x", count: 300)])
        m["t.arr.i32"] = .int32s([1, -2, 3])
        m["t.arr.f32"] = .float32s([0.5, -0.25, .infinity])
        m["t.arr.empty"] = .array(.uint8, [])
        m["t.arr.bool"] = .array(.bool, [.bool(true), .bool(false)])
        m["t.arr.nested"] = .array(.array, [.int32s([1, 2]), .array(.int32, []), .int32s([3])])
        m["t.arr.u64"] = .array(.uint64, [.uint64(1), .uint64(UInt64.max)])
        return m
    }

    /// Tensors of many types with deterministic pseudo-random bytes.
    static func tensors() -> [(GGUFTensorDescriptor, [UInt8])] {
        let specs: [(String, [Int], GGMLType)] = [
            ("f32.vec", [7], .f32), ("f16.mat", [64, 3], .f16), ("bf16.mat", [32, 5], .bf16),
            ("q4_0", [64, 2], .q4_0), ("q8_0.3d", [32, 2, 3], .q8_0), ("q4_K", [256, 2], .q4_K),
            ("q6_K", [512, 1], .q6_K), ("iq2_xxs", [256, 1], .iq2_xxs), ("mxfp4", [32, 3], .mxfp4),
            ("nvfp4", [64, 1], .nvfp4), ("q1_0", [128, 2], .q1_0), ("i32", [5], .i32), ("empty", [0], .f32),
            ("tq2_0.4d", [256, 1, 1, 2], .tq2_0),
        ]
        var rng = SplitMix(seed: 7)
        return specs.map { name, shape, type in
            let d = GGUFTensorDescriptor(name: name, shape: shape, type: type)
            return (d, (0..<d.byteCount!).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
        }
    }

    func write(_ url: URL, _ m: GGUFMetadata, _ ts: [(GGUFTensorDescriptor, [UInt8])], chunk: Int = .max) throws {
        let w = try GGUFWriter(url: url, metadata: m, tensors: ts.map(\.0))
        for (_, bytes) in ts {
            var i = 0
            while i < bytes.count {
                let j = min(bytes.count, i + chunk)
                try w.write(Array(bytes[i..<j]))
                i = j
            }
        }
        try w.finish()
    }

    func testRoundTripAllValueTypesAndAlignments() throws {
        let dir = try Fixtures.tempDir(self)
        for align: UInt32? in [nil, 1, 8, 64, 256] {
            let url = dir.appendingPathComponent("rt-\(align ?? 0).gguf")
            let m = Self.allTypesMetadata(alignment: align)
            let ts = Self.tensors()
            try write(url, m, ts, chunk: 50)
            let g = try GGUFFile(url: url)
            XCTAssertEqual(g.version, 3)
            XCTAssertEqual(g.metadata, m)
            XCTAssertEqual(g.alignment, Int(align ?? 32))
            XCTAssertEqual(g.dataOffset % g.alignment, 0)
            XCTAssertEqual(g.tensors.map(\.name), ts.map(\.0.name))
            for (d, bytes) in ts {
                let t = try XCTUnwrap(g.tensor(named: d.name))
                XCTAssertEqual(t.shape, d.shape); XCTAssertEqual(t.type, d.type)
                XCTAssertEqual(t.offset % g.alignment, 0, d.name)
                XCTAssertEqual(Array(g.data(for: t)), bytes, d.name)
            }
            // ggml pads every tensor, the last one included.
            let last = g.tensors.last!
            let size = try FileManager.default.attributesOfItem(atPath: url.path)[.size] as! Int
            XCTAssertEqual(size, g.dataOffset + (last.offset + last.byteCount + g.alignment - 1) / g.alignment * g.alignment)
        }
    }

    func testFailedWriteLeavesNothingBehind() throws {
        let dir = try Fixtures.tempDir(self)
        let url = dir.appendingPathComponent("partial.gguf")
        let ts = Self.tensors()
        do {
            let w = try GGUFWriter(url: url, metadata: Self.allTypesMetadata(), tensors: ts.map(\.0))
            try w.write(ts[0].1)
            XCTAssertThrowsError(try w.finish())  // the other tensors are missing
        }
        do {
            let w = try GGUFWriter(url: url, metadata: GGUFMetadata(), tensors: ts.map(\.0))
            XCTAssertThrowsError(try w.write([UInt8](repeating: 0, count: 1000)))  // too many bytes for the first tensor
            _ = w
        }
        do {  // dropped without finish()
            let w = try GGUFWriter(url: url, metadata: GGUFMetadata(), tensors: ts.map(\.0))
            try w.write(ts[0].1)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])
        // bad descriptors are refused before anything is created
        XCTAssertThrowsError(try GGUFWriter(url: url, metadata: GGUFMetadata(), tensors: [GGUFTensorDescriptor(name: "x", shape: [33], type: .q4_0)]))
        XCTAssertThrowsError(try GGUFWriter(url: url, metadata: GGUFMetadata(), tensors: [GGUFTensorDescriptor(name: "x", shape: [32], type: .f32), GGUFTensorDescriptor(name: "x", shape: [32], type: .f32)]))
        XCTAssertThrowsError(try GGUFWriter(url: url, metadata: GGUFMetadata([("k", .array(.uint32, [.string("no")]))]), tensors: []))
        XCTAssertThrowsError(try GGUFWriter(url: dir.appendingPathComponent("nodir/x.gguf"), metadata: GGUFMetadata(), tensors: []))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])
    }

    /// Rewriting llama.cpp's own GGUF with Smelt's writer gives the same bytes:
    /// header layout, offsets and padding are ggml's.
    func testRewriteOfLlamaCppFileIsByteIdentical() throws {
        for name in ["tiny-llama.golden/tiny-llama-f32.gguf", "tiny-qwen3.golden/tiny-qwen3-Q4_K_M.gguf", "tiny-gemma3.golden/tiny-gemma3-q8_0.gguf"] {
            let src = try Fixtures.sharedFile("models/tiny/\(name)")
            let g = try GGUFFile(url: src)
            let out = try Fixtures.tempDir(self).appendingPathComponent("copy.gguf")
            let w = try GGUFWriter(url: out, metadata: g.metadata,
                                   tensors: g.tensors.map { GGUFTensorDescriptor(name: $0.name, shape: $0.shape, type: $0.type) })
            for t in g.tensors { try w.write(g.data(for: t)) }
            try w.finish()
            XCTAssertEqual(try Data(contentsOf: out), try Data(contentsOf: src), name)
        }
    }
}

