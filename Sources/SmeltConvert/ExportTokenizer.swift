import Foundation
import SmeltFormats
import SmeltTokenizer

extension Exporter {
    /// Writes the tokenizer files of the GGUF's vocabulary (tokenizer.json or tokenizer.model,
    /// tokenizer_config.json with the chat template, special_tokens_map.json) and returns the new
    /// file names and what a re-import cannot reproduce.
    static func exportTokenizer(_ g: GGUFFile, to dir: URL) throws -> ([String], [String]) {
        guard g.metadata["tokenizer.ggml.model"] != nil else { return ([], ["no tokenizer in the GGUF: none exported"]) }
        let r = try HFTokenizerExport.export(metadata: HFTokenizerExport.metaEntries(g.metadata), to: dir)
        return (r.files.filter { $0 != "config.json" }, r.notes)
    }
}
