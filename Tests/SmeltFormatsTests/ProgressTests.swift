import Foundation
import XCTest
import SmeltFormats

/// One progress display: a bar with rate and ETA on a terminal, plain lines in logs.
final class ProgressTests: XCTestCase {
    final class Sink: @unchecked Sendable { var text = "" }

    func testLogModePrintsPlainLinesAndTerminalModeABar() {
        let log = Sink()
        let p = ProgressBar("convert", total: 4 << 20, terminal: false, logInterval: 0, output: { log.text += $0 })
        p.advance(1 << 20, detail: "blk.0.attn_q.weight")
        p.advance(3 << 20)
        p.finish()
        let lines = log.text.split(separator: "\n")
        XCTAssertEqual(lines.count, 2, log.text)
        XCTAssertTrue(lines[0].hasPrefix("convert:  25.0%      1.0/4.0 MiB"), String(lines[0]))
        XCTAssertTrue(lines[0].contains("MiB/s  ETA ") && lines[0].hasSuffix("blk.0.attn_q.weight"), String(lines[0]))
        XCTAssertTrue(lines[1].contains("100.0%"), String(lines[1]))
        XCTAssertFalse(log.text.contains("\r"), "no carriage returns in logs")

        let tty = Sink()
        let b = ProgressBar("export", total: 100, terminal: true, output: { tty.text += $0 })
        b.advance(50)
        b.finish()
        XCTAssertTrue(tty.text.hasPrefix("\rexport "), tty.text)
        XCTAssertTrue(tty.text.contains("MiB/s") && tty.text.hasSuffix("\n"), tty.text)

        let quiet = Sink()
        let q = ProgressBar("x", total: 10, enabled: false, terminal: false, logInterval: 0, output: { quiet.text += $0 })
        q.advance(10); q.finish()
        XCTAssertEqual(quiet.text, "")
    }
}
