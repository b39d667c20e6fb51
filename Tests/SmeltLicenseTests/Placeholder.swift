import XCTest
@testable import SmeltLicense
