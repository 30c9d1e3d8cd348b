/// The version of moodle-delivery: what `deliveryd --version` and `deliveryctl --version` print,
/// the Debian package's version (`scripts/package`), and the plugin's `$plugin->release`. A test
/// (`ArchitectureTests`) keeps the plugin's release and the package's changelog in step with it.
public enum ProductVersion {
    /// The version, `MAJOR.MINOR.PATCH`.
    public static let number = "0.9.0"
}
