import XCTest
@testable import SmeltModel
