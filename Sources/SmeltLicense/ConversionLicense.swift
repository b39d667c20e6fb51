import Foundation
import SmeltFormats

/// What convert / quantize need from the license check: GGUF metadata values and an optional one-line warning.
public struct ConversionLicenseInfo: Codable, Sendable, Equatable {
    /// Values for `general.license*` and `general.base_model.*`.
    public var metadata: GGUFLicenseMetadata
    /// One line to print when the output may not (or cannot be confirmed to) be published; nil otherwise.
    public var warning: String?
    /// The full report, nil when the model could not be read.
    public var report: LicenseReport?

    /// Checks the model at `source` for a conversion or quantization. Never throws: a model that cannot be
    /// read gives empty metadata and a warning, so a bad card never stops a conversion.
    public static func check(_ source: URL, cardsDirectory: URL? = nil,
                             knowledgeBase: KnowledgeBase = .builtIn) -> ConversionLicenseInfo {
        do {
            let r = try LicenseResolver(knowledgeBase: knowledgeBase, cardsDirectory: cardsDirectory).report(for: source)
            return ConversionLicenseInfo(metadata: r.ggufMetadata(knowledgeBase: knowledgeBase), warning: r.redistributionWarning, report: r)
        } catch {
            let msg = (error as? SmeltError)?.message ?? "\(error)"
            return ConversionLicenseInfo(
                metadata: GGUFLicenseMetadata(license: nil, licenseName: nil, licenseLink: nil, baseModels: []),
                warning: "warning: cannot determine the license of \(source.lastPathComponent): \(msg)",
                report: nil)
        }
    }
}
