/// Smelt's version, written into the files it produces for provenance.
public enum SmeltVersion { public static let string = "0.1.0" }
