import Foundation
import SmeltEval
import SmeltStore

/// The report as a terminal table, Markdown, CSV or JSON.
public enum ReportFormat: String, CaseIterable, Sendable {
    case terminal, markdown, csv, json, html

    /// The format a file name asks for (`.md`, `.csv`, `.json`, `.html`/`.htm`).
    public init?(path: String) {
        switch URL(fileURLWithPath: path).pathExtension.lowercased() {
        case "md", "markdown": self = .markdown
        case "csv": self = .csv
        case "json": self = .json
        case "html", "htm": self = .html
        case "txt": self = .terminal
        default: return nil
        }
    }
}

extension ReportGroup {
    /// The column titles of the table forms.
    public static let columns = ["file", "MiB", "BPW", "PPL", "±", "PPL(Q)/PPL(base)", "mean KLD", "± KLD", "median KLD",
                                 "99% KLD", "99.9% KLD", "max KLD", "same top p %", "RMS Δp %", "tokens/s", "frontier"]

    /// One row as the table forms print it (empty strings for missing values).
    public func cells(_ r: ReportRow) -> [String] {
        func f(_ v: Double?, _ fmt: String) -> String { v.map { String(format: fmt, $0) } ?? "" }
        var marks: [String] = []
        if r.frontierMean { marks.append("mean") }
        if r.frontierP99_9 { marks.append("99.9") }
        return [r.file + (r.isBase ? " (base)" : ""), f(r.sizeMiB, "%.2f"), f(r.bitsPerWeight, "%.3f"), f(r.ppl?.value, "%.4f"),
                f(r.ppl?.uncertainty, "%.4f"), f(r.pplRatio?.value, "%.4f"), f(r.kld?.value, "%.6f"), f(r.kld?.uncertainty, "%.6f"),
                f(r.kldMedian, "%.6f"), f(r.kld99, "%.6f"), f(r.kld99_9, "%.6f"), f(r.kldMax, "%.6f"),
                f(r.sameTop.map { 100 * $0.value }, "%.3f"), f(r.rmsDeltaP.map { 100 * $0.value }, "%.3f"),
                f(r.tokensPerSecond, "%.1f"), marks.joined(separator: "+")]
    }

    /// What the report covers, in one line.
    public var headline: String {
        "base \(baseModel)" + (baseKey.hasPrefix("name:") ? "" : " (\(String(baseKey.prefix(12))))") + ", text \(text), -c \(context)"
            + (chunks.map { ", \($0) chunks" } ?? "") + ", Smelt \(smeltVersion), \(generated)"
    }

    public func render(_ format: ReportFormat, plans: [String: ModelPlanRecord] = [:]) throws -> String {
        switch format {
        case .terminal: return terminal()
        case .markdown: return markdown()
        case .csv: return csv()
        case .json:
            let e = JSONEncoder()
            e.outputFormatting = [.prettyPrinted, .sortedKeys]
            e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
            return String(decoding: try e.encode(self), as: UTF8.self) + "\n"
        case .html: return ReportHTML.page(self, plans: plans)
        }
    }

    func terminal() -> String {
        let header = Self.columns
        let body = rows.map(cells)
        var width = header.map(\.count)
        for r in body { for (i, c) in r.enumerated() { width[i] = max(width[i], c.count) } }
        func line(_ c: [String]) -> String {
            c.enumerated().map { i, s in i == 0 ? s.padding(toLength: width[i], withPad: " ", startingAt: 0)
                : String(repeating: " ", count: width[i] - s.count) + s }.joined(separator: "  ")
        }
        var s = headline + "\n" + line(header) + "\n" + line(width.map { String(repeating: "-", count: $0) }) + "\n"
        for r in body { s += line(r) + "\n" }
        s += "frontier: on the Pareto frontier of size and mean KLD (mean) / 99.9 % KLD (99.9)\n"
        return s
    }

    func markdown() -> String {
        var s = "# Quantization report\n\n\(headline)\n\n"
        s += "| " + Self.columns.joined(separator: " | ") + " |\n"
        s += "|" + Self.columns.enumerated().map { $0.offset == 0 ? "---" : "---:" }.joined(separator: "|") + "|\n"
        for r in rows { s += "| " + cells(r).map { $0.replacingOccurrences(of: "|", with: "\\|") }.joined(separator: " | ") + " |\n" }
        s += "\nfrontier: on the Pareto frontier of size and mean KLD (mean) / 99.9 % KLD (99.9).\n"
        return s
    }

    func csv() -> String {
        func q(_ s: String) -> String { s.contains(where: { ",\"\n".contains($0) }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s }
        var s = Self.columns.map(q).joined(separator: ",") + "\n"
        for r in rows { s += cells(r).map(q).joined(separator: ",") + "\n" }
        return s
    }
}
