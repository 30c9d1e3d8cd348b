import Testing
@testable import DeliveryCore
@Test func componentPathRefusesParent() { #expect(throws: DeliveryError.self) { try ComponentPath("../x") } }
