// delivery-copy: makes one copy of the site's code as the code owner, for the engine running as
// root (DeliveryCore's CopyWorker); not meant to be run by hand.
import DeliveryCore

#if canImport(Glibc)
    import Glibc
#endif

exit(CopyWorker.main(CommandLine.arguments))
