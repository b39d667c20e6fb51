import XCTest
import SmeltFormats
@testable import SmeltLicense

final class LineageTests: XCTestCase {
    typealias F = FixtureBuilder

    func report(_ url: URL, cards: URL? = nil) throws -> LicenseReport {
        try LicenseResolver(cardsDirectory: cards).report(for: url)
    }

    // MARK: the cases named by the issue

    func testPlainApacheModel() throws {
        let f = try F(self)
        let dir = try f.model("plain", ["README.md": F.card("license: apache-2.0\nlibrary_name: transformers"),
                                         "LICENSE": F.apacheText])
        let r = try report(dir)
        XCTAssertEqual(r.lineage.licenseIDs, ["apache-2.0"])
        XCTAssertTrue(r.lineage.parents.isEmpty)
        XCTAssertEqual(r.effective.commercial.value, .allowed)
        XCTAssertEqual(r.effective.redistributeQuantized.value, .allowed)
        for u in IntendedUse.allCases { XCTAssertEqual(r.verdict(for: u).outcome, .allowed, u.rawValue) }
        XCTAssertTrue(r.conflicts.isEmpty)
        XCTAssertTrue(r.warnings.isEmpty, "\(r.warnings)")
        XCTAssertTrue(r.obligations.complete)
        XCTAssertEqual(r.obligations.licenseCopies.count, 1)
        XCTAssertTrue(r.obligations.licenseCopies[0].contains("Apache License 2.0"))
        XCTAssertEqual(r.obligations.files, ["plain: LICENSE"])
        XCTAssertNil(r.redistributionWarning)
        // Front matter and LICENSE text agree: both are listed as evidence.
        XCTAssertEqual(r.lineage.evidence.map(\.source), ["README.md front matter license", "LICENSE (text recognised)"])
    }

    func testLicenseFileRecognisedByContentWithoutCard() throws {
        let f = try F(self)
        let dir = try f.model("nocard", ["LICENSE.txt": F.apacheText, "config.json": "{\"_name_or_path\": \"/tmp/out\"}"])
        let r = try report(dir)
        XCTAssertEqual(r.lineage.licenseIDs, ["apache-2.0"])
        XCTAssertEqual(r.lineage.evidence.first?.source, "LICENSE.txt (text recognised)")
        XCTAssertTrue(r.lineage.parents.isEmpty, "a local _name_or_path is not a parent")
        XCTAssertEqual(r.verdict(for: .commercial).outcome, .allowed)
    }

    func testLlama31FineTuneHasNamingAndNoticeObligations() throws {
        let f = try F(self)
        let dir = try f.model("my-llama", [
            "README.md": F.card("""
            license: llama3.1
            base_model: meta-llama/Llama-3.1-8B-Instruct
            base_model_relation: finetune
            """),
            "LICENSE": F.llama31Text,
            "USE_POLICY.md": "# Llama 3.1 Acceptable Use Policy\nMeta is committed to ...",
        ])
        let r = try report(dir)
        XCTAssertEqual(r.lineage.relation, "finetune")
        XCTAssertEqual(r.lineage.parents.map(\.id), ["meta-llama/Llama-3.1-8B-Instruct"])
        XCTAssertEqual(r.lineage.parents[0].licenseIDs, ["llama3.1"])
        XCTAssertEqual(r.lineage.parents[0].foundIn, "known-model table")
        XCTAssertEqual(r.effective.commercial.value, .conditional)
        XCTAssertEqual(r.effective.userLimit, 700_000_000)
        XCTAssertTrue(r.effective.commercial.conditions.contains { $0.contains("700 million monthly active users") })
        let v = r.verdict(for: .commercial)
        XCTAssertEqual(v.outcome, .allowed)
        XCTAssertFalse(v.conditions.isEmpty)
        XCTAssertEqual(r.verdict(for: .redistributeQuantized).outcome, .allowed)
        XCTAssertTrue(r.obligations.naming.contains { $0.contains("Built with Llama") })
        XCTAssertTrue(r.obligations.naming.contains { $0.contains("\"Llama\" at the beginning") })
        XCTAssertEqual(r.obligations.notices,
                       ["Llama 3.1 is licensed under the Llama 3.1 Community License, Copyright © Meta Platforms, Inc. All Rights Reserved."])
        XCTAssertEqual(r.obligations.usePolicies, ["llama3.1: https://www.llama.com/llama3_1/use-policy/"])
        XCTAssertEqual(r.obligations.files, ["my-llama: LICENSE, USE_POLICY.md"])
        XCTAssertTrue(r.warnings.isEmpty, "\(r.warnings)")
        let text = r.text(use: .commercial)
        XCTAssertTrue(text.contains("Built with Llama"))
        XCTAssertTrue(text.contains("commercial: ALLOWED (exit 0)"))
    }

    func testFineTuneMislabelledApacheStillCarriesLlamaTerms() throws {
        let f = try F(self)
        let dir = try f.model("mislabelled", ["README.md": F.card("license: apache-2.0\nbase_model: meta-llama/Llama-3.1-8B")])
        let r = try report(dir)
        XCTAssertEqual(r.effective.commercial.value, .conditional, "the parent's user limit still applies")
        XCTAssertTrue(r.obligations.naming.contains { $0.contains("Built with Llama") })
        XCTAssertTrue(r.warnings.contains { $0.contains("declares apache-2.0") && $0.contains("llama3.1") }, "\(r.warnings)")
    }

    func testNonCommercialAdapterOnApacheBase() throws {
        let f = try F(self)
        let dir = try f.model("nc-adapter", [
            "README.md": F.card("license: cc-by-nc-4.0\nlibrary_name: peft"),
            "adapter_config.json": #"{"base_model_name_or_path": "mistralai/Mistral-7B-v0.1", "peft_type": "LORA", "r": 16}"#,
        ])
        let r = try report(dir)
        XCTAssertEqual(r.lineage.relation, "adapter")
        XCTAssertEqual(r.lineage.parents.first?.id, "mistralai/Mistral-7B-v0.1")
        XCTAssertEqual(r.lineage.parents.first?.licenseIDs, ["apache-2.0"])
        XCTAssertEqual(r.effective.commercial.value, .forbidden)
        XCTAssertEqual(r.effective.commercial.decidedBy, ["cc-by-nc-4.0 (nc-adapter)"])
        XCTAssertEqual(r.verdict(for: .commercial).outcome, .notAllowed)
        // Non-commercial redistribution of a quantized copy is allowed, under that condition.
        let q = r.verdict(for: .redistributeQuantized)
        XCTAssertEqual(q.outcome, .allowed)
        XCTAssertTrue(q.conditions.contains { $0.contains("non-commercial") })
        XCTAssertNil(r.redistributionWarning)
    }

    func testAdapterWithoutAnyLicenseCannotConclude() throws {
        let f = try F(self)
        let dir = try f.model("bare-adapter", [
            "adapter_config.json": #"{"base_model_name_or_path": "mistralai/Mistral-7B-v0.1"}"#,
        ])
        let r = try report(dir)
        XCTAssertEqual(r.verdict(for: .commercial).outcome, .cannotConclude)
        XCTAssertTrue(r.effective.commercial.unknownBecause.contains { $0.contains("no license declared") })
    }

    func testLuminumMergeIsNonCommercialAndQuantsMayNotBeRepublished() throws {
        let f = try F(self)
        let dir = try f.model("Luminum-123B", F.luminumFiles)
        let r = try report(dir)
        XCTAssertEqual(r.lineage.relation, "merge")
        XCTAssertEqual(Set(r.lineage.parents.map(\.id)),
                       ["mistralai/Mistral-Large-Instruct-2407", "NeverSleep/Lumimaid-v0.2-123B", "anthracite-org/magnum-v2-123b"])
        XCTAssertEqual(r.lineage.parents.count, 3, "README and mergekit_config.yml name the same three parents once each")
        // The shared ancestor is counted once and shown as repeated below the fine-tunes.
        let all = r.lineage.allNodes
        XCTAssertEqual(all.filter { $0.id == "mistralai/Mistral-Large-Instruct-2407" && $0.status == .resolved }.count, 1)
        XCTAssertEqual(all.filter { $0.status == .repeated }.count, 2)
        XCTAssertEqual(Set(r.effective.licenses), ["mrl", "cc-by-nc-4.0"])
        XCTAssertEqual(r.effective.commercial.value, .forbidden)
        XCTAssertEqual(r.effective.redistributeQuantized.value, .forbidden)
        XCTAssertEqual(r.verdict(for: .commercial).outcome, .notAllowed)
        XCTAssertEqual(r.verdict(for: .redistributeQuantized).outcome, .notAllowed)
        XCTAssertEqual(r.verdict(for: .redistribute).outcome, .notAllowed)
        XCTAssertTrue(r.verdict(for: .redistributeQuantized).reasons.contains { $0 == "forbidden by mrl (mistralai/Mistral-Large-Instruct-2407, anthracite-org/magnum-v2-123b)" })
        XCTAssertTrue(r.unresolved.isEmpty)
        let w = try XCTUnwrap(r.redistributionWarning)
        XCTAssertTrue(w.hasPrefix("warning: "))
        XCTAssertFalse(w.contains("\n"))
        XCTAssertTrue(w.contains("mrl"))
    }

    func testLuminumFromCardsOnlyWithoutTheKnownTable() throws {
        let f = try F(self)
        let dir = try f.model("Luminum-123B", F.luminumFiles)
        let cards = try f.model("cards", [
            "mistralai/Mistral-Large-Instruct-2407/README.md": F.card("""
            license: other
            license_name: mrl
            license_link: https://mistral.ai/licenses/MRL-0.1.md
            """),
            "NeverSleep/Lumimaid-v0.2-123B/README.md": F.card("license: cc-by-nc-4.0\nbase_model: mistralai/Mistral-Large-Instruct-2407"),
            "anthracite-org/magnum-v2-123b/README.md": F.card("base_model: mistralai/Mistral-Large-Instruct-2407"),
        ])
        let emptyTable = KnowledgeBase(version: "test", licenses: KnowledgeBase.builtIn.licenses, models: [])
        let r = try LicenseResolver(knowledgeBase: emptyTable, cardsDirectory: cards).report(for: dir)
        XCTAssertTrue(r.lineage.parents.allSatisfy { $0.foundIn.hasPrefix("cards folder") })
        XCTAssertEqual(r.verdict(for: .commercial).outcome, .notAllowed)
        XCTAssertEqual(r.verdict(for: .redistributeQuantized).outcome, .notAllowed)
        // Magnum's card declares no license: a known prohibition still wins over that unknown.
        XCTAssertEqual(r.effective.redistributeQuantized.decidedBy, ["mrl (mistralai/Mistral-Large-Instruct-2407)"])
        // Without the cards folder and without the table, nothing can be concluded.
        let bare = try LicenseResolver(knowledgeBase: emptyTable).report(for: dir)
        XCTAssertEqual(bare.verdict(for: .redistributeQuantized).outcome, .cannotConclude)
        XCTAssertEqual(bare.unresolved.count, 3)
    }

    func testCardsFolderOverridesTheKnownTable() throws {
        let f = try F(self)
        let dir = try f.model("Luminum-123B", F.luminumFiles)
        // A user's own card says Lumimaid is Apache and based on nothing: the cards folder wins over the table.
        let cards = try f.model("cards", ["NeverSleep--Lumimaid-v0.2-123B.md": F.card("license: apache-2.0")])
        let r = try report(dir, cards: cards)
        let lumimaid = try XCTUnwrap(r.lineage.parents.first { $0.id == "NeverSleep/Lumimaid-v0.2-123B" })
        XCTAssertTrue(lumimaid.foundIn.hasPrefix("cards folder"), lumimaid.foundIn)
        XCTAssertEqual(lumimaid.licenseIDs, ["apache-2.0"])
        XCTAssertFalse(r.effective.licenses.contains("cc-by-nc-4.0"))
        XCTAssertEqual(r.effective.commercial.value, .forbidden, "MRL still forbids it")
    }

    func testMergeWithAnUnknownParentCannotConclude() throws {
        let f = try F(self)
        let dir = try f.model("mystery-merge", [
            "README.md": F.card("license: apache-2.0\ntags: [merge, mergekit]"),
            "mergekit_config.yml": """
            slices:
              - sources:
                  - model: mistralai/Mistral-7B-v0.1
                    layer_range: [0, 32]
                  - model: someone/secret-sauce-7b
                    layer_range: [0, 32]
            merge_method: slerp
            base_model: mistralai/Mistral-7B-v0.1
            """,
        ])
        let r = try report(dir)
        XCTAssertEqual(r.lineage.parents.map(\.id), ["mistralai/Mistral-7B-v0.1", "someone/secret-sauce-7b"])
        XCTAssertEqual(r.lineage.parents[1].status, .unknown)
        XCTAssertEqual(r.unresolved.count, 1)
        for u in IntendedUse.allCases { XCTAssertEqual(r.verdict(for: u).outcome, .cannotConclude, u.rawValue) }
        XCTAssertTrue(r.verdict(for: .commercial).reasons.contains { $0.contains("someone/secret-sauce-7b") })
        XCTAssertFalse(r.obligations.complete)
        XCTAssertTrue(try XCTUnwrap(r.redistributionWarning).contains("cannot confirm"))
    }

    func testUnknownParentDoesNotHideAKnownProhibition() throws {
        let f = try F(self)
        let dir = try f.model("nc-merge", [
            "mergekit_config.yml": """
            models:
              - model: NeverSleep/Lumimaid-v0.2-123B
              - model: someone/unknown-123b
            merge_method: linear
            """,
        ])
        let r = try report(dir)
        XCTAssertEqual(r.verdict(for: .commercial).outcome, .notAllowed, "cc-by-nc forbids it whatever the unknown parent says")
        XCTAssertEqual(r.verdict(for: .redistributeQuantized).outcome, .notAllowed, "the MRL grandparent forbids it")
        XCTAssertEqual(r.unresolved.count, 1)
    }

    func testCycleIsReportedAndCannotConclude() throws {
        let f = try F(self)
        let dir = try f.model("org/A", ["README.md": F.card("license: apache-2.0\nbase_model: org/B")])
        let cards = try f.model("cards", [
            "org/B/README.md": F.card("license: apache-2.0\nbase_model: org/C"),
            "org/C/README.md": F.card("license: apache-2.0\nbase_model: org/B"),
        ])
        let r = try report(dir, cards: cards)
        let b = try XCTUnwrap(r.lineage.parents.first)
        XCTAssertEqual(b.id, "org/B")
        let c = try XCTUnwrap(b.parents.first)
        XCTAssertEqual(c.id, "org/C")
        XCTAssertEqual(c.parents.first?.status, .cycle)
        XCTAssertEqual(c.parents.first?.id, "org/B")
        XCTAssertTrue(r.unresolved.contains { $0.contains("cycle") })
        XCTAssertEqual(r.verdict(for: .redistributeQuantized).outcome, .cannotConclude)
        XCTAssertTrue(r.text().contains("CYCLE"))
    }

    func testSelfReferenceIsACycle() throws {
        let f = try F(self)
        let dir = try f.model("loop", ["README.md": F.card("license: mit\nbase_model: loop")])
        let r = try report(dir)
        XCTAssertEqual(r.lineage.parents.first?.status, .cycle)
        XCTAssertEqual(r.verdict(for: .commercial).outcome, .cannotConclude)
    }

    // MARK: combination rules

    func testShareAlikeWithLlamaIsAConflict() throws {
        let f = try F(self)
        let dir = try f.model("sa", ["README.md": F.card("license: cc-by-sa-4.0\nbase_model: meta-llama/Llama-3.1-8B")])
        let r = try report(dir)
        XCTAssertFalse(r.conflicts.isEmpty)
        XCTAssertTrue(r.conflicts.contains { $0.contains("cc-by-sa-4.0") && $0.contains("llama3.1") }, "\(r.conflicts)")
        XCTAssertEqual(r.verdict(for: .redistributeQuantized).outcome, .notAllowed)
        XCTAssertEqual(r.verdict(for: .commercial).outcome, .allowed, "a conflict does not stop private commercial use")
    }

    func testShareAlikeParentWithPermissiveChildIsAConflictButCompatibleOneIsNot() throws {
        let f = try F(self)
        let cards = try f.model("cards", ["org/sa-base.md": F.card("license: cc-by-sa-4.0")])
        let bad = try f.model("bad", ["README.md": F.card("license: mit\nbase_model: org/sa-base")])
        let r = try report(bad, cards: cards)
        XCTAssertTrue(r.conflicts.contains { $0.contains("bad declares mit") }, "\(r.conflicts)")
        let good = try f.model("good", ["README.md": F.card("license: gpl-3.0\nbase_model: org/sa-base")])
        let r2 = try report(good, cards: cards)
        XCTAssertTrue(r2.conflicts.isEmpty, "CC-BY-SA-4.0 is one-way compatible with GPL-3.0: \(r2.conflicts)")
        // ... one way only: GPL-3.0 material cannot be relabelled CC-BY-SA-4.0.
        try f.model("cards/org/gpl-base", ["README.md": F.card("license: gpl-3.0")])
        let back = try f.model("back", ["README.md": F.card("license: cc-by-sa-4.0\nbase_model: org/gpl-base")])
        let r3 = try report(back, cards: cards)
        XCTAssertTrue(r3.conflicts.contains { $0.contains("back declares cc-by-sa-4.0") }, "\(r3.conflicts)")
    }

    func testLicenseOtherWithNameOrLink() throws {
        let f = try F(self)
        let a = try f.model("mrl-card", ["README.md": F.card("license: other\nlicense_name: mrl\nlicense_link: https://mistral.ai/licenses/MRL-0.1.md")])
        XCTAssertEqual(try report(a).lineage.licenseIDs, ["mrl"])
        let b = try f.model("link-card", ["README.md": F.card("license: other\nlicense_name: custom\nlicense_link: LICENSE.md"),
                                          "LICENSE.md": F.llama31Text])
        let rb = try report(b)
        XCTAssertEqual(rb.lineage.licenseIDs, ["llama3.1"])
        let d = try f.model("hub-link", ["README.md": F.card(
            "license: other\nlicense_link: https://huggingface.co/meta-llama/Llama-3.1-8B/blob/main/LICENSE")])
        XCTAssertEqual(try report(d).lineage.licenseIDs, ["llama3.1"], "a link to a known model's LICENSE file")
        let c = try f.model("custom-card", ["README.md": F.card("license: other\nlicense_name: acme-model-license")])
        let rc = try report(c)
        XCTAssertEqual(rc.verdict(for: .commercial).outcome, .cannotConclude)
        XCTAssertTrue(rc.effective.commercial.unknownBecause.contains { $0.contains("acme-model-license") })
    }

    func testDisagreeingEvidenceAppliesBothAndWarns() throws {
        let f = try F(self)
        let dir = try f.model("disagree", ["README.md": F.card("license: apache-2.0"), "LICENSE": F.llama31Text])
        let r = try report(dir)
        XCTAssertEqual(r.lineage.licenseIDs, ["apache-2.0", "llama3.1"])
        XCTAssertEqual(r.effective.commercial.value, .conditional)
        XCTAssertTrue(r.warnings.contains { $0.contains("several licenses") })
    }

    func testQuantizedRepoInheritsWithoutOwnLicense() throws {
        let f = try F(self)
        let dir = try f.model("gguf-repo", [
            "README.md": F.card("base_model: google/gemma-2-9b-it\nbase_model_relation: quantized"),
        ])
        let r = try report(dir)
        XCTAssertEqual(r.lineage.relation, "quantized")
        XCTAssertEqual(r.effective.licenses, ["gemma"])
        XCTAssertEqual(r.verdict(for: .redistribute).outcome, .allowed)
        XCTAssertEqual(r.obligations.notices.first?.hasPrefix("Gemma is provided under"), true)
    }

    func testMergekitLoraAndLocalPaths() throws {
        let f = try F(self)
        try f.model("parts/local-base", ["README.md": F.card("license: mit")])
        let dir = try f.model("parts/merged", [
            "mergekit_config.yml": """
            models:
              - model: ../local-base
              - model: mistralai/Mistral-7B-v0.1+someone/some-lora
            merge_method: linear
            """,
        ])
        let r = try report(dir)
        XCTAssertEqual(r.lineage.parents.map(\.id), ["../local-base", "mistralai/Mistral-7B-v0.1", "someone/some-lora"])
        XCTAssertTrue(r.lineage.parents[0].foundIn.hasPrefix("local path"))
        XCTAssertEqual(r.lineage.parents[0].licenseIDs, ["mit"])
        XCTAssertEqual(r.lineage.parents[2].status, .unknown)
    }

    func testHubCacheLayoutInCardsFolder() throws {
        let f = try F(self)
        let cards = try f.model("hub", [
            "models--acme--base-7b/snapshots/0000old/README.md": F.card("license: cc-by-nc-4.0"),
            "models--acme--base-7b/snapshots/0123abcd/README.md": F.card("license: bsd-3-clause"),
            "models--acme--base-7b/refs/main": "0123abcd",
            "Other-Org/Mixed-Case.md": F.card("license: mit"),
        ])
        let mixed = try f.model("mixed", ["README.md": F.card("license: mit\nbase_model: other-org/mixed-case")])
        XCTAssertEqual(try report(mixed, cards: cards).lineage.parents.first?.licenseIDs, ["mit"], "ids are case-insensitive")
        let dir = try f.model("child", ["README.md": F.card("license: bsd-3-clause\nbase_model: https://huggingface.co/acme/base-7b")])
        let r = try report(dir, cards: cards)
        XCTAssertEqual(r.lineage.parents.first?.id, "acme/base-7b")
        XCTAssertEqual(r.lineage.parents.first?.licenseIDs, ["bsd-3-clause"])
        XCTAssertEqual(r.verdict(for: .redistributeQuantized).outcome, .allowed)
    }

    // MARK: GGUF and outputs

    func testGGUFHeaderIsRead() throws {
        let f = try F(self)
        let url = f.root.appendingPathComponent("model-Q4_K_M.gguf")
        try GGUFWriter.data([
            ("general.architecture", .s("llama")),
            ("general.name", .s("My Llama Tune")),
            ("general.license", .s("llama3.1")),
            ("general.base_model.count", .u32(1)),
            ("general.base_model.0.name", .s("Llama 3.1 8B Instruct")),
            ("general.base_model.0.organization", .s("Meta Llama")),
            ("general.base_model.0.repo_url", .s("https://huggingface.co/meta-llama/Llama-3.1-8B-Instruct")),
            ("tokenizer.ggml.tokens", .a(Array(repeating: "tok", count: 1000))),
            ("tokenizer.ggml.scores", .f32s(Array(repeating: 0, count: 1000))),
            ("general.tags", .a(["llama-3.1", "finetune"])),
        ]).write(to: url)
        let md = try GGUFGeneralMetadata.read(url)
        XCTAssertEqual(md.string("general.license"), "llama3.1")
        XCTAssertEqual(md.strings("general.tags"), ["llama-3.1", "finetune"], "read after skipping the tokenizer arrays")
        let r = try report(url)
        XCTAssertEqual(r.lineage.id, "model-Q4_K_M.gguf")
        XCTAssertEqual(r.lineage.relation, "quantized")
        let source = try XCTUnwrap(r.lineage.parents.first)
        XCTAssertEqual(source.id, "My Llama Tune")
        XCTAssertEqual(source.foundIn, "GGUF metadata of model-Q4_K_M.gguf")
        XCTAssertEqual(source.licenseIDs, ["llama3.1"])
        XCTAssertEqual(source.parents.first?.id, "meta-llama/Llama-3.1-8B-Instruct")
        XCTAssertEqual(r.verdict(for: .redistribute).outcome, .allowed)
        XCTAssertTrue(r.obligations.naming.contains { $0.contains("Built with Llama") })
        XCTAssertThrowsError(try GGUFGeneralMetadata.read(f.root.appendingPathComponent("missing.gguf")))
        let bad = f.root.appendingPathComponent("bad.gguf")
        try Data("GGUF\u{3}\0\0\0".utf8).write(to: bad)
        XCTAssertThrowsError(try report(bad)) { XCTAssertTrue("\($0)".contains("truncated")) }
    }

    func testFolderOfGGUFFilesUsesTheHeader() throws {
        let f = try F(self)
        let dir = try f.model("quants", [:])
        try GGUFWriter.data([
            ("general.license", .s("other")),
            ("general.license.name", .s("mrl")),
            ("general.source.repo_url", .s("https://huggingface.co/mistralai/Mistral-Large-Instruct-2407")),
        ]).write(to: dir.appendingPathComponent("Mistral-Large-Instruct-2407-Q4_K_M.gguf"))
        let r = try LicenseResolver().report(for: dir)
        XCTAssertEqual(r.lineage.relation, "quantized")
        let source = try XCTUnwrap(r.lineage.parents.first)
        XCTAssertEqual(source.id, "mistralai/Mistral-Large-Instruct-2407")
        XCTAssertEqual(source.licenseIDs, ["mrl"])
        XCTAssertTrue(source.evidence[0].source.contains("GGUF metadata general.license"))
        // Re-publishing these files is publishing a derivative of an MRL model.
        XCTAssertEqual(r.verdict(for: .redistribute).outcome, .notAllowed)
        XCTAssertEqual(r.verdict(for: .commercial).outcome, .notAllowed)
    }

    func testGGUFMetadataValuesForConvert() throws {
        let f = try F(self)
        let lum = try report(try f.model("Luminum-123B", F.luminumFiles)).ggufMetadata()
        XCTAssertEqual(lum.license, "other")
        XCTAssertTrue(try XCTUnwrap(lum.licenseName).contains("mrl"))
        XCTAssertEqual(lum.baseModels.count, 3)
        XCTAssertEqual(lum.keyValues.first { $0.key == "general.base_model.count" }?.value, "3")
        let tune = try f.model("tune", ["README.md": F.card("license: llama3.1\nbase_model: meta-llama/Llama-3.1-8B")])
        let md = try report(tune).ggufMetadata()
        XCTAssertEqual(md.license, "llama3.1")
        XCTAssertEqual(md.licenseLink, "https://www.llama.com/llama3_1/license/")
        XCTAssertEqual(md.baseModels, [.init(name: "Llama-3.1-8B", organization: "meta-llama",
                                             repoURL: "https://huggingface.co/meta-llama/Llama-3.1-8B")])
    }

    func testJSONRoundTrip() throws {
        let f = try F(self)
        let r = try report(try f.model("Luminum-123B", F.luminumFiles))
        let text = try r.json()
        let j = try JSONValue.parse(text)
        XCTAssertEqual(j["effective"]?["redistributeQuantized"]?["value"]?.stringValue, "forbidden")
        XCTAssertEqual(j["lineage"]?["parents"]?.arrayValue?.count, 3)
        let back = try JSONDecoder().decode(LicenseReport.self, from: Data(text.utf8))
        XCTAssertEqual(back, r)
    }

    // MARK: bad input

    func testBadInputThrowsOneLineErrors() throws {
        let f = try F(self)
        XCTAssertThrowsError(try report(f.root.appendingPathComponent("nope"))) { e in
            XCTAssertTrue(e is SmeltError)
            XCTAssertFalse("\(e)".contains("\n"))
        }
        let broken = try f.model("broken", ["README.md": "---\nlicense: [unclosed\n---\n"])
        XCTAssertThrowsError(try report(broken)) { XCTAssertTrue("\($0)".contains("invalid YAML front matter")) }
        let badAdapter = try f.model("bad-adapter", ["README.md": F.card("license: mit"), "adapter_config.json": "{\"base_model_name_or_path\": "])
        XCTAssertThrowsError(try report(badAdapter)) { XCTAssertTrue("\($0)".contains("adapter_config.json: invalid JSON")) }
        let badMerge = try f.model("bad-merge", ["mergekit_config.yml": "models: [unclosed"])
        XCTAssertThrowsError(try report(badMerge)) { XCTAssertTrue("\($0)".contains("mergekit_config.yml: invalid YAML")) }
        // A broken card of a parent in the cards folder: that parent is unknown, the report still comes.
        let cards = try f.model("cards", ["org/broken.md": "---\nlicense: [x\n---\n"])
        let child = try f.model("child", ["README.md": F.card("license: mit\nbase_model: org/broken")])
        let r = try report(child, cards: cards)
        XCTAssertEqual(r.lineage.parents.first?.status, .unknown)
        XCTAssertTrue(r.warnings.contains { $0.contains("invalid YAML front matter") }, "\(r.warnings)")
        XCTAssertEqual(r.verdict(for: .commercial).outcome, .cannotConclude)
        let notModel = f.root.appendingPathComponent("weights.bin")
        try Data([1, 2, 3]).write(to: notModel)
        XCTAssertThrowsError(try report(notModel))
        XCTAssertThrowsError(try report(f.root, cards: f.root.appendingPathComponent("no-cards"))) {
            XCTAssertTrue("\($0)".contains("--cards"))
        }
    }
}

final class LicenseFileTests: XCTestCase {
    typealias F = FixtureBuilder

    func testUnrecognisedLicenseFile() throws {
        let f = try F(self)
        // With a known card license: a warning, the card stands.
        let a = try f.model("a", ["README.md": F.card("license: mit"), "LICENSE": "Copyright 2024 ACME. Custom terms."])
        let ra = try LicenseResolver().report(for: a)
        XCTAssertEqual(ra.verdict(for: .commercial).outcome, .allowed)
        XCTAssertTrue(ra.warnings.contains { $0.contains("text not recognised") })
        // Alone: the terms are unknown.
        let b = try f.model("b", ["LICENSE": "Copyright 2024 ACME. Custom terms."])
        let rb = try LicenseResolver().report(for: b)
        XCTAssertEqual(rb.verdict(for: .commercial).outcome, .cannotConclude)
        XCTAssertTrue(rb.effective.commercial.unknownBecause.contains { $0.contains("LICENSE (text not recognised)") })
    }

    func testLicenseListInFrontMatterAppliesAll() throws {
        let f = try F(self)
        let d = try f.model("multi", ["README.md": F.card("license:\n- apache-2.0\n- cc-by-nc-4.0")])
        let r = try LicenseResolver().report(for: d)
        XCTAssertEqual(r.lineage.licenseIDs, ["apache-2.0", "cc-by-nc-4.0"])
        XCTAssertEqual(r.verdict(for: .commercial).outcome, .notAllowed)
    }
}

final class ConversionLicenseTests: XCTestCase {
    typealias F = FixtureBuilder

    func testConversionInfo() throws {
        let f = try F(self)
        let ok = ConversionLicenseInfo.check(try f.model("ok", ["README.md": F.card("license: apache-2.0")]))
        XCTAssertNil(ok.warning)
        XCTAssertEqual(ok.metadata.license, "apache-2.0")
        XCTAssertEqual(ok.metadata.keyValues.map(\.key), ["general.license", "general.license.name", "general.license.link"])

        let lum = ConversionLicenseInfo.check(try f.model("Luminum-123B", F.luminumFiles))
        XCTAssertNotNil(lum.warning)
        XCTAssertEqual(lum.report?.verdict(for: .redistributeQuantized).outcome, .notAllowed)

        let broken = ConversionLicenseInfo.check(try f.model("broken", ["README.md": "---\nlicense: [x\n---\n"]))
        XCTAssertNil(broken.report)
        XCTAssertTrue(try XCTUnwrap(broken.warning).hasPrefix("warning: cannot determine the license of broken"))
        XCTAssertTrue(broken.metadata.keyValues.isEmpty)

        // An unrecognised own license is kept verbatim, not replaced by the parent's.
        let custom = ConversionLicenseInfo.check(try f.model("custom", [
            "README.md": F.card("license: other\nlicense_name: acme-license\nbase_model: mistralai/Mistral-7B-v0.1")]))
        XCTAssertEqual(custom.metadata.license, "other")
        XCTAssertEqual(custom.metadata.licenseName, "other / acme-license")
    }

    func testBareSavedModelNamesItsSourceButCannotConclude() throws {
        let f = try F(self)
        let dir = try f.model("saved", ["config.json": #"{"_name_or_path": "meta-llama/Llama-3.1-8B", "model_type": "llama"}"#])
        let r = try LicenseResolver().report(for: dir)
        XCTAssertEqual(r.lineage.relation, "derived")
        XCTAssertEqual(r.lineage.parents.first?.licenseIDs, ["llama3.1"])
        XCTAssertEqual(r.verdict(for: .commercial).outcome, .cannotConclude, "the saved model declares no license of its own")
        XCTAssertTrue(r.obligations.naming.contains { $0.contains("Built with Llama") }, "known ancestors' obligations are still listed")
    }
}
