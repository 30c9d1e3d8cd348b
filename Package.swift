// swift-tools-version:6.0
import PackageDescription

// Linux only: the system layer calls openat2(2), SO_PEERCRED, OFD locks and /proc, which other
// systems lack (`Sources/DeliveryCore/System.swift` stops the build elsewhere). No Apple platform
// is declared because none is supported.
let package = Package(
    name: "moodle-delivery",
    products: [
        .library(name: "DeliveryCore", targets: ["DeliveryCore"]),
        .executable(name: "deliveryctl", targets: ["deliveryctl"]),
        .executable(name: "deliveryd", targets: ["deliveryd"]),
        .executable(name: "delivery-copy", targets: ["delivery-copy"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        .target(name: "CDeliverySystem"),
        .target(
            name: "DeliveryCore",
            dependencies: [
                "CDeliverySystem",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "deliveryctl",
            dependencies: [
                "DeliveryCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "delivery-copy", dependencies: ["DeliveryCore"]),
        .testTarget(name: "DeliveryCoreTests", dependencies: ["DeliveryCore", "delivery-copy"]),
        .systemLibrary(name: "CFastCGI"),
        .target(
            name: "DeliveryServer",
            dependencies: [
                "DeliveryCore",
                "CFastCGI",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "deliveryd",
            dependencies: [
                "DeliveryServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "DeliveryServerTests",
            dependencies: [
                "DeliveryCore",
                "DeliveryServer",
                "deliveryd",
                "deliveryctl",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
