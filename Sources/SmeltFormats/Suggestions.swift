/// "Did you mean" for unknown names (types, presets, recipes, commands, roles):
/// the closest known name, compared case-insensitively and ignoring `_`, `-` and `.`.
public enum Suggestions {
    static func key(_ s: String) -> [Character] { Array(s.lowercased().filter { $0 != "_" && $0 != "-" && $0 != "." }) }

    /// Edit distance with adjacent transpositions counted once (optimal string alignment).
    static func distance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { d[i][0] = i }
        for j in 0...b.count { d[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] { d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1) }
            }
        }
        return d[a.count][b.count]
    }

    /// The known name closest to `s`, if it is close enough to be a likely typo.
    public static func closest(to s: String, among names: [String]) -> String? {
        let k = key(s)
        guard !k.isEmpty else { return nil }
        var best: (String, Int)? = nil
        for n in names.sorted() {
            let d = distance(k, key(n))
            if best == nil || d < best!.1 { best = (n, d) }
        }
        guard let (name, d) = best, d <= max(1, min(3, k.count / 3)) else { return nil }
        return name
    }

    /// `unknown WHAT 'S'; did you mean 'X'? (one of: sorted list)`.
    public static func unknown(_ what: String, _ s: String, among names: [String], listed: Bool = true) -> String {
        var m = "unknown \(what) '\(s)'"
        if let c = closest(to: s, among: names) { m += "; did you mean '\(c)'?" }
        if listed { m += " (one of: \(names.sorted().joined(separator: ", ")))" }
        return m
    }
}
