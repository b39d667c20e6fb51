import XCTest
@testable import SmeltLicense

final class KnowledgeBaseTests: XCTestCase {
    let kb = KnowledgeBase.builtIn

    func testBuiltInDataParsesAndCoversTheRequiredLicenses() throws {
        let parsed = try KnowledgeBase.validatedBuiltIn()
        XCTAssertFalse(parsed.version.hasPrefix("invalid"))
        XCTAssertEqual(parsed.version, kb.version)
        let required = ["apache-2.0", "mit", "bsd-3-clause", "cc-by-4.0", "cc-by-sa-4.0", "cc-by-nc-4.0", "cc-by-nc-sa-4.0",
                        "cc-by-nc-nd-4.0", "openrail", "openrail++", "bigscience-openrail-m", "creativeml-openrail-m",
                        "llama2", "llama3", "llama3.1", "llama3.2", "llama3.3", "llama4", "gemma", "mrl", "mnpl", "qwen",
                        "tongyi-qianwen", "deepseek", "falcon", "gpl-3.0", "agpl-3.0", "other", "unknown"]
        for id in required { XCTAssertEqual(kb.license(named: id)?.id, id, id) }
        for l in kb.licenses where l.id != "other" && l.id != "unknown" {
            XCTAssertTrue(l.url.hasPrefix("https://"), "\(l.id) needs a source URL")
            for (p, _) in l.conditions ?? [:] { XCTAssertNotNil(LicenseProperty(rawValue: p), "\(l.id): condition key \(p)") }
            for p in LicenseProperty.allCases where l.permission(p) == .conditional {
                XCTAssertNotNil(l.conditions?[p.rawValue], "\(l.id) is conditional for \(p.rawValue) but states no condition")
            }
        }
    }

    func testNoAmbiguousNamesInTheData() {
        var owner: [String: String] = [:]
        for l in kb.licenses {
            for name in [l.id] + (l.aliases ?? []) {
                let k = KnowledgeBase.key(name)
                if let o = owner[k], o != l.id { XCTFail("'\(name)' names both \(o) and \(l.id)") }
                owner[k] = l.id
            }
        }
        var models = Set<String>()
        for m in kb.models {
            for id in [m.id] + (m.aliases ?? []) { XCTAssertTrue(models.insert(id.lowercased()).inserted, "duplicate model \(id)") }
            for b in m.base ?? [] { XCTAssertNotNil(kb.model(b), "\(m.id): base \(b) is not in the table") }
        }
    }

    func testKnownPropertiesOfKeyLicenses() throws {
        let mrl = try XCTUnwrap(kb.license(named: "mrl"))
        XCTAssertEqual(mrl.commercial, .forbidden)
        XCTAssertEqual(mrl.redistributeDerivatives, .forbidden)
        let nc = try XCTUnwrap(kb.license(named: "cc-by-nc-4.0"))
        XCTAssertEqual(nc.commercial, .forbidden)
        XCTAssertEqual(nc.redistributeDerivatives, .conditional)
        XCTAssertEqual(kb.license(named: "cc-by-nc-nd-4.0")?.redistributeDerivatives, .forbidden)
        XCTAssertEqual(kb.license(named: "cc-by-sa-4.0")?.shareAlike, true)
        let l31 = try XCTUnwrap(kb.license(named: "llama3.1"))
        XCTAssertEqual(l31.userLimit, 700_000_000)
        XCTAssertTrue((l31.naming ?? []).contains { $0.contains("Built with Llama") })
        XCTAssertNotNil(l31.usePolicy)
        XCTAssertEqual(kb.license(named: "llama3")?.naming?.contains { $0.contains("Llama 3\"") }, true)
    }

    func testAliasesAndLinks() {
        XCTAssertEqual(kb.license(named: "Apache 2.0")?.id, "apache-2.0")
        XCTAssertEqual(kb.license(named: "Mistral AI Research License")?.id, "mrl")
        XCTAssertEqual(kb.license(named: "openrail++")?.id, "openrail++")
        XCTAssertEqual(kb.license(named: "openrail")?.id, "openrail")
        XCTAssertEqual(kb.license(named: "llama3")?.id, "llama3")
        XCTAssertNil(kb.license(named: "my-own-license"))
        XCTAssertNil(kb.license(named: ""))
        XCTAssertEqual(kb.license(link: "https://mistral.ai/licenses/MRL-0.1.md")?.id, "mrl")
        XCTAssertEqual(kb.license(link: "https://www.llama.com/llama3_1/license/")?.id, "llama3.1")
        XCTAssertEqual(kb.model("META-LLAMA/meta-llama-3.1-8b-instruct")?.license, "llama3.1")  // alias, any case
    }

    func testRecognisesTextsByContentMostSpecificFirst() {
        XCTAssertEqual(kb.recognise(text: FixtureBuilder.apacheText)?.id, "apache-2.0")
        XCTAssertEqual(kb.recognise(text: FixtureBuilder.llama31Text)?.id, "llama3.1")
        XCTAssertEqual(kb.recognise(text: "META LLAMA 3 COMMUNITY LICENSE AGREEMENT\nMeta Llama 3 Version Release Date: April 18, 2024")?.id, "llama3")
        XCTAssertEqual(kb.recognise(text: "Llama 3.2 is licensed under the Llama 3.2 Community License, Copyright © Meta Platforms, Inc.")?.id, "llama3.2")
        XCTAssertEqual(kb.recognise(text: "GNU AFFERO GENERAL PUBLIC LICENSE\n Version 3, 19 November 2007\n ... the GNU General Public License ...")?.id, "agpl-3.0")
        XCTAssertEqual(kb.recognise(text: "GNU GENERAL PUBLIC LICENSE\nVersion 3, 29 June 2007")?.id, "gpl-3.0")
        XCTAssertEqual(kb.recognise(text: "Attribution-NonCommercial 4.0 International\n\nCreative Commons Attribution-NonCommercial 4.0 International Public License")?.id, "cc-by-nc-4.0")
        XCTAssertEqual(kb.recognise(text: "Creative Commons Attribution 4.0 International Public License")?.id, "cc-by-4.0")
        XCTAssertEqual(kb.recognise(text: "Redistribution and use in source and binary forms, with or without modification, are permitted provided... 3. Neither the name of the copyright holder")?.id, "bsd-3-clause")
        XCTAssertEqual(kb.recognise(text: "Copyright (c) 2023 Stability AI CreativeML Open RAIL++-M License dated July 26, 2023")?.id, "openrail++")
        XCTAssertEqual(kb.recognise(text: "# Mistral AI Research License\nIf You want to use a Mistral Model...")?.id, "mrl")
        XCTAssertEqual(kb.recognise(text: "Gemma is provided under and subject to the Gemma Terms of Use found at ai.google.dev/gemma/terms")?.id, "gemma")
        XCTAssertEqual(kb.recognise(text: "Qwen RESEARCH LICENSE AGREEMENT\nRelease Date: September 19, 2024\nBy clicking ... Alibaba Cloud ... Qwen LICENSE AGREEMENT")?.id, "qwen-research")
        XCTAssertEqual(kb.recognise(text: "Qwen LICENSE AGREEMENT\nThis Agreement ... between You and Alibaba Cloud")?.id, "qwen")
        XCTAssertEqual(kb.recognise(text: "DEEPSEEK LICENSE AGREEMENT\nVersion 1.0, 23 October 2023")?.id, "deepseek")
        // A specific RAIL title beats the generic Open RAIL phrases it also contains.
        let rail = "CreativeML Open RAIL-M dated August 22, 2022 ... Attachment A ... Use Restrictions ..."
        XCTAssertEqual(kb.recognise(text: rail)?.id, "creativeml-openrail-m")
        XCTAssertEqual(kb.recognise(text: "Open RAIL license ... Attachment A ... Use Restrictions")?.id, "openrail")
        XCTAssertEqual(kb.recognise(text: "Redistribution and use in source and binary forms, with or without modification, are permitted provided that")?.id, "bsd-2-clause")
        XCTAssertNil(kb.recognise(text: "All rights reserved. Do not copy."))
    }

    func testPermissionCombination() {
        XCTAssertEqual(Permission.allowed.combined(with: .conditional), .conditional)
        XCTAssertEqual(Permission.conditional.combined(with: .unknown), .unknown)
        XCTAssertEqual(Permission.unknown.combined(with: .forbidden), .forbidden)
        XCTAssertEqual(Permission.forbidden.combined(with: .unknown), .forbidden)
        XCTAssertEqual(Permission.allowed.combined(with: .allowed), .allowed)
    }

    func testInvalidKnowledgeBaseIsRejected() {
        XCTAssertThrowsError(try KnowledgeBase(yaml: "version: x\nlicenses: []\nmodels: [{id: a/b, license: nope}]\n"))
        XCTAssertThrowsError(try KnowledgeBase(yaml: "version: [unclosed"))
    }
}
