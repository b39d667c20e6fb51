import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A one-line progress bar on stderr, drawn only when stderr is a terminal
/// (quiet in pipes, logs and CI). Thread-safe; redraws at most 10 times a second.
public final class ProgressBar: @unchecked Sendable {
    private let label: String
    private let total: Int
    private var done = 0
    private var detail = ""
    private let enabled: Bool
    private let lock = NSLock()
    private var lastDraw = Date.distantPast
    private let start = Date()

    /// `total` is in `unit`s (bytes are shown in MiB).
    public init(_ label: String, total: Int, enabled: Bool = ProgressBar.isTerminal) {
        self.label = label; self.total = max(total, 1); self.enabled = enabled
    }

    public static var isTerminal: Bool { isatty(2) != 0 }

    /// Adds `n` to the progress and sets the text shown after the bar.
    public func advance(_ n: Int, detail: String? = nil) {
        guard enabled else { return }
        lock.lock(); defer { lock.unlock() }
        done += n
        if let detail { self.detail = detail }
        let now = Date()
        if now.timeIntervalSince(lastDraw) < 0.1 && done < total { return }
        lastDraw = now
        draw()
    }

    private func draw() {
        let frac = min(1, Double(done) / Double(total))
        let width = 30
        let filled = Int(frac * Double(width))
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        let el = Date().timeIntervalSince(start)
        let line = String(format: "\r%@ %@ %5.1f%% %6.1fs %@", label, bar, frac * 100, el, String(detail.prefix(50)))
        FileHandle.standardError.write(Data((line + "\u{1B}[K").utf8))
    }

    /// Ends the line.
    public func finish() {
        guard enabled else { return }
        lock.lock(); defer { lock.unlock() }
        done = total
        draw()
        FileHandle.standardError.write(Data("\n".utf8))
    }
}
