import Foundation
import SmeltFormats
import SmeltTokenizer

extension Exporter {
    /// Writes the tokenizer files of the GGUF's vocabulary (none yet: see docs/CONVERT.md).
    static func exportTokenizer(_ g: GGUFFile, to dir: URL) throws -> [String] { [] }
}
