import DeliveryCore

#if canImport(Glibc)
    import Glibc
#endif

/// The crash tests' seam: in a debug build (the one the tests run), `DELIVERYCTL_TEST_KILL_AT` =
/// `started:STEP`, `finished:STEP`, `line:PREFIX` or `text:PART` makes `deliveryctl` SIGKILL itself
/// at that progress event, as a power cut or an OOM kill would. A release build (what
/// `scripts/install` builds) compiles none of it: the variable is not even read.
struct CrashSeam {
    #if DEBUG
        let spec: String?

        static func fromEnvironment() -> CrashSeam {
            CrashSeam(spec: System.environmentValue("DELIVERYCTL_TEST_KILL_AT"))
        }

        func observe(_ event: ProgressEvent) {
            guard let spec, Self.matches(spec, event) else { return }
            kill(getpid(), SIGKILL)
        }

        static func matches(_ spec: String, _ event: ProgressEvent) -> Bool {
            switch event {
            case .stepStarted(let operation): spec == "started:\(operation.rawValue)"
            case .stepFinished(let operation, _, _): spec == "finished:\(operation.rawValue)"
            case .line(let line):
                (spec.hasPrefix("line:") && line.hasPrefix(String(spec.dropFirst(5))))
                    || (spec.hasPrefix("text:") && line.contains(String(spec.dropFirst(5))))
            case .fraction: false
            }
        }
    #else
        static func fromEnvironment() -> CrashSeam { CrashSeam() }

        func observe(_ event: ProgressEvent) {}
    #endif
}
