import XCTest
@testable import SmeltConvert
