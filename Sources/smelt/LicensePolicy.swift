import ArgumentParser
import Foundation
import SmeltConvert
import SmeltFormats
import SmeltLicense

/// `--license-policy warn|refuse` of convert and quantize, and the license keys a conversion writes.
struct LicensePolicyOptions: ParsableArguments {
    @Option(help: "warn (default): print a warning when publishing the output is not allowed or cannot be confirmed; refuse: stop before writing anything (exit 3).")
    var licensePolicy = "warn"

    /// Checks the model at `input`: prints the warning (warn) or throws `PolicyRefusal` (refuse).
    /// Returns the license keys of the lineage for a converted file.
    @discardableResult
    func check(_ input: String, quiet: Bool = false) throws -> LicenseKeys {
        guard ["warn", "refuse"].contains(licensePolicy.lowercased()) else {
            throw UsageError(Suggestions.unknown("--license-policy", licensePolicy, among: ["warn", "refuse"]))
        }
        let info = ConversionLicenseInfo.check(URL(fileURLWithPath: input))
        if let w = info.warning {
            if licensePolicy.lowercased() == "refuse" {
                let reason = w.hasPrefix("warning: ") ? String(w.dropFirst("warning: ".count)) : w
                throw PolicyRefusal("refused by --license-policy refuse: \(reason)")
            }
            if !quiet { FileHandle.standardError.write(Data("\(w)\n".utf8)) }
        }
        let m = info.metadata
        return LicenseKeys(license: m.license, name: m.licenseName, link: m.licenseLink)
    }
}
