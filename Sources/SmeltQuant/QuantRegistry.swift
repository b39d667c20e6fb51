import SmeltFormats

/// The kernels Smelt has, keyed by ggml type.
public enum QuantRegistry {
    /// Every registered kernel.
    public static let all: [any QuantType.Type] = basicKernels + iqGridKernels

    private static let table: [GGMLType: any QuantType.Type] = {
        var t: [GGMLType: any QuantType.Type] = [:]
        for k in all { t[k.ggmlType] = k }
        return t
    }()

    /// The kernel for `type`, or nil when Smelt cannot write that type.
    public static func kernel(for type: GGMLType) -> (any QuantType.Type)? { table[type] }
}
