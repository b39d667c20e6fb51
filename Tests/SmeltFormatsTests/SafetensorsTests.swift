import Foundation
import XCTest
import SmeltFormats
import SmeltTestSupport

final class SafetensorsTests: XCTestCase {
    /// Writes a raw safetensors file from a header object and data bytes.
    func raw(_ dir: URL, _ name: String, header: String, data: [UInt8], headerLength: UInt64? = nil) -> URL {
        let h = Array(header.utf8)
        var b: [UInt8] = []
        withUnsafeBytes(of: (headerLength ?? UInt64(h.count)).littleEndian) { b += $0 }
        b += h + data
        let u = dir.appendingPathComponent(name)
        FileManager.default.createFile(atPath: u.path, contents: Data(b))
        return u
    }

    func testWriterReaderRoundTripAllDTypes() throws {
        let dir = try Fixtures.tempDir(self)
        let url = dir.appendingPathComponent("all.safetensors")
        let entries = SafetensorsDType.allCases.map { SafetensorsWriter.Entry(name: "t.\($0.rawValue)", dtype: $0, shape: [2, 3]) }
        let w = try SafetensorsWriter(url: url, tensors: entries, metadata: [("format", "pt"), ("note", "ü")])
        var expected: [String: [UInt8]] = [:]
        for e in entries {
            let bytes = (0..<e.byteCount).map { UInt8(truncatingIfNeeded: $0 * 7 + e.dtype.size) }
            expected[e.name] = bytes
            try w.write(bytes)
        }
        try w.finish()
        let f = try SafetensorsFile(url: url)
        XCTAssertEqual(f.metadata.map(\.0), ["format", "note"])
        XCTAssertEqual(f.metadata.last?.1, "ü")
        XCTAssertEqual(f.tensors.map(\.name), entries.map(\.name))
        for t in f.tensors {
            XCTAssertEqual(t.shape, [2, 3])
            XCTAssertEqual(Array(t.data), expected[t.name])
        }
        // header is padded to 8 bytes as the reference writer does
        let n = try Data(contentsOf: url).prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        XCTAssertEqual(n % 8, 0)
    }

    func testFloatConversions() throws {
        let dir = try Fixtures.tempDir(self)
        let url = dir.appendingPathComponent("f.safetensors")
        let vals: [Float] = [0, 1, -2.5, 65504, 1e-3, -0.0]
        let w = try SafetensorsWriter(url: url, tensors: [.init(name: "h", dtype: .F16, shape: [6]), .init(name: "b", dtype: .BF16, shape: [6]),
                                                          .init(name: "e4", dtype: .F8_E4M3, shape: [4]), .init(name: "e5", dtype: .F8_E5M2, shape: [3])])
        try w.write(vals.flatMap { v in withUnsafeBytes(of: FloatFormats.floatToHalf(v).littleEndian) { Array($0) } })
        try w.write(vals.flatMap { v in withUnsafeBytes(of: FloatFormats.floatToBF16(v).littleEndian) { Array($0) } })
        try w.write([0x38, 0xB8, 0x7E, 0x01])  // 1, -1, 448, 2^-9
        try w.write([0x3C, 0xC0, 0x7C])        // 1, -2, inf
        try w.finish()
        let f = try SafetensorsFile(url: url)
        XCTAssertEqual(f.tensor(named: "h")!.floats(), vals.map { Float(Float16($0)) })
        XCTAssertEqual(f.tensor(named: "b")!.floats(), [0, 1, -2.5, 65536, Float(bitPattern: 0x3A83_0000), -0.0])
        XCTAssertEqual(f.tensor(named: "e4")!.floats(), [1, -1, 448, 0.001953125])
        XCTAssertEqual(f.tensor(named: "e5")!.floats(), [1, -2, .infinity])
    }

    func testValidationErrorsNameFileAndTensor() throws {
        let dir = try Fixtures.tempDir(self)
        let ok = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        let cases: [(String, URL, String)] = [
            ("header beyond file", raw(dir, "h.safetensors", header: ok, data: [], headerLength: 1 << 20), "beyond the end"),
            ("truncated data", raw(dir, "t.safetensors", header: ok, data: [0, 0, 0]), "'a'"),
            ("offset out of range", raw(dir, "o.safetensors", header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#, data: Array(repeating: 0, count: 8)), "'a'"),
            ("shape x dtype", raw(dir, "s.safetensors", header: #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: Array(repeating: 0, count: 8)), "3"),
            ("overlap", raw(dir, "v.safetensors", header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: Array(repeating: 0, count: 8)), "overlap"),
            ("duplicate", raw(dir, "d.safetensors", header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: Array(repeating: 0, count: 8)), "twice"),
            ("bad dtype", raw(dir, "b.safetensors", header: #"{"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,4]}}"#, data: Array(repeating: 0, count: 4)), "dtype"),
            ("negative dim", raw(dir, "n.safetensors", header: #"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: Array(repeating: 0, count: 4)), "dimension"),
            ("bad json", raw(dir, "j.safetensors", header: #"{"a":{"dtype":"F32""#, data: []), "JSON"),
            ("no header", raw(dir, "z.safetensors", header: "", data: [], headerLength: 0), "JSON"),
        ]
        for (what, url, needle) in cases {
            XCTAssertThrowsError(try SafetensorsFile(url: url), what) { e in
                XCTAssertTrue("\(e)".contains(url.lastPathComponent), "\(what): \(e)")
                XCTAssertTrue("\(e)".contains(needle), "\(what): \(e)")
            }
        }
        let short = dir.appendingPathComponent("short.safetensors")
        FileManager.default.createFile(atPath: short.path, contents: Data([1, 2, 3]))
        XCTAssertThrowsError(try SafetensorsFile(url: short))
    }

    func testShardedCheckpointValidation() throws {
        let dir = try Fixtures.tempDir(self)
        func shard(_ name: String, _ tensors: [String]) throws {
            let w = try SafetensorsWriter(url: dir.appendingPathComponent(name), tensors: tensors.map { .init(name: $0, dtype: .F32, shape: [1]) })
            for _ in tensors { try w.write([0, 0, 128, 63]) }
            try w.finish()
        }
        func index(_ map: [(String, String)]) throws {
            let j = JSONValue.object([("metadata", .object([])), ("weight_map", .object(map.map { ($0.0, .string($0.1)) }))])
            try j.serialized().write(to: dir.appendingPathComponent("model.safetensors.index.json"), atomically: true, encoding: .utf8)
        }
        try shard("model-00001-of-00002.safetensors", ["a", "b"])
        try shard("model-00002-of-00002.safetensors", ["c"])
        try index([("a", "model-00001-of-00002.safetensors"), ("b", "model-00001-of-00002.safetensors"), ("c", "model-00002-of-00002.safetensors")])
        let ck = try SafetensorsCheckpoint(folder: dir)
        XCTAssertEqual(ck.tensors.map(\.name), ["a", "b", "c"])
        XCTAssertEqual(ck.tensor(named: "c")?.floats(), [1])

        try index([("a", "model-00001-of-00002.safetensors"), ("b", "model-00001-of-00002.safetensors"), ("c", "model-00002-of-00002.safetensors"), ("d", "model-00002-of-00002.safetensors")])
        XCTAssertThrowsError(try SafetensorsCheckpoint(folder: dir)) { XCTAssertTrue("\($0)".contains("'d'") && "\($0)".contains("absent"), "\($0)") }
        try index([("a", "model-00001-of-00002.safetensors"), ("c", "model-00002-of-00002.safetensors")])
        XCTAssertThrowsError(try SafetensorsCheckpoint(folder: dir)) { XCTAssertTrue("\($0)".contains("'b'") && "\($0)".contains("not listed"), "\($0)") }
        try index([("a", "model-00001-of-00002.safetensors"), ("b", "model-00001-of-00002.safetensors"), ("c", "model-00003-of-00002.safetensors")])
        XCTAssertThrowsError(try SafetensorsCheckpoint(folder: dir)) { XCTAssertTrue("\($0)".contains("missing"), "\($0)") }
        // without an index, a tensor in two files is a duplicate
        try FileManager.default.removeItem(at: dir.appendingPathComponent("model.safetensors.index.json"))
        try shard("model-00002-of-00002.safetensors", ["a"])
        XCTAssertThrowsError(try SafetensorsCheckpoint(folder: dir)) { XCTAssertTrue("\($0)".contains("'a'") && "\($0)".contains("both"), "\($0)") }
    }

    /// The 4-shard tiny llama holds exactly the single-file checkpoint's tensors.
    func testRealShardedCheckpointMatchesSingleFile() throws {
        let one = try SafetensorsCheckpoint(folder: try Fixtures.sharedFile("models/tiny/tiny-llama"))
        let four = try SafetensorsCheckpoint(folder: try Fixtures.sharedFile("models/tiny/tiny-llama-sharded"))
        XCTAssertEqual(four.files.count, 4)
        XCTAssertEqual(Set(one.tensors.map(\.name)), Set(four.tensors.map(\.name)))
        for t in one.tensors {
            let u = try XCTUnwrap(four.tensor(named: t.name))
            XCTAssertEqual(u.shape, t.shape); XCTAssertEqual(u.dtype, t.dtype)
            XCTAssertTrue(u.data.elementsEqual(t.data), t.name)
        }
        let report = try InspectReport(url: try Fixtures.sharedFile("models/tiny/tiny-llama-sharded"))
        XCTAssertEqual(report.tensors.count, one.tensors.count)
        XCTAssertEqual(Set(report.tensors.compactMap(\.file)).count, 4)
    }

    /// A real 135M checkpoint built by make-hf.py (bf16 single file and f32 in two shards).
    func testSmolLM2Checkpoints() throws {
        let script = try Fixtures.sharedFile("models/smollm2-135m-instruct/make-hf.py")
        let gguf = try Fixtures.sharedFile("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
        let out = try SmolLM2Checkpoint.build(script: script, gguf: gguf)
        let bf16 = try SafetensorsCheckpoint(folder: out.appendingPathComponent("SmolLM2-135M-Instruct-hf"))
        let f32 = try SafetensorsCheckpoint(folder: out.appendingPathComponent("SmolLM2-135M-Instruct-hf-f32"))
        XCTAssertEqual(f32.files.count, 2)
        XCTAssertEqual(bf16.tensors.count, f32.tensors.count)
        XCTAssertEqual(bf16.tensors.count, 272)
        for t in bf16.tensors.prefix(40) {
            XCTAssertEqual(t.dtype, .BF16)
            let u = try XCTUnwrap(f32.tensor(named: t.name))
            XCTAssertEqual(u.shape, t.shape)
            // bf16 is f32 rounded to nearest even
            let a = t.floats(), b = u.floats()
            XCTAssertEqual(a, b.map { FloatFormats.bf16ToFloat(FloatFormats.floatToBF16($0)) }, t.name)
        }
    }
}
