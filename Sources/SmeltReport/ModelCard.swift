import Foundation
import SmeltEval
import SmeltFormats
import SmeltStore

/// A Hugging Face model card (`README.md`) for a folder of quants, from the results store.
public enum QuantModelCard {
    /// What the card says about the source model (from `smelt license` of the source).
    public struct Source: Sendable {
        public var license: String?
        public var baseModels: [String]
        public var name: String
        public init(license: String?, baseModels: [String], name: String) {
            self.license = license; self.baseModels = baseModels; self.name = name
        }
    }

    /// The card text; every `.gguf` in `folder` gets a row (figures from its latest KLD run, if any).
    public static func make(folder: URL, store: ResultsStore, source: Source, quantizedBy: String?) throws -> String {
        // Model files only: importance matrices are GGUF files too (general.type = imatrix).
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".gguf") }.sorted().filter {
            (try? GGUFFile(url: folder.appendingPathComponent($0)))?.metadata["general.type"]?.stringValue != "imatrix"
        }
        guard !files.isEmpty else { throw SmeltError("\(folder.path): no .gguf files to describe") }
        let runs = try store.runs().filter { $0.status == "ok" }
        let plans = try store.planSummaries()
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        var rows: [ReportRow] = []
        var made: [String: RunRecord] = [:]
        var evaluation: RunRecord?
        for f in files {
            let id = try store.identify(folder.appendingPathComponent(f))
            var row = ReportRow(file: f, modelKey: id.key, runID: 0, source: "smelt", isBase: false, bytes: id.bytes,
                                sizeMiB: id.bytes.map { Double($0) / 1_048_576 }, bitsPerWeight: plans[id.key]?.bitsPerWeight,
                                fileType: plans[id.key]?.fileTypeName)
            if plans[id.key] == nil, let p = try Recorder.plan(of: folder.appendingPathComponent(f), key: id.key) {
                try store.savePlan(p)
                row.bitsPerWeight = p.bitsPerWeight; row.fileType = p.fileTypeName
            }
            if let k = runs.last(where: { $0.kind == .klDivergence && $0.model?.key == id.key }),
               let res = k.result.flatMap({ try? decoder.decode(KLDivergenceResult.self, from: Data($0.utf8)) }) {
                row.runID = k.id ?? 0
                row.ppl = res.pplQ; row.pplRatio = res.pplRatio; row.kld = res.kld
                row.kld99_9 = res.kldDistribution?.p99_9; row.sameTop = res.sameTop; row.rmsDeltaP = res.rmsDeltaP
                evaluation = evaluation ?? k
            }
            if let q = runs.last(where: { $0.kind == .quantize && $0.model?.key == id.key }) { made[f] = q }
            rows.append(row)
        }
        rows.sort { ($0.bytes ?? .max) < ($1.bytes ?? .max) }
        Report.markFrontier(&rows)

        var s = "---\n"
        if source.baseModels.count == 1 { s += "base_model: \(yaml(source.baseModels[0]))\n" }
        else if !source.baseModels.isEmpty { s += "base_model:\n" + source.baseModels.map { "- \(yaml($0))\n" }.joined() }
        s += "base_model_relation: quantized\n"
        if let l = source.license { s += "license: \(yaml(l))\n" }
        s += "tags:\n- gguf\n- quantized\n- smelt\n- llama.cpp\n"
        if let q = quantizedBy { s += "quantized_by: \(yaml(q))\n" }
        s += "---\n\n# \(source.name) GGUF\n\n"
        s += "GGUF quantizations of "
        s += source.baseModels.first.map { "[\($0)](https://huggingface.co/\($0))" } ?? source.name
        s += ", made with Smelt \(SmeltVersion.string) (files byte-identical to llama.cpp's llama-quantize for its presets).\n\n"
        s += "## Files\n\n"
        s += "| file | type | size (MiB) | bits per weight | PPL | PPL(Q)/PPL(base) | mean KLD | 99.9 % KLD | same top p | recommended |\n"
        s += "|---|---|---:|---:|---:|---:|---:|---:|---:|---|\n"
        func f(_ v: Double?, _ fmt: String) -> String { v.map { String(format: fmt, $0) } ?? "–" }
        let reference = evaluation?.baseModel?.key
        for r in rows {
            let rec = r.modelKey == reference ? "reference (the KLD base)" : r.frontierMean ? "✓" : ""
            s += "| \(r.file) | \(r.fileType ?? "–") | \(f(r.sizeMiB, "%.2f")) | \(f(r.bitsPerWeight, "%.3f")) | \(f(r.ppl?.value, "%.4f")) | "
            s += "\(f(r.pplRatio?.value, "%.4f")) | \(f(r.kld?.value, "%.6f")) | \(f(r.kld99_9, "%.6f")) | "
            s += "\(f(r.sameTop.map { 100 * $0.value }, "%.2f %%")) | \(rec) |\n"
        }
        let recommended = rows.filter(\.frontierMean)
        s += "\n## Recommended\n\n"
        if recommended.isEmpty {
            s += "No file of this folder has a stored KL-divergence run yet (`smelt perplexity FILE --kl-divergence BASE`).\n"
        } else {
            s += "These files are on the Pareto frontier of size and mean KL-divergence: no other file here is both smaller and closer to the original.\n\n"
            for r in recommended { s += "- **\(r.file)** — \(f(r.sizeMiB, "%.1f")) MiB, mean KLD \(f(r.kld?.value, "%.4f"))\n" }
        }
        s += "\n## How they were made\n\n"
        for r in rows {
            if r.modelKey == reference { s += "- \(r.file): the unquantized reference.\n"; continue }
            guard let q = made[r.file] else { s += "- \(r.file): not quantized by Smelt on this machine (no record).\n"; continue }
            var line = "- \(r.file): recipe `\(q.recipeName ?? "?")`"
            if let im = q.imatrix {
                line += ", importance matrix `\(im.name)` (sha256 \(im.shortKey))"
                if let imRun = runs.last(where: { $0.kind == .imatrix && $0.imatrix?.key == im.key }), let t = imRun.text {
                    line += " computed on `\(t.name)`" + (imRun.chunks.map { " (\($0) chunks of \(imRun.contextLength ?? 0) tokens)" } ?? "")
                }
            } else { line += ", no importance matrix" }
            s += line + ".\n"
        }
        if let e = evaluation {
            s += "\nQuality was measured with `smelt perplexity` against the logits of \(e.baseModel?.name ?? "the base model")"
            s += e.text.map { " on `\($0.name)`" } ?? ""
            s += " (context \(e.contextLength ?? 0), \(e.chunks ?? 0) chunks). KLD: KL-divergence of the quant's next-token "
            s += "distribution from the original's, averaged over tokens; same top p: how often both pick the same most likely token.\n"
        }
        return s
    }

    static func yaml(_ s: String) -> String {
        s.allSatisfy({ $0.isLetter || $0.isNumber || "-_./".contains($0) }) ? s : "\"" + s.replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
