import Foundation
import XCTest
import SmeltFormats
import SmeltQuantize
import SmeltTestSupport

/// Budget mode: the knapsack, sizes, and the recipe it writes.
final class RecipeBudgetTests: XCTestCase {
    func testParseSize() throws {
        XCTAssertEqual(try Budget.parseSize("90MiB"), 90 * 1048576)
        XCTAssertEqual(try Budget.parseSize("1.5 GB"), 1_500_000_000)
        XCTAssertEqual(try Budget.parseSize("1234"), 1234)
        XCTAssertThrowsError(try Budget.parseSize("lots"))
    }

    /// Small random instances: the solution fits and is within a small gap of the exact optimum.
    func testKnapsackNearOptimalOnSmallInstances() throws {
        var rng = RecipeRNG(state: 42)
        let types: [GGMLType] = [.q4_0, .q5_0, .q8_0]
        for _ in 0..<40 {
            let items = (0..<5).map { k -> Budget.Item in
                let n = Int.random(in: 1...8, using: &rng) * 1000
                var loss = Double.random(in: 1...10, using: &rng)
                return Budget.Item(name: "t\(k)", options: types.map { t in
                    defer { loss *= Double.random(in: 0.1...0.6, using: &rng) }
                    return (t, n * Int(t.bitsPerWeight * 100) / 800, loss)
                })
            }
            let minB = items.reduce(0) { $0 + $1.options[0].bytes }, maxB = items.reduce(0) { $0 + $1.options[2].bytes }
            let budget = Int.random(in: minB...maxB, using: &rng)
            let c = try Budget.solve(items, budget: budget)
            let used = zip(items, c).reduce(0) { $0 + $1.0.options[$1.1].bytes }
            XCTAssertLessThanOrEqual(used, budget)
            let got = zip(items, c).reduce(0.0) { $0 + $1.0.options[$1.1].loss }
            var best = Double.infinity
            for code in 0..<243 {
                var x = code, b = 0, l = 0.0
                for it in items { let k = x % 3; x /= 3; b += it.options[k].bytes; l += it.options[k].loss }
                if b <= budget { best = min(best, l) }
            }
            XCTAssertLessThanOrEqual(got, best * 1.5 + 1e-9)
        }
        XCTAssertThrowsError(try Budget.solve([Budget.Item(name: "a", options: [(.q8_0, 100, 1)])], budget: 50))
    }

    /// The written recipe parses and reproduces the chosen types.
    func testRecipeTextRoundTrip() throws {
        let t = RecipePresetTests.tensors(.init(name: "x", hidden: 256, layers: 2, heads: 4, kvHeads: 4, ffn: 512))
        let q = t.filter { $0.shape.count == 2 }
        let items = q.enumerated().map { k, p in
            Budget.Item(name: p.name, options: [(k % 3 == 0 ? GGMLType.q8_0 : .q4_0, 10, 1.0)])
        }
        let text = Budget.recipeText(name: "b", items: items, choice: items.map { _ in 0 }, fileType: .Q4_0, header: ["test"])
        let r = try Recipe(yaml: text, source: "b.yaml")
        let p = try r.plan(tensors: t, model: ModelFacts(arch: "llama", nLayer: 2, nHead: 4, nHeadKV: 4), options: QuantizeOptions())
        for it in items {
            XCTAssertEqual(p.tensors.first { $0.name == it.name }?.type, it.options[0].type, it.name)
        }
    }
}

/// Deterministic generator for the tests.
struct RecipeRNG: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
}
