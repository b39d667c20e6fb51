import XCTest
@testable import SmeltTokenizer
