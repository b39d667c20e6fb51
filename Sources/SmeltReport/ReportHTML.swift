import Foundation
import SmeltEval
import SmeltStore

/// The report as one self-contained HTML page: inline CSS and SVG, no script, no
/// network. KLD against size (mean and 99.9 %, log scale, frontiers drawn), PPL ratio
/// against bits per weight, a layer × tensor-role map of each quant's types, the running
/// KLD per chunk of the frontier quants, and the table.
enum ReportHTML {
    static func esc(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
    static func num(_ v: Double) -> String { String(format: "%.17g", v) }
    static func px(_ v: Double) -> String { String(format: "%.1f", v) }

    static let palette = ["#b2182b", "#d6604d", "#f4a582", "#fddbc7", "#e0e0e0", "#d1e5f0", "#92c5de", "#4393c3",
                          "#2166ac", "#053061", "#5aae61", "#1b7837", "#762a83", "#9970ab"]

    static func page(_ g: ReportGroup, plans: [String: ModelPlanRecord]) -> String {
        let quants = g.rows.filter { !$0.isBase }
        labelPrefix = commonPrefix(quants.map { $0.file.hasSuffix(".gguf") ? String($0.file.dropLast(5)) : $0.file })
        var h = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8">
        <title>Smelt report: \(esc(g.baseModel))</title>
        <style>
        body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
        h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px}
        .meta{color:#555} .meta b{color:#222}
        table{border-collapse:collapse;font-variant-numeric:tabular-nums}
        th,td{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right;white-space:nowrap}
        th:first-child,td:first-child{text-align:left}
        tr.frontier td{background:#eef6ee} tr.base td{color:#555;font-style:italic}
        svg{background:#fff;border:1px solid #ddd} .axis{stroke:#444} .grid{stroke:#eee}
        svg text{font:11px system-ui,sans-serif;fill:#333}
        .maps{display:flex;flex-wrap:wrap;gap:16px} .maps figure{margin:0} figcaption{font-size:12px;color:#444}
        .legend span{display:inline-block;margin-right:12px} .legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-2px}
        </style></head><body>
        <h1>Quantization report: \(esc(g.baseModel))</h1>
        <p class="meta">Base model <b>\(esc(g.baseModel))</b> (<code>\(esc(String(g.baseKey.prefix(16))))</code>) ·
        text <b>\(esc(g.text))</b> · context <b>\(g.context)</b>\(g.chunks.map { " · <b>\($0)</b> chunks" } ?? "")\(g.tokens.map { " · \($0) tokens" } ?? "") ·
        Smelt \(esc(g.smeltVersion)) · generated \(esc(g.generated))</p>
        <p class="meta">Pick the smallest file whose KLD you accept: points on the drawn frontier are not beaten in both size and KLD
        by any other quant. Mean KLD is the average loss; 99.9 % KLD shows the rare tokens a quant gets badly wrong.</p>

        """
        h += "<h2>KL-divergence against file size</h2>\n" + kldChart(quants)
        h += "<h2>PPL(Q)/PPL(base) against bits per weight</h2>\n" + ratioChart(quants)
        h += "<h2>Types per layer and tensor</h2>\n" + typeMaps(quants, plans: plans)
        h += "<h2>Running mean KLD per chunk (frontier quants)</h2>\n" + chunkChart(quants)
        h += "<h2>Table</h2>\n" + table(g)
        h += "</body></html>\n"
        return h
    }

    // MARK: charts

    struct Frame {
        var w = 760.0, h = 420.0, left = 64.0, right = 24.0, top = 16.0, bottom = 44.0
        var x0: Double, x1: Double, y0: Double, y1: Double, logY: Bool
        func x(_ v: Double) -> Double { left + (v - x0) / max(x1 - x0, 1e-12) * (w - left - right) }
        func y(_ v: Double) -> Double {
            let (a, b, t) = logY ? (log10(y0), log10(y1), log10(max(v, 1e-12))) : (y0, y1, v)
            return h - bottom - (t - a) / max(b - a, 1e-12) * (h - top - bottom)
        }
    }

    static func axes(_ f: Frame, xLabel: String, yLabel: String) -> String {
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(f.w))\" height=\"\(Int(f.h))\" viewBox=\"0 0 \(Int(f.w)) \(Int(f.h))\">\n"
        // x ticks
        for i in 0...5 {
            let v = f.x0 + (f.x1 - f.x0) * Double(i) / 5
            let x = f.x(v)
            s += "<line class=\"grid\" x1=\"\(px(x))\" y1=\"\(px(f.top))\" x2=\"\(px(x))\" y2=\"\(px(f.h - f.bottom))\"/>"
            s += "<text x=\"\(px(x))\" y=\"\(px(f.h - f.bottom + 16))\" text-anchor=\"middle\">\(String(format: v < 10 ? "%.2f" : "%.0f", v))</text>\n"
        }
        // y ticks
        if f.logY {
            var e = floor(log10(f.y0))
            while e <= ceil(log10(f.y1)) {
                let v = pow(10, e)
                if v >= f.y0 * 0.999 && v <= f.y1 * 1.001 {
                    let y = f.y(v)
                    s += "<line class=\"grid\" x1=\"\(px(f.left))\" y1=\"\(px(y))\" x2=\"\(px(f.w - f.right))\" y2=\"\(px(y))\"/>"
                    s += "<text x=\"\(px(f.left - 6))\" y=\"\(px(y + 4))\" text-anchor=\"end\">\(String(format: "%g", v))</text>\n"
                }
                e += 1
            }
        } else {
            for i in 0...5 {
                let v = f.y0 + (f.y1 - f.y0) * Double(i) / 5
                let y = f.y(v)
                s += "<line class=\"grid\" x1=\"\(px(f.left))\" y1=\"\(px(y))\" x2=\"\(px(f.w - f.right))\" y2=\"\(px(y))\"/>"
                s += "<text x=\"\(px(f.left - 6))\" y=\"\(px(y + 4))\" text-anchor=\"end\">\(String(format: "%.4g", v))</text>\n"
            }
        }
        s += "<line class=\"axis\" x1=\"\(px(f.left))\" y1=\"\(px(f.h - f.bottom))\" x2=\"\(px(f.w - f.right))\" y2=\"\(px(f.h - f.bottom))\"/>"
        s += "<line class=\"axis\" x1=\"\(px(f.left))\" y1=\"\(px(f.top))\" x2=\"\(px(f.left))\" y2=\"\(px(f.h - f.bottom))\"/>\n"
        s += "<text x=\"\(px((f.left + f.w - f.right) / 2))\" y=\"\(px(f.h - 8))\" text-anchor=\"middle\">\(esc(xLabel))</text>"
        s += "<text transform=\"translate(14,\(px((f.top + f.h - f.bottom) / 2))) rotate(-90)\" text-anchor=\"middle\">\(esc(yLabel))</text>\n"
        return s
    }

    static func padRange(_ lo: Double, _ hi: Double, log: Bool) -> (Double, Double) {
        if log { return (lo / 1.6, hi * 1.6) }
        let d = max(hi - lo, abs(hi) * 0.02, 1e-9)
        return (lo - d * 0.08, hi + d * 0.08)
    }

    static func kldChart(_ rows: [ReportRow]) -> String {
        let pts = rows.filter { $0.sizeMiB != nil && ($0.kld?.value ?? 0) > 0 }
        guard !pts.isEmpty else { return "<p>No quant has both a size and a KLD.</p>\n" }
        let sizes = pts.compactMap(\.sizeMiB)
        let ys = pts.compactMap { $0.kld?.value } + pts.compactMap(\.kld99_9).filter { $0 > 0 }
        let (x0, x1) = padRange(sizes.min()!, sizes.max()!, log: false)
        let (y0, y1) = padRange(ys.min()!, ys.max()!, log: true)
        let f = Frame(x0: x0, x1: x1, y0: y0, y1: y1, logY: true)
        var s = axes(f, xLabel: "file size (MiB)", yLabel: "KLD (log scale)")
        for (series, color, value, onFrontier) in [("mean", "#2166ac", { (r: ReportRow) in r.kld?.value }, { (r: ReportRow) in r.frontierMean }),
                                                   ("p99_9", "#d6604d", { (r: ReportRow) in r.kld99_9 }, { (r: ReportRow) in r.frontierP99_9 })] {
            let front = pts.filter(onFrontier).compactMap { r in value(r).map { (r.sizeMiB!, $0) } }.sorted { $0.0 < $1.0 }
            if front.count > 1 {
                s += "<polyline class=\"frontier-\(series)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" stroke-dasharray=\"5,3\" points=\""
                    + front.map { "\(px(f.x($0.0))),\(px(f.y($0.1)))" }.joined(separator: " ") + "\"/>\n"
            }
            for r in pts {
                guard let v = value(r), v > 0, let mib = r.sizeMiB else { continue }
                let x = f.x(mib), y = f.y(v)
                let shape = series == "mean"
                    ? "<circle class=\"pt pt-\(series)\" cx=\"\(px(x))\" cy=\"\(px(y))\" r=\"\(onFrontier(r) ? 5 : 3.5)\" fill=\"\(color)\""
                    : "<rect class=\"pt pt-\(series)\" x=\"\(px(x - 4))\" y=\"\(px(y - 4))\" width=\"8\" height=\"8\" fill=\"\(color)\""
                s += shape + " data-file=\"\(esc(r.file))\" data-size-mib=\"\(num(mib))\" data-kld=\"\(num(v))\"><title>\(esc(r.file)): \(String(format: "%.2f MiB, %@ KLD %.6f", mib, series == "mean" ? "mean" : "99.9 %", v))</title></\(series == "mean" ? "circle" : "rect")>\n"
                s += labelText(f, x: x, y: y, label(r))
            }
        }
        s += "<text x=\"\(px(f.w - f.right - 200))\" y=\"\(px(f.top + 14))\"><tspan fill=\"#2166ac\">● mean KLD</tspan>  <tspan fill=\"#d6604d\">■ 99.9 % KLD</tspan>  – – frontier</text>\n"
        return s + "</svg>\n"
    }

    /// Short point labels: the file names without `.gguf` and without the prefix all quants share.
    nonisolated(unsafe) static var labelPrefix = ""

    static func label(_ r: ReportRow) -> String {
        var n = r.file
        if n.hasSuffix(".gguf") { n.removeLast(5) }
        if !labelPrefix.isEmpty, n.hasPrefix(labelPrefix), n.count > labelPrefix.count { n.removeFirst(labelPrefix.count) }
        return n.count > 28 ? "…" + n.suffix(27) : n
    }

    /// The longest common prefix of the names that ends at a `-`, `_` or `.`.
    static func commonPrefix(_ names: [String]) -> String {
        guard names.count > 1, var p = names.first.map(Array.init) else { return "" }
        for n in names.dropFirst() {
            let a = Array(n)
            var i = 0
            while i < p.count, i < a.count, p[i] == a[i] { i += 1 }
            p = Array(p[..<i])
        }
        while let last = p.last, !"-_.".contains(last) { p.removeLast() }
        return String(p)
    }

    /// A label beside a point, on its left when the point is near the right edge.
    static func labelText(_ f: Frame, x: Double, y: Double, _ text: String) -> String {
        let right = x > f.w - f.right - 150
        return "<text class=\"label\" x=\"\(px(right ? x - 7 : x + 7))\" y=\"\(px(y - 6))\"\(right ? " text-anchor=\"end\"" : "")>\(esc(text))</text>\n"
    }

    static func ratioChart(_ rows: [ReportRow]) -> String {
        let pts = rows.filter { $0.bitsPerWeight != nil && $0.pplRatio != nil }
        guard !pts.isEmpty else { return "<p>No quant has both bits per weight and a PPL ratio.</p>\n" }
        let xs = pts.compactMap(\.bitsPerWeight), ys = pts.compactMap { $0.pplRatio?.value }
        let (x0, x1) = padRange(xs.min()!, xs.max()!, log: false)
        let (y0, y1) = padRange(min(ys.min()!, 1), ys.max()!, log: false)
        let f = Frame(x0: x0, x1: x1, y0: y0, y1: y1, logY: false)
        var s = axes(f, xLabel: "bits per weight", yLabel: "PPL(Q)/PPL(base)")
        s += "<line stroke=\"#999\" stroke-dasharray=\"2,3\" x1=\"\(px(f.left))\" y1=\"\(px(f.y(1)))\" x2=\"\(px(f.w - f.right))\" y2=\"\(px(f.y(1)))\"/>\n"
        for r in pts {
            let x = f.x(r.bitsPerWeight!), y = f.y(r.pplRatio!.value)
            s += "<circle class=\"pt pt-ratio\" cx=\"\(px(x))\" cy=\"\(px(y))\" r=\"4\" fill=\"#1b7837\" data-file=\"\(esc(r.file))\" data-bpw=\"\(num(r.bitsPerWeight!))\" data-ppl-ratio=\"\(num(r.pplRatio!.value))\"><title>\(esc(r.file))</title></circle>\n"
            s += labelText(f, x: x, y: y, label(r))
        }
        return s + "</svg>\n"
    }

    static func chunkChart(_ rows: [ReportRow]) -> String {
        var chosen = rows.filter { $0.frontierMean && !$0.perChunkKLD.isEmpty }
        if chosen.isEmpty { chosen = rows.filter { !$0.perChunkKLD.isEmpty } }
        chosen = Array(chosen.prefix(8))
        guard !chosen.isEmpty else { return "<p>No per-chunk KLD stored.</p>\n" }
        let n = chosen.map(\.perChunkKLD.count).max()!
        let ys = chosen.flatMap(\.perChunkKLD).filter { $0 > 0 }
        guard let lo = ys.min(), let hi = ys.max() else { return "<p>No positive per-chunk KLD.</p>\n" }
        let (y0, y1) = padRange(lo, hi, log: true)
        let f = Frame(x0: 1, x1: Double(max(n, 2)), y0: y0, y1: y1, logY: true)
        var s = axes(f, xLabel: "chunk", yLabel: "running mean KLD (log scale)")
        for (i, r) in chosen.enumerated() {
            let color = palette[(i * 3 + 7) % palette.count]
            let pts = r.perChunkKLD.enumerated().filter { $0.element > 0 }.map { "\(px(f.x(Double($0.offset + 1)))),\(px(f.y($0.element)))" }
            s += "<polyline class=\"chunk-series\" data-file=\"\(esc(r.file))\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"\(pts.joined(separator: " "))\"/>\n"
            s += "<text x=\"\(px(f.w - f.right - 180))\" y=\"\(px(f.top + 14 + Double(i) * 14))\" fill=\"\(color)\">— \(esc(label(r)))</text>\n"
        }
        return s + "</svg>\n"
    }

    // MARK: type maps

    static let roleOrder = ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_qkv", "attn_output", "ffn_norm", "ffn_gate", "ffn_up",
                            "ffn_down", "ffn_gate_inp", "ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"]

    static func typeMaps(_ rows: [ReportRow], plans: [String: ModelPlanRecord]) -> String {
        // maps of GGUF quants (blk.N tensors); compressed-tensors folders keep HF names and have none
        let withPlans = rows.compactMap { r in
            plans[r.modelKey].flatMap { $0.tensors.contains { $0.name.hasPrefix("blk.") } ? (r, $0) : nil }
        }
        guard !withPlans.isEmpty else { return "<p>No tensor plans stored for these quants.</p>\n" }
        // Types ordered by bits per weight, one colour each.
        var typeBits: [String: Double] = [:]
        for (_, p) in withPlans {
            for t in p.tensors {
                let n = t.shape.reduce(1, *)
                if n > 0 { typeBits[t.type] = Double(t.bytes) * 8 / Double(n) }
            }
        }
        let types = typeBits.keys.sorted { (typeBits[$0]!, $0) < (typeBits[$1]!, $1) }
        let color = Dictionary(uniqueKeysWithValues: types.enumerated().map { ($1, palette[$0 * palette.count / max(types.count, 1) % palette.count]) })
        var s = "<p class=\"legend\">" + types.map { "<span><i style=\"background:\(color[$0]!)\"></i>\(esc($0)) (\(String(format: "%.2f", typeBits[$0]!)) bpw)</span>" }.joined() + "</p>\n<div class=\"maps\">\n"
        for (r, p) in withPlans {
            var roles = Set<String>(), layers = 0
            var cell: [String: String] = [:]   // "layer|role" -> type
            var globals: [(String, String)] = []
            for t in p.tensors {
                let parts = t.name.split(separator: ".")
                if parts.count >= 3, parts[0] == "blk", let l = Int(parts[1]) {
                    let role = parts[2...].filter { $0 != "weight" && $0 != "bias" }.joined(separator: ".")
                    guard t.name.hasSuffix(".weight") else { continue }
                    roles.insert(role); layers = max(layers, l + 1)
                    cell["\(l)|\(role)"] = t.type
                } else if t.name.hasSuffix(".weight") {
                    globals.append((String(t.name.dropLast(7)), t.type))
                }
            }
            let cols = roles.sorted { (roleOrder.firstIndex(of: $0) ?? 99, $0) < (roleOrder.firstIndex(of: $1) ?? 99, $1) }
            let cw = 16.0, ch = max(4.0, min(12.0, 360.0 / Double(max(layers, 1)))), left = 28.0, top = 74.0
            let w = left + Double(cols.count) * cw + 8, hgt = top + Double(layers) * ch + 8 + 14 * Double(globals.count)
            var m = "<figure><svg class=\"typemap\" data-file=\"\(esc(r.file))\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(hgt))\">\n"
            for (j, c) in cols.enumerated() {
                m += "<text transform=\"translate(\(px(left + Double(j) * cw + cw * 0.7)),\(px(top - 4))) rotate(-70)\">\(esc(c))</text>"
            }
            for l in 0..<layers {
                if l % 4 == 0 { m += "<text x=\"2\" y=\"\(px(top + Double(l) * ch + ch - 1))\">\(l)</text>" }
                for (j, c) in cols.enumerated() {
                    guard let t = cell["\(l)|\(c)"] else { continue }
                    m += "<rect x=\"\(px(left + Double(j) * cw))\" y=\"\(px(top + Double(l) * ch))\" width=\"\(px(cw - 1))\" height=\"\(px(ch - 0.5))\" fill=\"\(color[t] ?? "#000")\"><title>blk.\(l).\(esc(c)): \(esc(t))</title></rect>"
                }
                m += "\n"
            }
            for (i, gl) in globals.enumerated() {
                let y = top + Double(layers) * ch + 8 + 14 * Double(i)
                m += "<rect x=\"2\" y=\"\(px(y))\" width=\"10\" height=\"10\" fill=\"\(color[gl.1] ?? "#000")\"/><text x=\"16\" y=\"\(px(y + 9))\">\(esc(gl.0)): \(esc(gl.1))</text>\n"
            }
            m += "</svg><figcaption>\(esc(r.file))\(p.fileTypeName.map { " · " + esc($0) } ?? "") · \(String(format: "%.3f", p.bitsPerWeight)) bpw</figcaption></figure>\n"
            s += m
        }
        return s + "</div>\n"
    }

    // MARK: table

    static func table(_ g: ReportGroup) -> String {
        var s = "<div style=\"overflow-x:auto\"><table class=\"report\">\n<thead><tr>" + ReportGroup.columns.map { "<th>\(esc($0))</th>" }.joined() + "</tr></thead>\n<tbody>\n"
        for r in g.rows {
            let cls = r.isBase ? "base" : (r.frontierMean || r.frontierP99_9) ? "frontier" : "quant"
            s += "<tr class=\"\(cls)\" data-file=\"\(esc(r.file))\">" + g.cells(r).map { "<td>\(esc($0))</td>" }.joined() + "</tr>\n"
        }
        return s + "</tbody></table></div>\n<p class=\"meta\">Frontier rows (green): no other quant is both smaller and better in mean KLD (mean) or 99.9 % KLD (99.9).</p>\n"
    }
}
