import Foundation
import XCTest
import SmeltTestSupport

/// One progress display for every long command, through the binary: in logs (stderr not a
/// terminal) plain lines with rate and ETA on stderr and nothing on stdout; on a terminal (a
/// pseudo-terminal made by `script`) a bar that never erases perplexity's `[1]…,[2]…` estimates.
final class ProgressDisplayTests: XCTestCase {
    static let golden = "models/tiny/tiny-llama.golden"
    let every = ["SMELT_PROGRESS_INTERVAL": "0"]

    func progressLines(_ stderr: String, _ label: String) -> [Substring] {
        stderr.split(separator: "\n").filter { $0.hasPrefix("\(label): ") && $0.contains("%") }
    }

    func testLogsGetPlainProgressLinesOnStderrOnly() throws {
        let f32 = try Fixtures.sharedFile(Self.golden + "/tiny-llama-f32.gguf").path
        let text = try Fixtures.sharedFile(Self.golden + "/eval-sample.txt").path
        let dir = try Fixtures.tempDir(self)
        let eval = ["-f", text, "-c", "64", "-b", "64", "--chunks", "6", "-t", "2"]

        // perplexity: a line per step with chunks, rate and ETA; stdout is exactly the JSON
        let p = try SmeltBinary.run(["perplexity", f32] + eval + ["--json"], environment: every)
        XCTAssertEqual(p.status, 0, p.stderr)
        let lines = progressLines(p.stderr, "perplexity")
        XCTAssertGreaterThanOrEqual(lines.count, 6, p.stderr)
        XCTAssertTrue(lines[0].contains("1/6 chunks") && lines[0].contains("chunks/s") && lines[0].contains("ETA"), String(lines[0]))
        XCTAssertTrue(lines.last!.contains("100.0%") && lines.last!.contains("6/6 chunks"), String(lines.last!))
        XCTAssertFalse(p.stderr.contains("\r") || p.stderr.contains("\u{1B}"), "no terminal control in logs")
        XCTAssertTrue(p.stderr.contains("perplexity: 384 tokens (6 chunks of 64) in "), p.stderr)
        XCTAssertNoThrow(try JSONSerialization.jsonObject(with: Data(p.stdout.utf8)), p.stdout)
        XCTAssertFalse(p.stdout.contains("ETA") || p.stdout.contains("chunks/s"))
        // text output: the estimates on stdout, the progress not
        let t = try SmeltBinary.run(["perplexity", f32] + eval, environment: every)
        XCTAssertEqual(t.status, 0, t.stderr)
        XCTAssertTrue(t.stdout.hasPrefix("[1]") && t.stdout.contains("[6]") && t.stdout.contains("Final estimate: PPL = "), t.stdout)
        XCTAssertFalse(t.stdout.contains("ETA") || t.stdout.contains("chunks/s"), t.stdout)

        // imatrix: the same display
        let im = try SmeltBinary.run(["imatrix", f32] + eval + ["-o", dir.appendingPathComponent("im.gguf").path, "--json"], environment: every)
        XCTAssertEqual(im.status, 0, im.stderr)
        let il = progressLines(im.stderr, "imatrix")
        XCTAssertTrue(il.count >= 6 && il[0].contains("chunks/s") && il[0].contains("ETA"), im.stderr)
        XCTAssertNoThrow(try JSONSerialization.jsonObject(with: Data(im.stdout.utf8)), im.stdout)

        // sensitivity: measurements, then the KLD probes (base run in chunks); stdout is the table
        let s = try SmeltBinary.run(["sensitivity", f32, "--candidates", "q4_0,q8_0", "-t", "2", "--no-cache",
                                     "-f", text, "-c", "64", "--chunks", "2", "--groups", "attn_v"], environment: every)
        XCTAssertEqual(s.status, 0, s.stderr)
        let sl = progressLines(s.stderr, "sensitivity")
        XCTAssertTrue(sl.count >= 2 && sl[0].contains("measurements/s") && sl[0].contains("ETA"), s.stderr)
        XCTAssertTrue(sl.last!.contains("100.0%"), s.stderr)
        XCTAssertFalse(progressLines(s.stderr, "base perplexity").isEmpty, s.stderr)
        XCTAssertTrue(progressLines(s.stderr, "kld probes").contains { $0.contains("probes/s") }, s.stderr)
        XCTAssertTrue(s.stdout.hasPrefix("group "), s.stdout)
        XCTAssertFalse(s.stdout.contains("ETA") || s.stdout.contains("%"), s.stdout)

        // budget mode's measurements
        let b = try SmeltBinary.run(["quantize", f32, dir.appendingPathComponent("q.gguf").path, "--target-bpw", "6",
                                     "--candidates", "q4_0,q8_0", "--no-cache", "2"], environment: every)
        XCTAssertEqual(b.status, 0, b.stderr)
        XCTAssertTrue(progressLines(b.stderr, "sensitivity").contains { $0.contains("measurements") && $0.contains("ETA") }, b.stderr)
        XCTAssertFalse(b.stdout.contains("ETA"), b.stdout)

        // the default interval (5 s): a run shorter than that prints no progress line at all
        let quick = try SmeltBinary.run(["perplexity", f32, "-f", text, "-c", "64", "--chunks", "2", "-t", "2", "--json"])
        XCTAssertEqual(quick.status, 0, quick.stderr)
        XCTAssertTrue(progressLines(quick.stderr, "perplexity").isEmpty, quick.stderr)
    }

    /// A minimal terminal: printable characters with auto-wrap, CR, LF, ESC[K, ESC[A, ESC[nG.
    /// Returns the logical lines on the final screen (rows joined where the terminal wrapped).
    static func screen(_ bytes: String, width: Int) -> [String] {
        var rows: [[Character]] = [[]], wrapped: [Bool] = [false]
        var r = 0, c = 0, pending = false
        func ensure(_ row: Int) { while rows.count <= row { rows.append([]); wrapped.append(false) } }
        let chars = Array(bytes)
        var i = 0
        while i < chars.count {
            let ch = chars[i]
            if ch == "\u{1B}", i + 1 < chars.count, chars[i + 1] == "[" {
                var j = i + 2, num = ""
                while j < chars.count, chars[j].isNumber { num.append(chars[j]); j += 1 }
                guard j < chars.count else { break }
                switch chars[j] {
                case "K": if c < rows[r].count { rows[r].removeSubrange(c...) }
                case "A": r = max(0, r - (Int(num) ?? 1)); pending = false
                case "G": c = max(0, min(width - 1, (Int(num) ?? 1) - 1)); pending = false
                default: break
                }
                i = j + 1
                continue
            }
            switch ch {
            case "\r": c = 0; pending = false
            case "\n": r += 1; ensure(r); pending = false
            case "\r\n": c = 0; r += 1; ensure(r); pending = false
            default:
                if pending { r += 1; ensure(r); rows[r] = []; wrapped[r] = true; c = 0; pending = false }
                while rows[r].count < c { rows[r].append(" ") }
                if c < rows[r].count { rows[r][c] = ch } else { rows[r].append(ch) }
                if c == width - 1 { pending = true } else { c += 1 }
            }
            i += 1
        }
        var lines: [String] = []
        for (k, row) in rows.enumerated() {
            if wrapped[k], !lines.isEmpty { lines[lines.count - 1] += String(row) } else { lines.append(String(row)) }
        }
        return lines.map { String($0.reversed().drop { $0 == " " }.reversed()) }.filter { !$0.isEmpty }
    }

    func testTerminalBarNeverErasesTheEstimates() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/script") else { throw XCTSkip("no script(1) to make a terminal") }
        let f32 = try Fixtures.sharedFile(Self.golden + "/tiny-llama-f32.gguf").path
        let text = try Fixtures.sharedFile(Self.golden + "/eval-sample.txt").path
        let smelt = try SmeltBinary.executable().path
        let eval = ["-f", text, "-c", "64", "-b", "64", "--chunks", "12", "-t", "2"]
        // the estimates as written to a file (the reference)
        let plain = try SmeltBinary.run(["perplexity", f32] + eval)
        XCTAssertEqual(plain.status, 0, plain.stderr)
        let estimates = String(plain.stdout.split(separator: "\n")[0])
        XCTAssertGreaterThan(estimates.count, 80, "long enough to wrap on an 80-column terminal")

        let q = { (s: String) in "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        let cmd = "stty cols 80 rows 50; SMELT_NO_STORE=1 " + ([smelt, "perplexity", f32] + eval).map(q).joined(separator: " ")
        let r = try SmeltBinary.run(executable: URL(fileURLWithPath: "/usr/bin/script"), ["-qec", cmd, "/dev/null"])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("\r") && r.stdout.contains("chunks/s"), "a bar was drawn in place")
        let lines = Self.screen(r.stdout, width: 80)
        XCTAssertTrue(lines.contains(estimates), "estimates intact on screen:\n" + lines.joined(separator: "\n") + "\nexpected:\n" + estimates)
        XCTAssertTrue(lines.contains { $0.hasPrefix("Final estimate: PPL = ") }, lines.joined(separator: "\n"))
        let bar = lines.filter { $0.hasPrefix("perplexity ") }
        XCTAssertEqual(bar.count, 1, "one bar left, in its final state:\n" + lines.joined(separator: "\n"))
        XCTAssertTrue(bar.first?.contains("100.0%") == true && bar.first?.contains("12/12 chunks") == true, lines.joined(separator: "\n"))
        XCTAssertFalse(lines.contains { $0.contains("ETA") }, "no stale bar:\n" + lines.joined(separator: "\n"))
        XCTAssertTrue(lines.last?.hasPrefix("perplexity: 768 tokens (12 chunks of 64) in ") == true, lines.joined(separator: "\n"))
    }
}
