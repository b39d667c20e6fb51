import XCTest
@testable import SmeltFormats
