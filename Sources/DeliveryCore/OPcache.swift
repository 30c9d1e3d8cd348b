#if canImport(Glibc)
    import Glibc
#endif

/// Invalidates scripts in PHP-FPM's OPcache, inside the pool itself (the CLI's OPcache is another
/// one): a FastCGI request, made with `cgi-fcgi` (libfcgi-bin) straight to the pool's socket, runs
/// a small script that calls `opcache_invalidate()` on the listed files.
///
/// Production is updated in place while it is not served, so with `opcache.validate_timestamps=0`
/// (or within `revalidate_freq`) the pool would go on running the old compiled code under the same
/// paths. The script and its list live in `<site root>/.delivery-opcache/`, outside every web root:
/// the web server never passes them; only a process that can connect to the pool's socket (root,
/// the pool's user) can run them, and all they can do is drop cached scripts.
struct OPcacheInvalidator {
    let sockets: [String]
    let directory: String
    /// `cgi-fcgi` runs as the web user: what the pool answers is parsed by a process of the pool's
    /// own user, never by root.
    let webUser: UserIdentity?
    let recorder: CommandRecorder

    static let scriptName = "opcache-invalidate.php"

    static let script = """
        <?php
        // moodle-delivery: drops the listed scripts from this PHP-FPM pool's OPcache, or reports its
        // room. Run by the delivery helper through the pool's socket, never through the web server.
        if (($_SERVER['DELIVERY_REPORT'] ?? '') === 'room') {
            $on = function_exists('opcache_get_status') && ini_get('opcache.enable');
            $status = $on ? @opcache_get_status(false) : false;
            $statistics = is_array($status) ? $status['opcache_statistics'] : [];
            // PHP files of the tree, as the pool's user sees them; links are not followed.
            $files = 0;
            $root = (string)($_SERVER['DELIVERY_TREE'] ?? '');
            if ($root !== '' && is_dir($root)) {
                $folders = new RecursiveCallbackFilterIterator(
                    new RecursiveDirectoryIterator($root, FilesystemIterator::SKIP_DOTS),
                    function ($file) {
                        return !in_array($file->getFilename(), ['.git', '.svn', 'CVS'], true);
                    }
                );
                foreach (new RecursiveIteratorIterator($folders) as $file) {
                    if (substr($file->getFilename(), -4) === '.php' && !$file->isLink()) {
                        $files++;
                    }
                }
            }
            // The PHP-FPM master: pools under one master share one OPcache.
            $master = function_exists('posix_getppid') ? posix_getppid() : 0;
            printf("room enabled=%d max_accelerated_files=%d max_cached_keys=%d memory_mb=%d cache_full=%d " .
                "oom_restarts=%d php_files=%d master=%d\\n", $on ? 1 : 0, (int)ini_get('opcache.max_accelerated_files'),
                (int)($statistics['max_cached_keys'] ?? ini_get('opcache.max_accelerated_files')),
                (int)ini_get('opcache.memory_consumption'), !empty($status['cache_full']) ? 1 : 0,
                (int)($statistics['oom_restarts'] ?? 0), $files, $master);
            exit;
        }
        if (!function_exists('opcache_invalidate') || !ini_get('opcache.enable')) {
            echo "invalidated 0 of 0: OPcache is off in this pool\\n";
            exit;
        }
        $name = basename((string)($_SERVER['DELIVERY_LIST'] ?? ''));
        $list = __DIR__ . '/' . $name;
        if ($name === '' || strpos($name, 'list-') !== 0 || !is_file($list)) {
            echo "error: no list\\n";
            exit;
        }
        $files = array_filter(explode("\\n", (string)file_get_contents($list)));
        $done = 0;
        foreach ($files as $file) {
            if (opcache_invalidate($file, true)) {
                $done++;
            }
        }
        echo 'invalidated ' . $done . ' of ' . count($files) . "\\n";

        """

    /// Invalidates `files` (absolute real paths) in every configured pool.
    /// - Returns: one line per pool, for the log.
    func invalidate(_ files: [String]) throws(DeliveryError) -> [String] {
        guard !sockets.isEmpty, !files.isEmpty else { return [] }
        let listName = "list-\(System.processIdentifier)-\(UInt32.random(in: 0...UInt32.max))"
        try prepare()
        do {
            try System.writeFileAtomically(
                "\(directory)/\(listName)", Array(files.joined(separator: "\n").utf8), mode: 0o644)
        } catch {
            throw DeliveryError.io("cannot write the list of scripts for OPcache", error)
        }
        defer { try? System.unlink("\(directory)/\(listName)") }
        return try request(["DELIVERY_LIST": listName], expecting: "invalidated")
    }

    /// Sends one real request for the login page of a tree about to be served straight to every
    /// pool (not through the web server): PHP executes it from the tree's real path, so OPcache
    /// compiles Moodle's bootstrap for that path as the first user request would, and the first
    /// requests after the switch find it compiled. Executing is what makes it safe: compiling
    /// files without running them (`opcache_compile_file`) loses classes whose parent is declared
    /// later in the same file. Failures only cost the warm-up.
    /// - Parameters:
    ///   - codeRoot: the real path of the tree's code root (its `public/` for Moodle 5.1).
    ///   - wwwroot: the site's `$CFG->wwwroot` (host and scheme of the request).
    /// - Returns: one line per pool, for the log.
    func warmByRequest(codeRoot: String, wwwroot: String, timeout: Double = 30) -> [String] {
        guard !sockets.isEmpty, let cgiFcgi = ChildProcess.locate("cgi-fcgi") else { return [] }
        let https = wwwroot.hasPrefix("https://")
        let afterScheme = wwwroot.drop { $0 != "/" }.drop { $0 == "/" }
        let authority = String(afterScheme.prefix { $0 != "/" })
        let basePath = String(afterScheme.drop { $0 != "/" }).trimmingSuffix("/")
        let host = authority.split(separator: ":").first.map(String.init) ?? authority
        let port = authority.split(separator: ":").dropFirst().first.map(String.init) ?? (https ? "443" : "80")
        var lines: [String] = []
        for socket in sockets where (try? System.unixSocketAnswers(socket)) == true {
            var environment = [
                "SCRIPT_FILENAME": "\(codeRoot)/login/index.php", "SCRIPT_NAME": "\(basePath)/login/index.php",
                "REQUEST_URI": "\(basePath)/login/index.php", "DOCUMENT_ROOT": codeRoot, "REQUEST_METHOD": "GET",
                "QUERY_STRING": "", "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PROTOCOL": "HTTP/1.1",
                "HTTP_HOST": authority, "SERVER_NAME": host, "SERVER_PORT": port, "REMOTE_ADDR": "127.0.0.1",
                "HTTP_USER_AGENT": "moodle-delivery warm-up", "SERVER_SOFTWARE": "nginx",
            ]
            if https { environment["HTTPS"] = "on" }
            let started = System.monotonicSeconds()
            let result = try? recorder.run(
                Command(
                    cgiFcgi, ["-bind", "-connect", socket], user: webUser, timeoutSeconds: timeout, outputLimit: 4096,
                    extraEnvironment: environment), echo: false)
            let status =
                result?.standardOutput.split(whereSeparator: \.isNewline).first { $0.hasPrefix("Status:") }
                .map { String($0.dropFirst(7)).trimmingWhitespace() }
                ?? (result?.succeeded == true ? "200" : "no answer")
            lines.append(
                "PHP-FPM \(socket): warmed \(codeRoot) with its login page (\(status), \(format1(System.monotonicSeconds() - started)) s)"
            )
        }
        return lines
    }

    /// Asks every pool how much room its OPcache has, and counts the PHP files of `codeRoot` as
    /// the pool's own user sees them (the helper walks no tree the code owner can write).
    /// - Returns: one report per pool that answers.
    func room(codeRoot: String) throws(DeliveryError) -> [OPcacheRoom] {
        try prepare()
        return try request(["DELIVERY_REPORT": "room", "DELIVERY_TREE": codeRoot], expecting: "room ")
            .compactMap { line in
                guard let colon = line.range(of: ": room ") else { return nil }
                return OPcacheRoom(
                    socket: String(line[..<colon.lowerBound].dropFirst("PHP-FPM ".count)),
                    report: String(line[colon.upperBound...]))
            }
    }

    private func prepare() throws(DeliveryError) {
        do {
            if try System.lstatusIfExists(directory) == nil {
                // Both copies of a secure update OPcache at once: the other may have made it first.
                do throws(SystemCallError) {
                    try System.makeDirectory(directory, 0o755)
                } catch  where error.isExists && (try? System.lstatus(directory))?.kind == .directory {}
            }
            try System.changeMode(directory, 0o755)
            try System.writeFileAtomically("\(directory)/\(Self.scriptName)", Array(Self.script.utf8), mode: 0o644)
        } catch {
            throw DeliveryError.io("cannot write the OPcache script", error)
        }
    }

    private func request(_ parameters: [String: String], expecting prefix: String) throws(DeliveryError) -> [String] {
        guard let cgiFcgi = ChildProcess.locate("cgi-fcgi") else {
            throw DeliveryError(.configuration, "cgi-fcgi is not installed (Debian package libfcgi-bin)")
        }
        var lines: [String] = []
        for socket in sockets {
            // A pool that is not running holds no compiled script: nothing to drop. The
            // pool compiles the files afresh when it starts.
            do throws(SystemCallError) {
                guard try System.unixSocketAnswers(socket) else {
                    lines.append("PHP-FPM \(socket): not running, no OPcache to update")
                    continue
                }
            } catch {
                throw DeliveryError.io(
                    "cannot connect to PHP-FPM at \(socket) for the OPcache request; check that the helper may connect",
                    error)
            }
            var environment = [
                "SCRIPT_FILENAME": "\(directory)/\(Self.scriptName)", "SCRIPT_NAME": "/\(Self.scriptName)",
                "REQUEST_METHOD": "GET", "QUERY_STRING": "", "GATEWAY_INTERFACE": "CGI/1.1",
                "SERVER_PROTOCOL": "HTTP/1.1",
            ]
            environment.merge(parameters) { $1 }
            let command = Command(
                cgiFcgi, ["-bind", "-connect", socket], user: webUser, timeoutSeconds: 300, outputLimit: 16384,
                extraEnvironment: environment)
            let result = try recorder.run(command, echo: false)
            let answer = result.standardOutput.split(whereSeparator: \.isNewline).map {
                String($0).trimmingWhitespace()
            }
            .first { $0.hasPrefix("invalidated") || $0.hasPrefix("error") || $0.hasPrefix("room ") }
            guard result.succeeded, let answer, answer.hasPrefix(prefix) || answer.hasPrefix("invalidated 0 of 0")
            else {
                throw DeliveryError(
                    .io,
                    "PHP-FPM at \(socket) did not answer the OPcache request (\(answer ?? MoodleCLI.lastLines(result))); check that the pool listens there and that the helper may connect"
                )
            }
            lines.append("PHP-FPM \(socket): \(answer)")
        }
        return lines
    }
}

extension String {
    /// The string without a trailing `suffix`.
    func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}
