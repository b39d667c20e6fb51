// libFuzzer harness over Smelt's parsers (`make fuzz`, docs/RELIABILITY.md). Compiled with
// FuzzPipelines.swift by swiftc -sanitize=fuzzer,address and linked to Smelt's modules, which
// SwiftPM builds with coverage and ASan in .build/fuzz/pm (not part of the package's own build).
// The target is chosen with SMELT_FUZZ_TARGET: gguf, safetensors, json, imatrix, sentencepiece,
// tokenizer-json here; recipe, card, kld in FuzzPipelines.swift. Every input must parse or throw a
// SmeltError — never crash, hang or allocate without bound (libFuzzer's -rss_limit_mb and -timeout
// catch those).
import Foundation
import SmeltFormats
import SmeltTokenizer

private let target = ProcessInfo.processInfo.environment["SMELT_FUZZ_TARGET"] ?? "gguf"
private let scratch = "/dev/shm/smelt-fuzz-\(getpid())"

/// Parsers that take a file get the input written to a scratch file first.
private func withFile(_ data: Data, _ body: (URL) throws -> Void) {
    let u = URL(fileURLWithPath: scratch)
    _ = FileManager.default.createFile(atPath: u.path, contents: data)
    defer { unlink(u.path) }
    do { try body(u) } catch is SmeltError {} catch { fatalError("not a SmeltError: \(error)") }
}

private func fuzzOne(_ data: Data) {
    switch target {
    case "gguf":
        withFile(data) { u in
            let g = try GGUFFile(url: u)
            for t in g.tensors { _ = g.data(for: t).count; _ = t.rowCount; _ = t.elementCount }
            for (_, v) in g.metadata { _ = v.render(maxItems: 8) }
        }
    case "safetensors":
        withFile(data) { u in
            let f = try SafetensorsFile(url: u)
            for t in f.tensors where t.elementCount <= 1 << 16 { _ = t.floats() }
        }
    case "json":
        do { _ = try JSONValue.parse(data) } catch is JSONError {} catch { fatalError("\(error)") }
    case "imatrix":
        withFile(data) { u in
            let im = try Imatrix(url: u)
            _ = im.importanceWeights()
        }
    case "sentencepiece":
        do { _ = try SentencePieceModel(data: [UInt8](data)) } catch is SmeltError {} catch { fatalError("\(error)") }
    case "tokenizer-json":
        do {
            let j = try JSONValue.parse(data)
            let t = try HFTokenizerJSON(json: j, path: "fuzz")
            _ = t.fullVocab()
        } catch is SmeltError {} catch is JSONError {} catch { fatalError("\(error)") }
    default:
        if !fuzzPipeline(target, data) { fatalError("unknown SMELT_FUZZ_TARGET \(target)") }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    fuzzOne(Data(bytes: bytes, count: count))
    return 0
}
