import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Progress of a long command on stderr, one way for every command: on a terminal a bar
/// with percentage, rate and ETA redrawn in place (at most 10 times a second; it never
/// erases lines printed by others, which clear it first); when stderr is not a terminal
/// (logs, CI) a plain line every `logInterval` seconds, so logs show progress. Thread-safe.
public final class ProgressBar: @unchecked Sendable {
    private let label: String
    private let total: Int
    private var done = 0
    private var detail = ""
    private let enabled: Bool
    private let terminal: Bool
    private let logInterval: Double
    private let output: (String) -> Void
    private let lock = NSLock()
    private var lastDraw = Date.distantPast
    private let start = Date()

    /// `total` is in bytes (shown in MiB). `enabled` false: nothing is printed.
    /// `output` receives the text (default: stderr).
    public init(_ label: String, total: Int, enabled: Bool = true, terminal: Bool = ProgressBar.isTerminal, logInterval: Double = 5,
                output: @escaping (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }) {
        self.label = label; self.total = max(total, 1); self.enabled = enabled
        self.terminal = terminal; self.logInterval = logInterval; self.output = output
        lastDraw = terminal ? .distantPast : Date()
    }

    public static var isTerminal: Bool { isatty(2) != 0 }

    /// Adds `n` to the progress and sets the text shown after the bar.
    public func advance(_ n: Int, detail: String? = nil) {
        guard enabled else { return }
        lock.lock(); defer { lock.unlock() }
        done += n
        if let detail { self.detail = detail }
        let now = Date()
        if now.timeIntervalSince(lastDraw) < (terminal ? 0.1 : logInterval) && (done < total || !terminal) { return }
        lastDraw = now
        draw()
    }

    /// `45.0%  12.3/27.0 MiB  3.2 MiB/s  ETA 5 s`.
    private func status() -> String {
        let frac = min(1, Double(done) / Double(total))
        let el = Date().timeIntervalSince(start)
        let rate = el > 0 ? Double(done) / el : 0
        let eta = rate > 0 ? Double(total - min(done, total)) / rate : 0
        return String(format: "%5.1f%% %8.1f/%.1f MiB %7.1f MiB/s  %@", frac * 100, Double(done) / 1048576, Double(total) / 1048576,
                      rate / 1048576, done >= total ? String(format: "%.1f s", el) : String(format: "ETA %.0f s", eta))
    }

    private func draw() {
        if terminal {
            let frac = min(1, Double(done) / Double(total))
            let width = 24
            let filled = Int(frac * Double(width))
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            output("\r\(label) \(bar) \(status()) \(detail.prefix(40))" + "\u{1B}[K")
        } else {
            output("\(label): \(status())\(detail.isEmpty ? "" : "  " + detail)\n")
        }
    }

    /// Ends the display (on a terminal: the final state and a newline; in logs nothing more).
    public func finish() {
        guard enabled, terminal else { return }
        lock.lock(); defer { lock.unlock() }
        done = total
        draw()
        output("\n")
    }
}
