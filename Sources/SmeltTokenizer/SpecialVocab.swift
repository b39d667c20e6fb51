import Foundation
import SmeltFormats

/// An ordered GGUF key/value list where setting an existing key replaces its value in place,
/// as gguf-py's GGUFWriter does.
struct OrderedMeta {
    var entries: MetaEntries = []
    mutating func set(_ key: String, _ value: MetaValue) {
        if let i = entries.firstIndex(where: { $0.key == key }) { entries[i].value = value } else { entries.append((key, value)) }
    }
    mutating func remove(_ key: String) { entries.removeAll { $0.key == key } }
}

/// Port of gguf-py's `SpecialVocab` (gguf/vocab.py): special token ids, add_bos/add_eos/add_sep,
/// merges and the chat template, read from tokenizer.json, tokenizer_config.json and config.json.
struct SpecialVocab {
    var merges: [String] = []
    var specialTokenIds: [(String, Int)] = []
    var addSpecialToken: [(String, Bool)] = []
    var chatTemplate: JSONValue? = nil
    var normalizerLowercase: Bool? = nil
    var normalizerStripAccents: Bool? = nil
    var nVocab: Int?
    var loadMerges: Bool
    var specialTokenTypes: [String]

    init(dir: URL, loadMerges: Bool = false, specialTokenTypes: [String]? = nil, nVocab: Int? = nil) throws {
        self.loadMerges = loadMerges
        self.nVocab = nVocab
        self.specialTokenTypes = specialTokenTypes ?? ["bos", "eos", "unk", "sep", "pad", "cls", "mask"]
        do {
            try loadFromTokenizerJSON(dir)
            try loadFromConfigJSON(dir)
        } catch let e as SmeltError where !e.message.hasPrefix("/") {
            throw SmeltError("\(dir.path): \(e.message) (tokenizer.json / tokenizer_config.json / config.json)")
        }
        if loadMerges && merges.isEmpty { try loadMergesTxt(dir) }
    }

    mutating func setSpecialToken(_ typ: String, _ tid: JSONValue?) throws {
        guard let tid = tid, case let .int(v) = tid else {
            if let tid = tid, case let .bool(b) = tid { try setSpecialToken(typ, .int(b ? 1 : 0)) }
            return
        }
        try setSpecialToken(typ, Int(v))
    }

    mutating func setSpecialToken(_ typ: String, _ tid: Int) throws {
        if tid < 0 { throw SmeltError("invalid value for special token type \(typ): \(tid)") }
        if nVocab == nil || tid < nVocab! {
            if specialTokenIds.contains(where: { $0.0 == typ }) { return }
            specialTokenIds.append((typ, tid))
        }
    }

    mutating func setAdd(_ typ: String, _ v: Bool) {
        if let i = addSpecialToken.firstIndex(where: { $0.0 == typ }) { addSpecialToken[i].1 = v } else { addSpecialToken.append((typ, v)) }
    }

    mutating func parseNormalizer(_ n: JSONValue) {
        switch n["type"]?.stringValue {
        case "Lowercase": normalizerLowercase = true
        case "StripAccents": normalizerStripAccents = true
        case "BertNormalizer":
            if let l = n["lowercase"]?.boolValue { normalizerLowercase = l }
            if let s = n["strip_accents"]?.boolValue { normalizerStripAccents = s }
        case "Sequence":
            for x in n["normalizers"]?.arrayValue ?? [] { parseNormalizer(x) }
        default: break
        }
    }

    /// Python truthiness of a JSON value.
    static func truthy(_ v: JSONValue?) -> Bool {
        guard let v = v else { return false }
        switch v {
        case .null: return false
        case let .bool(b): return b
        case let .int(i): return i != 0
        case let .double(d): return d != 0
        case let .string(s): return !s.isEmpty
        case let .array(a): return !a.isEmpty
        case let .object(o): return !o.isEmpty
        }
    }

    mutating func loadMergesTxt(_ dir: URL) throws {
        let f = dir.appendingPathComponent("merges.txt")
        guard let text = try? String(contentsOf: f, encoding: .utf8) else { return }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if let first = lines.first, first.trimmingCharacters(in: .whitespacesAndNewlines).hasPrefix("#") { lines.removeFirst() }
        var out: [String] = []
        for line in lines {
            let l = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if l.isEmpty { continue }
            let parts = l.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if parts.count != 2 { continue }
            out.append("\(parts[0]) \(parts[1])")
        }
        merges = out
    }

    mutating func loadFromTokenizerJSON(_ dir: URL) throws {
        let tf = dir.appendingPathComponent("tokenizer.json")
        var tokenizer: JSONValue? = nil
        var addedTokens: [JSONValue] = []
        if FileManager.default.fileExists(atPath: tf.path) {
            let t = try JSONValue.parse(contentsOf: tf)
            tokenizer = t
            if loadMerges, let m = t["model"]?["merges"]?.arrayValue, !m.isEmpty {
                if m[0].stringValue != nil {
                    merges = m.compactMap { $0.stringValue }
                } else if let p = m[0].arrayValue, p.count == 2, p[0].stringValue != nil {
                    merges = m.map { pair in
                        (pair.arrayValue ?? []).map { part in
                            String((part.stringValue ?? "").unicodeScalars.map { $0 == " " ? "\u{0120}" : Character($0) })
                        }.joined(separator: " ")
                    }
                } else {
                    throw SmeltError("\(tf.path): unknown tokenizer merges format")
                }
            }
            if let n = t["normalizer"], SpecialVocab.truthy(n) { parseNormalizer(n) }
            addedTokens = t["added_tokens"]?.arrayValue ?? []
        }
        let cf = dir.appendingPathComponent("tokenizer_config.json")
        var config: [(String, JSONValue)]? = nil
        if FileManager.default.fileExists(atPath: cf.path) {
            config = try JSONValue.parse(contentsOf: cf).objectValue
        }
        func cget(_ k: String) -> JSONValue? { config?.first(where: { $0.0 == k })?.1 }
        func cset(_ k: String, _ v: JSONValue?) {
            guard config != nil else { return }
            let val = v ?? .null
            if let i = config!.firstIndex(where: { $0.0 == k }) { config![i].1 = val } else { config!.append((k, val)) }
        }
        let hasConfig = config.map { !$0.isEmpty } ?? false
        if let tokenizer = tokenizer {
            var specialBos = cget("bos_token"), specialCls = cget("cls_token")
            var specialEos = cget("eos_token"), specialSep = cget("sep_token")
            let T = SpecialVocab.truthy
            if !T(specialBos) && T(specialCls) && hasConfig { specialBos = specialCls; cset("bos_token", specialCls) }
            if !T(specialEos) && T(specialSep) && hasConfig { specialEos = specialSep; cset("eos_token", specialSep) }
            if let post = tokenizer["post_processor"], T(post) {
                let processors = post["processors"]?.arrayValue ?? [post]
                for processor in processors {
                    let ptype = processor["type"]?.stringValue
                    if ptype == "RobertaProcessing" {
                        setAdd("bos", true); setAdd("eos", true); setAdd("sep", true)
                        if !T(specialCls) && hasConfig {
                            specialCls = processor["cls"]?.arrayValue?.first ?? specialBos
                            cset("cls_token", specialCls)
                        }
                        if !T(specialSep) && hasConfig {
                            specialSep = processor["sep"]?.arrayValue?.first ?? specialEos
                            cset("sep_token", specialSep)
                        }
                        continue
                    }
                    guard ptype == "TemplateProcessing" else { continue }
                    let single = processor["single"]?.arrayValue ?? []
                    var pair = processor["pair"]?.arrayValue ?? []
                    var specialFirst: JSONValue? = nil, specialLast: JSONValue? = nil
                    if single.count > 1 {
                        specialFirst = single[0]["SpecialToken"]?["id"]
                        if T(specialFirst) {
                            if !hasConfig { specialBos = specialFirst }
                            else if specialFirst != specialBos && specialFirst != specialCls {
                                if !T(specialBos) { specialBos = specialFirst; cset("bos_token", specialFirst) }
                                if !T(specialCls) { specialCls = specialFirst; cset("cls_token", specialFirst) }
                            }
                            setAdd("bos", specialFirst == specialBos || specialFirst == specialCls)
                        }
                        specialLast = single[single.count - 1]["SpecialToken"]?["id"]
                        if T(specialLast) {
                            if !hasConfig { specialEos = specialLast }
                            else if specialLast != specialEos {
                                if !specialTokenTypes.contains("eot") {
                                    specialTokenTypes.append("eot"); cset("eot_token", specialEos)
                                } else if !specialTokenTypes.contains("eom") {
                                    specialTokenTypes.append("eom"); cset("eom_token", specialEos)
                                }
                                specialEos = specialLast; cset("eos_token", specialLast)
                            }
                            setAdd("eos", specialLast == specialEos)
                        }
                    }
                    if !pair.isEmpty {
                        let seqStart = (T(specialFirst) && pair[0]["SpecialToken"]?["id"] == specialFirst) ? 1 : 0
                        let seqStopDrop = (T(specialLast) && pair[pair.count - 1]["SpecialToken"]?["id"] == specialLast) ? 1 : 0
                        let endIdx = pair.count - seqStopDrop
                        pair = seqStart < endIdx ? Array(pair[seqStart..<endIdx]) : []
                        if !pair.isEmpty {
                            let a = pair[0]["Sequence"]?["id"]?.stringValue
                            let b = pair[pair.count - 1]["Sequence"]?["id"]?.stringValue
                            if a == "A" && b == "B" && pair.count > 2 {
                                let mid = Array(pair[1..<(pair.count - 1)])
                                var addSep = false
                                if let e = mid[0]["SpecialToken"]?["id"], T(e) {
                                    if (e == specialSep || e == specialEos) && !T(specialLast) { addSep = true }
                                }
                                if mid.count == 2, let e = mid[1]["SpecialToken"]?["id"], T(e) {
                                    if e == specialSep || e == specialEos { addSep = true }
                                }
                                setAdd("sep", addSep)
                                if addSep && !T(specialSep) && hasConfig { cset("sep_token", specialEos) }
                            }
                        }
                    }
                }
            }
        }
        guard hasConfig else { return }
        // chat template
        var alt: JSONValue? = nil
        let jinja = dir.appendingPathComponent("chat_template.jinja")
        let cjson = dir.appendingPathComponent("chat_template.json")
        if let s = try? String(contentsOf: jinja, encoding: .utf8) {
            alt = .string(s)
            let addDir = dir.appendingPathComponent("additional_chat_templates")
            let extra = ((try? FileManager.default.contentsOfDirectory(atPath: addDir.path)) ?? []).filter { $0.hasSuffix(".jinja") }.sorted()
            if !extra.isEmpty {
                var list: [JSONValue] = [.object([("name", .string("default")), ("template", .string(s))])]
                for e in extra {
                    let t = (try? String(contentsOf: addDir.appendingPathComponent(e), encoding: .utf8)) ?? ""
                    list.append(.object([("name", .string(String(e.dropLast(6)))), ("template", .string(t))]))
                }
                alt = .array(list)
            }
        } else if FileManager.default.fileExists(atPath: cjson.path) {
            alt = try JSONValue.parse(contentsOf: cjson)["chat_template"]
        }
        let ct = config!.contains(where: { $0.0 == "chat_template" }) ? cget("chat_template") : alt
        if let ct = ct {
            switch ct {
            case .string, .array: chatTemplate = ct
            default: chatTemplate = nil
            }
        }
        for typ in specialTokenTypes {
            if let add = cget("add_\(typ)_token")?.boolValue { setAdd(typ, add) }
            let entry = cget("\(typ)_token")
            var content: String? = nil
            if let s = entry?.stringValue { content = s }
            else if let e = entry, e.objectValue != nil { content = e["content"]?.stringValue; if content == nil { continue } }
            guard let c = content else { continue }
            let id = addedTokens.first(where: { $0["content"]?.stringValue == c })?["id"]
            try setSpecialToken(typ, id)
        }
    }

    mutating func loadFromConfigJSON(_ dir: URL) throws {
        let f = dir.appendingPathComponent("config.json")
        guard FileManager.default.fileExists(atPath: f.path) else { return }
        let c = try JSONValue.parse(contentsOf: f)
        for typ in specialTokenTypes {
            var id = c["\(typ)_token_id"]
            if id == nil || id == .null, let tc = c["text_config"] { id = tc["\(typ)_token_id"] }
            try setSpecialToken(typ, id)
        }
    }

    /// Writes the keys as `SpecialVocab.add_to_gguf` does.
    func add(to meta: inout OrderedMeta) {
        if !merges.isEmpty { meta.set("tokenizer.ggml.merges", .stringArray(merges)) }
        let idKeys = ["bos": "tokenizer.ggml.bos_token_id", "eos": "tokenizer.ggml.eos_token_id",
                      "unk": "tokenizer.ggml.unknown_token_id", "sep": "tokenizer.ggml.seperator_token_id",
                      "pad": "tokenizer.ggml.padding_token_id", "mask": "tokenizer.ggml.mask_token_id",
                      "eot": "tokenizer.ggml.eot_token_id", "eom": "tokenizer.ggml.eom_token_id"]
        for (typ, id) in specialTokenIds {
            if let k = idKeys[typ] { meta.set(k, .uint32(UInt32(id))) }
        }
        let addKeys = ["bos": "tokenizer.ggml.add_bos_token", "eos": "tokenizer.ggml.add_eos_token",
                       "sep": "tokenizer.ggml.add_sep_token"]
        for (typ, v) in addSpecialToken {
            if let k = addKeys[typ] { meta.set(k, .bool(v)) }
        }
        if let ct = chatTemplate {
            if let s = ct.stringValue {
                meta.set("tokenizer.chat_template", .string(s))
            } else if let list = ct.arrayValue {
                var names: [String] = []
                var def: String? = nil
                for choice in list {
                    let name = String((choice["name"]?.stringValue ?? "").map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "_" })
                    guard !name.isEmpty, let t = choice["template"]?.stringValue else { continue }
                    if name == "default" { def = t } else {
                        if !names.contains(name) { names.append(name) }
                        meta.set("tokenizer.chat_template.\(name)", .string(t))
                    }
                }
                if !names.isEmpty { meta.set("tokenizer.chat_templates", .stringArray(names)) }
                if let d = def { meta.set("tokenizer.chat_template", .string(d)) }
            }
        }
        if let l = normalizerLowercase { meta.set("tokenizer.ggml.normalizer.lowercase", .bool(l)) }
        if let s = normalizerStripAccents { meta.set("tokenizer.ggml.normalizer.strip_accents", .bool(s)) }
    }
}
