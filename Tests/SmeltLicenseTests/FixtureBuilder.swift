import Foundation
import XCTest
import SmeltTestSupport

/// Writes small model folders (cards, configs, license texts) into a temp folder.
struct FixtureBuilder {
    let root: URL

    init(_ test: XCTestCase) throws { root = try Fixtures.tempDir(test) }

    /// Creates `relative` (a folder) with `files` (name → content) and returns its URL.
    @discardableResult
    func model(_ relative: String, _ files: [String: String]) throws -> URL {
        let dir = root.appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for (name, text) in files {
            let u = dir.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: u.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: u)
        }
        return dir
    }

    /// A README.md with YAML front matter.
    static func card(_ frontMatter: String, body: String = "# Model\n") -> String {
        "---\n" + frontMatter + (frontMatter.hasSuffix("\n") ? "" : "\n") + "---\n" + body
    }

    /// The opening of the Apache-2.0 text.
    static let apacheText = """
                                     Apache License
                               Version 2.0, January 2004
                            http://www.apache.org/licenses/

       TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION
    """

    /// The opening of the Llama 3.1 license text.
    static let llama31Text = """
    LLAMA 3.1 COMMUNITY LICENSE AGREEMENT
    Llama 3.1 Version Release Date: July 23, 2024
    "Agreement" means the terms and conditions for use, reproduction, distribution and modification of the Llama Materials set forth herein.
    """

    /// The Luminum-123B merge: a mergekit card (no license, as mergekit writes it) and its config.
    static let luminumFiles: [String: String] = [
        "README.md": card("""
        base_model:
        - mistralai/Mistral-Large-Instruct-2407
        - NeverSleep/Lumimaid-v0.2-123B
        - anthracite-org/magnum-v2-123b
        library_name: transformers
        tags:
        - mergekit
        - merge
        """, body: "# Luminum-123B\nThis is a merge of pre-trained language models created using mergekit.\n"),
        "mergekit_config.yml": """
        models:
          - model: anthracite-org/magnum-v2-123b
            parameters:
              weight: 0.19
              density: 0.5
          - model: NeverSleep/Lumimaid-v0.2-123B
            parameters:
              weight: 0.34
              density: 0.8
        merge_method: della_linear
        base_model: mistralai/Mistral-Large-Instruct-2407
        dtype: bfloat16
        """,
    ]
}

/// Builds a minimal GGUF (v3) header with the given string / string-array / uint32 metadata and no tensors.
enum GGUFWriter {
    enum V { case s(String), a([String]), u32(UInt32), f32s([Float]) }

    static func data(_ kv: [(String, V)]) -> Data {
        var d = Data("GGUF".utf8)
        func u32(_ x: UInt32) { withUnsafeBytes(of: x.littleEndian) { d.append(contentsOf: $0) } }
        func u64(_ x: UInt64) { withUnsafeBytes(of: x.littleEndian) { d.append(contentsOf: $0) } }
        func str(_ s: String) { u64(UInt64(s.utf8.count)); d.append(contentsOf: Array(s.utf8)) }
        u32(3); u64(0); u64(UInt64(kv.count))
        for (k, v) in kv {
            str(k)
            switch v {
            case let .s(s): u32(8); str(s)
            case let .a(a): u32(9); u32(8); u64(UInt64(a.count)); a.forEach(str)
            case let .u32(x): u32(4); u32(x)
            case let .f32s(f): u32(9); u32(6); u64(UInt64(f.count)); f.forEach { u32($0.bitPattern) }
            }
        }
        return d
    }
}
