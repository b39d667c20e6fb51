import Foundation
import XCTest
import SmeltFormats
import SmeltTestSupport

/// Real GGUF files, and llama.cpp's own Python reader (gguf-py) as a second client.
final class GGUFRealFileTests: XCTestCase {
    func testDemoModel() throws {
        let url = try Fixtures.sharedFile("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
        let g = try GGUFFile(url: url)
        XCTAssertEqual(g.metadata.count, 33)  // gguf-py lists 36 fields: these plus GGUF.version/tensor_count/kv_count
        XCTAssertEqual(g.tensors.count, 272)
        XCTAssertEqual(g.metadata["general.architecture"], .string("llama"))
        XCTAssertEqual(g.metadata["llama.block_count"], .uint32(30))
        XCTAssertEqual(g.metadata["tokenizer.ggml.tokens"]?.arrayValue?.count, 49152)
        XCTAssertEqual(g.metadata["tokenizer.ggml.merges"]?.arrayValue?.count, 48900)
        let emb = try XCTUnwrap(g.tensor(named: "token_embd.weight"))
        XCTAssertEqual(emb.shape, [576, 49152]); XCTAssertEqual(emb.type, .q8_0)
        XCTAssertEqual(g.tensors.filter { $0.type == .q4_1 }.count, 210)

        let report = try InspectReport(url: url)
        XCTAssertEqual(report.metadata.count, 33)
        XCTAssertEqual(report.tensors.count, 272)
        let json = try JSONValue.parse(report.json().serialized())
        XCTAssertEqual(json["metadata"]?.objectValue?.count, 33)
        XCTAssertEqual(json["tensors"]?.arrayValue?.count, 272)
        XCTAssertEqual(json["tensors"]?.arrayValue?.first?["offset"]?.intValue, g.fileOffset(of: emb))
        let text = report.text()
        XCTAssertTrue(text.contains("(49152 string items)"), "long arrays are abbreviated")
        XCTAssertTrue(text.contains("token_embd.weight"))
    }

    /// Runs gguf-py on `url` and returns its view: fields (name, types, value) and tensors.
    func ggufPy(_ url: URL) throws -> JSONValue {
        guard let py = Fixtures.venvPython else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("no .venv (make venv)") }
            throw XCTSkip("no .venv with gguf-py (make venv)")
        }
        let script = """
        import json, sys
        from gguf import GGUFReader, GGUFValueType
        r = GGUFReader(sys.argv[1])
        fields = []
        for name, f in r.fields.items():
            if name.startswith("GGUF."): continue
            v = f.contents()
            if isinstance(v, float) and v != v: v = "nan"
            if isinstance(v, list): v = [("nan" if isinstance(x, float) and x != x else x) for x in v]
            fields.append({"name": name, "types": [t.name for t in f.types], "value": v})
        tensors = [{"name": t.name, "type": t.tensor_type.name, "shape": [int(x) for x in t.shape],
                    "offset": int(t.data_offset), "bytes": int(t.n_bytes), "sum": int(t.data.view("uint8").astype("uint64").sum())} for t in r.tensors]
        print(json.dumps({"fields": fields, "tensors": tensors}, default=str))
        """
        let p = Process()
        p.executableURL = py
        p.arguments = ["-c", script, url.path]
        let pipe = Pipe(); p.standardOutput = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        return try JSONValue.parse(data)
    }

    /// Smelt writes; gguf-py reads back every key (name, type, value) and tensor.
    func testGGUFPyReadsSmeltFiles() throws {
        let dir = try Fixtures.tempDir(self)
        let url = dir.appendingPathComponent("py.gguf")
        var m = GGUFRoundTripTests.allTypesMetadata(alignment: 64)
        m["t.arr.nested"] = nil  // gguf-py's contents() cannot return nested arrays; they round-trip in GGUFRoundTripTests
        let ts = GGUFRoundTripTests.tensors()
        let w = try GGUFWriter(url: url, metadata: m, tensors: ts.map(\.0))
        for (_, b) in ts { try w.write(b) }
        try w.finish()
        let py = try ggufPy(url)
        let fields = try XCTUnwrap(py["fields"]?.arrayValue)
        XCTAssertEqual(fields.map { $0["name"]!.stringValue! }, m.keys)
        for (f, (k, v)) in zip(fields, m.entries) {
            let types = f["types"]!.arrayValue!.map { $0.stringValue! }
            if case let .array(et, a) = v { XCTAssertEqual(types, a.isEmpty ? ["ARRAY"] : ["ARRAY", et.name], k) } else { XCTAssertEqual(types, [v.type.name], k) }
            let pv = f["value"]!
            switch v {
            case .float32(let x) where x.isNaN: XCTAssertEqual(pv, .string("nan"), k)
            case .float32(let x): XCTAssertEqual(Float(pv.doubleValue!), x, k)
            case .float64(let x): XCTAssertEqual(pv.doubleValue!, x, k)
            case .array(.float32, let a): XCTAssertEqual(pv.arrayValue!.map { Float($0.doubleValue!) }, a.map { Float($0.doubleValue!) }, k)
            case .uint64(let x): XCTAssertEqual(pv.doubleValue, Double(x), k)
            default: XCTAssertEqual(pv.serialized(), v.json().serialized(), k)
            }
        }
        let g = try GGUFFile(url: url)
        let pts = try XCTUnwrap(py["tensors"]?.arrayValue)
        XCTAssertEqual(pts.count, ts.count)
        for (pt, t) in zip(pts, g.tensors) {
            XCTAssertEqual(pt["name"]?.stringValue, t.name)
            XCTAssertEqual(pt["type"]?.stringValue?.lowercased(), t.type.name.lowercased())
            XCTAssertEqual(pt["offset"]?.intValue, g.fileOffset(of: t), t.name)
            XCTAssertEqual(pt["bytes"]?.intValue, t.byteCount, t.name)
            XCTAssertEqual(pt["sum"]?.intValue, g.data(for: t).reduce(0) { $0 + Int($1) }, t.name)
        }
    }

    /// Smelt reads what gguf-py reads in a real file, key for key.
    func testSmeltAgreesWithGGUFPyOnDemoModel() throws {
        let url = try Fixtures.sharedFile("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
        let py = try ggufPy(url)
        let g = try GGUFFile(url: url)
        let fields = try XCTUnwrap(py["fields"]?.arrayValue)
        XCTAssertEqual(fields.map { $0["name"]!.stringValue! }, g.metadata.keys)
        for f in fields {
            let k = f["name"]!.stringValue!
            let v = g.metadata[k]!
            if case .float32(let x) = v { XCTAssertEqual(Float(f["value"]!.doubleValue!), x, k); continue }
            XCTAssertEqual(f["value"]!.serialized(), v.json().serialized(), k)
        }
        for (pt, t) in zip(py["tensors"]!.arrayValue!, g.tensors) {
            XCTAssertEqual(pt["name"]?.stringValue, t.name)
            XCTAssertEqual(pt["offset"]?.intValue, g.fileOffset(of: t))
        }
    }
}
