import XCTest
import SmeltFormats
import SmeltTestSupport
@testable import SmeltLicense

/// Runs the built `smelt` binary and checks `smelt license` exit codes and output.
final class LicenseCommandTests: XCTestCase {
    typealias F = FixtureBuilder

    struct Run { var status: Int32; var stdout: String; var stderr: String }

    func run(_ args: [String]) throws -> Run {
        let r = try SmeltBinary.run(args)
        return Run(status: r.status, stdout: r.stdout, stderr: r.stderr)
    }

    func testExitCodes() throws {
        let f = try F(self)
        let apache = try f.model("apache", ["README.md": F.card("license: apache-2.0")]).path
        let luminum = try f.model("Luminum-123B", F.luminumFiles).path
        let mystery = try f.model("mystery", ["README.md": F.card("license: mit\nbase_model: nobody/knows-7b")]).path

        let ok = try run(["license", apache, "--use", "commercial"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertTrue(ok.stdout.contains("commercial: ALLOWED (exit 0)"), ok.stdout)

        let no = try run(["license", luminum, "--use", "redistribute-quantized"])
        XCTAssertEqual(no.status, 3, no.stderr)
        XCTAssertTrue(no.stdout.contains("redistribute-quantized: NOT ALLOWED (exit 3)"), no.stdout)
        XCTAssertTrue(no.stdout.contains("mistralai/Mistral-Large-Instruct-2407"))
        XCTAssertEqual(try run(["license", luminum, "--use", "commercial"]).status, 3)

        let unsure = try run(["license", mystery, "--use", "redistribute"])
        XCTAssertEqual(unsure.status, 4, unsure.stderr)
        XCTAssertTrue(unsure.stdout.contains("nobody/knows-7b"))

        // Without --use: a report, exit 0 whatever the terms.
        XCTAssertEqual(try run(["license", luminum]).status, 0)

        // With a cards folder naming the unknown parent, the answer becomes definite.
        let cards = try f.model("cards", ["nobody/knows-7b/README.md": F.card("license: cc-by-nc-4.0")]).path
        XCTAssertEqual(try run(["license", mystery, "--use", "commercial", "--cards", cards]).status, 3)
        XCTAssertEqual(try run(["license", mystery, "--use", "redistribute", "--cards", cards]).status, 0)
    }

    func testErrorsAreOneLineWithStatus1AndUsageErrorsStatus2() throws {
        let f = try F(self)
        let missing = try run(["license", f.root.appendingPathComponent("absent").path])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.hasPrefix("error: "), missing.stderr)
        XCTAssertEqual(missing.stderr.split(separator: "\n").count, 1, missing.stderr)
        XCTAssertTrue(missing.stdout.isEmpty)

        let badCard = try f.model("bad", ["README.md": "---\nlicense: [oops\n---\n"]).path
        let bad = try run(["license", badCard])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stderr.hasPrefix("error: ") && bad.stderr.contains("invalid YAML front matter"), bad.stderr)

        let badCards = try run(["license", badCard, "--cards", f.root.appendingPathComponent("nope").path])
        XCTAssertEqual(badCards.status, 1)

        let usage = try run(["license", f.root.path, "--use", "sell-it"])
        XCTAssertEqual(usage.status, 2, "usage error")
        XCTAssertTrue(usage.stderr.hasPrefix("error: ") && usage.stderr.contains("sell-it"), usage.stderr)
        XCTAssertEqual(usage.stderr.split(separator: "\n").count, 1, usage.stderr)
        let apache = try f.model("apache", ["README.md": F.card("license: apache-2.0")]).path
        XCTAssertEqual(try run(["license", apache, "--use", "COMMERCIAL"]).status, 0, "names are case-insensitive")
    }

    func testJSONOutput() throws {
        let f = try F(self)
        let luminum = try f.model("Luminum-123B", F.luminumFiles).path
        let r = try run(["license", luminum, "--json", "--use", "redistribute-quantized"])
        XCTAssertEqual(r.status, 3)
        let j = try JSONValue.parse(r.stdout)
        XCTAssertEqual(j["lineage"]?["id"]?.stringValue, "Luminum-123B")
        XCTAssertEqual(j["effective"]?["commercial"]?["value"]?.stringValue, "forbidden")
        let verdicts = try XCTUnwrap(j["verdicts"]?.arrayValue)
        XCTAssertEqual(verdicts.first { $0["use"]?.stringValue == "redistribute-quantized" }?["outcome"]?.stringValue, "not-allowed")
    }
}

/// The real SmolLM2 GGUF from ../shared (skipped when absent, required on CI).
final class SharedGGUFLicenseTests: XCTestCase {
    func testRealSmolLM2GGUFIsApache() throws {
        let url = try Fixtures.sharedFile("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
        let md = try GGUFGeneralMetadata.read(url)
        XCTAssertEqual(md.string("general.license"), "apache-2.0")
        let r = try LicenseResolver().report(for: url)
        XCTAssertEqual(r.lineage.relation, "quantized")
        XCTAssertEqual(r.effective.licenses, ["apache-2.0"])
        XCTAssertEqual(r.verdict(for: .redistributeQuantized).outcome, .allowed)
        // The folder: LICENSE recognised by content, the GGUF's source as parent.
        let folder = try LicenseResolver().report(for: url.deletingLastPathComponent())
        XCTAssertEqual(folder.lineage.evidence.map(\.source), ["LICENSE (text recognised)"])
        XCTAssertEqual(folder.lineage.parents.count, 1)
    }
}
