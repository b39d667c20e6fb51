import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Progress of a long command on stderr, one way for every command (convert, export, split,
/// merge, quantize, imatrix, perplexity, sensitivity, budget mode): on a terminal a bar with
/// percentage, amount done, rate and ETA redrawn in place (at most 10 times a second); when
/// stderr is not a terminal (logs, CI) a plain line every `logInterval` seconds (default 5,
/// `SMELT_PROGRESS_INTERVAL` overrides it), so logs show progress. Result text written through
/// `result(_:)` (perplexity's `[1]…,[2]…` estimates) is never erased: on a terminal the bar is
/// cleared first and, while a result line is unfinished, drawn on the row below it. Thread-safe.
public final class ProgressBar: @unchecked Sendable {
    /// What `total` counts: bytes (shown in MiB) or items with a name (`chunks`, `tensors`).
    public enum Unit: Sendable, Equatable {
        case bytes
        case items(String)
    }

    private let label: String
    private var total: Int
    private let unit: Unit
    private var done = 0
    private var detail = ""
    private let enabled: Bool
    private let terminal: Bool
    private let resultsOnTerminal: Bool
    private let resultsInLog: Bool
    private let logInterval: Double
    private let output: (String) -> Void
    private let resultOutput: (String) -> Void
    private let width: Int
    private let lock = NSLock()
    private var lastDraw = Date.distantPast
    private let start = Date()
    /// The bar is on screen (terminal mode).
    private var visible = false
    /// The bar was drawn on the row below an unfinished result line.
    private var belowResult = false
    /// Characters of result text written since the last newline.
    private var partialLine = 0
    /// The bar was drawn since the last `finish()`.
    private var drawn = false

    /// `total` counts `unit`s (default bytes, shown in MiB). `enabled` false: nothing is printed
    /// (`result(_:)` still writes its text). `output` receives the progress text (default: stderr),
    /// `resultOutput` the result text (default: stdout); `resultsOnTerminal`: whether result text
    /// appears on the same terminal as the bar (default: stdout and stderr are both terminals);
    /// `resultsInLog`: whether, in logs, result text goes to the same file as the progress lines;
    /// `width`: the terminal's columns (default: stderr's, 80 when unknown).
    public init(_ label: String, total: Int, unit: Unit = .bytes, enabled: Bool = true,
                terminal: Bool = ProgressBar.isTerminal, logInterval: Double = ProgressBar.defaultLogInterval,
                resultsOnTerminal: Bool = isatty(1) != 0 && isatty(2) != 0, resultsInLog: Bool = ProgressBar.sameFile(1, 2),
                width: Int = ProgressBar.terminalWidth,
                output: @escaping (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) },
                resultOutput: @escaping (String) -> Void = { FileHandle.standardOutput.write(Data($0.utf8)) }) {
        self.label = label; self.total = max(total, 1); self.unit = unit; self.enabled = enabled
        self.terminal = terminal; self.logInterval = logInterval; self.output = output
        self.resultOutput = resultOutput; self.resultsOnTerminal = terminal && resultsOnTerminal
        self.resultsInLog = !terminal && resultsInLog
        self.width = max(20, width)
        lastDraw = terminal ? .distantPast : Date()
    }

    public static var isTerminal: Bool { isatty(2) != 0 }

    /// Seconds between two lines in logs: `SMELT_PROGRESS_INTERVAL` or 5.
    public static var defaultLogInterval: Double {
        if let s = ProcessInfo.processInfo.environment["SMELT_PROGRESS_INTERVAL"], let v = Double(s), v >= 0 { return v }
        return 5
    }

    /// Whether two file descriptors write to the same file (`2>&1`).
    public static func sameFile(_ a: Int32, _ b: Int32) -> Bool {
        var x = stat(), y = stat()
        guard fstat(a, &x) == 0, fstat(b, &y) == 0 else { return false }
        return x.st_dev == y.st_dev && x.st_ino == y.st_ino
    }

    /// The columns of the terminal on stderr (80 when unknown).
    public static var terminalWidth: Int {
        var w = winsize()
        if ioctl(2, UInt(TIOCGWINSZ), &w) == 0, w.ws_col > 0 { return Int(w.ws_col) }
        return 80
    }

    /// Adds `n` to the progress and sets the text shown after the bar.
    public func advance(_ n: Int, detail: String? = nil) {
        guard enabled else { return }
        lock.lock(); defer { lock.unlock() }
        update(done + n, detail: detail)
    }

    /// Sets the progress to `done` (of `total`, or of a new total when it is known only now)
    /// and the text shown after the bar.
    public func set(_ done: Int, of total: Int? = nil, detail: String? = nil) {
        guard enabled else { return }
        lock.lock(); defer { lock.unlock() }
        if let total { self.total = max(total, 1) }
        update(done, detail: detail)
    }

    private func update(_ d: Int, detail: String?) {
        done = d
        if let detail { self.detail = detail }
        let now = Date()
        if now.timeIntervalSince(lastDraw) < (terminal ? 0.1 : logInterval) && (done < total || !terminal) { return }
        lastDraw = now
        draw()
    }

    /// Writes result text (to stdout) without ever erasing it: on a terminal the bar is
    /// cleared first and drawn again after it (below the text while its line is unfinished).
    public func result(_ text: String) {
        lock.lock(); defer { lock.unlock() }
        let onScreen = enabled && terminal && resultsOnTerminal
        if onScreen { erase() }
        resultOutput(text)
        if let nl = text.lastIndex(of: "\n") {
            partialLine = text[text.index(after: nl)...].count
        } else {
            partialLine += text.count
        }
        if onScreen && done > 0 { draw() }
    }

    /// Removes the bar from the terminal (before other text is written to stderr); the next
    /// update draws it again. `freshLine`: also end an unfinished result line, so that what
    /// follows starts on a row of its own.
    public func clear(freshLine: Bool = false) {
        lock.lock(); defer { lock.unlock() }
        erase()
        if freshLine && resultsOnTerminal && partialLine > 0 { output("\n"); partialLine = 0 }
    }

    private static let screenLock = NSLock()
    nonisolated(unsafe) private static weak var onScreen: ProgressBar?

    /// Clears the bar last drawn on the terminal, if any, so that an error line starts on a row
    /// of its own.
    public static func clearScreen() {
        screenLock.lock(); let b = onScreen; screenLock.unlock()
        b?.clear(freshLine: true)
    }

    /// Clears the bar; with an unfinished result line above it, puts the cursor back at that line's end.
    private func erase() {
        guard enabled, terminal, visible else { return }
        output("\r\u{1B}[K")
        if belowResult {
            let col = partialLine % width
            // A line that exactly fills its last row continues on the bar's row.
            if col != 0 { output("\u{1B}[A\u{1B}[\(col + 1)G") }
        }
        visible = false; belowResult = false
    }

    /// `45.0%  12.3/27.0 MiB  3.2 MiB/s  ETA 5 s` or `45.0%  9/20 chunks  1.5 chunks/s  ETA 7 s`.
    private func status() -> String {
        let frac = min(1, Double(done) / Double(total))
        let el = Date().timeIntervalSince(start)
        let rate = el > 0 ? Double(done) / el : 0
        let eta = rate > 0 ? Double(total - min(done, total)) / rate : 0
        let time = done >= total ? String(format: "%.1f s", el) : (rate > 0 ? String(format: "ETA %.0f s", eta) : "ETA ?")
        switch unit {
        case .bytes:
            return String(format: "%5.1f%% %8.1f/%.1f MiB %7.1f MiB/s  %@", frac * 100, Double(done) / 1048576, Double(total) / 1048576,
                          rate / 1048576, time)
        case .items(let name):
            let digits = String(total).count
            return String(format: "%5.1f%% %*d/%d %@ %7.2f %@/s  %@", frac * 100, digits, done, total, name, rate, name, time)
        }
    }

    private func draw() {
        if terminal {
            let frac = min(1, Double(done) / Double(total))
            let barWidth = 24
            let filled = Int(frac * Double(barWidth))
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: barWidth - filled)
            // One row at most: a wrapped bar could not be redrawn in place.
            let text = String("\(label) \(bar) \(status()) \(detail.prefix(40))".prefix(width - 1))
            if visible {
                output("\r" + text + "\u{1B}[K")
            } else if resultsOnTerminal && partialLine > 0 {
                output("\n" + text + "\u{1B}[K")
                belowResult = true
            } else {
                output("\r" + text + "\u{1B}[K")
            }
            visible = true; drawn = true
            Self.screenLock.lock(); Self.onScreen = self; Self.screenLock.unlock()
        } else {
            // In a log that holds stdout too (`2>&1`), a progress line starts on a line of its own.
            let cut = resultsInLog && partialLine > 0
            if cut { partialLine = 0 }
            output((cut ? "\n" : "") + "\(label): \(status())\(detail.isEmpty ? "" : "  " + detail)\n")
        }
    }

    /// Ends the display, if it was shown (on a terminal: the final state and a newline, after which the cursor
    /// is on a fresh row below any result text; in logs nothing more).
    public func finish() {
        guard enabled, terminal else { return }
        lock.lock(); defer { lock.unlock() }
        guard drawn else { return }  // nothing was shown: nothing to end
        done = total
        if visible && belowResult {
            draw()
            output("\n")
            partialLine = 0
        } else {
            erase()
            draw()
            output("\n")
        }
        visible = false; belowResult = false; drawn = false
    }
}
