<?php
// This file is part of Moodle - https://moodle.org/
//
// Moodle is free software: you can redistribute it and/or modify
// it under the terms of the GNU General Public License as published by
// the Free Software Foundation, either version 3 of the License, or
// (at your option) any later version.
//
// Moodle is distributed in the hope that it will be useful,
// but WITHOUT ANY WARRANTY; without even the implied warranty of
// MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
// GNU General Public License for more details.
//
// You should have received a copy of the GNU General Public License
// along with Moodle.  If not, see <https://www.gnu.org/licenses/>.

/**
 * Runs the real deliveryd on a temporary site, key and socket for the plain PHPUnit suite.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

/**
 * Runs the real deliveryd on a temporary site, key and socket.
 *
 * The site is a git working copy as `releases/production` with `current` pointing at it, as the
 * Swift tests make it (Tests/DeliveryServerTests/TestServer.swift).
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
final class deliveryd_server {
    /** @var string The temporary folder. */
    public string $directory;

    /** @var string The socket path. */
    public string $socketpath;

    /** @var string The key file. */
    public string $keyfile;

    /** @var string The key. */
    public string $key;

    /** @var string The helper's log. */
    public string $logpath;

    /** @var resource|null The running process. */
    private $process = null;

    /**
     * The deliveryd binary: $DELIVERYD_BINARY, else the server engineer's build, else ours.
     *
     * @return string|null Its path, or null when none is built.
     */
    public static function binary(): ?string {
        $root = dirname(__DIR__, 2);
        $candidates = [getenv('DELIVERYD_BINARY') ?: '', $root . '/.build-server/debug/deliveryd',
            $root . '/.build-plugin/debug/deliveryd'];
        foreach ($candidates as $candidate) {
            if ($candidate !== '' && is_file($candidate) && is_executable($candidate)) {
                return $candidate;
            }
        }
        return null;
    }

    /**
     * Makes the files: site, site configuration, key and helper configuration.
     *
     * @param array $limits Helper limits to set.
     */
    public function __construct(array $limits = []) {
        $this->directory = rtrim(sys_get_temp_dir(), '/') . '/tool-delivery-test-' . bin2hex(random_bytes(4));
        mkdir($this->directory . '/run', 0700, true);
        $this->socketpath = $this->directory . '/run/deliveryd.sock';
        $this->keyfile = $this->directory . '/key';
        $this->logpath = $this->directory . '/deliveryd.log';
        $production = $this->directory . '/site/releases/production';
        mkdir($production . '/mod/forum', 0755, true);
        file_put_contents($production . '/version.php', "<?php\n\$version = 2024100700;\n");
        file_put_contents($production . '/mod/forum/lib.php', "<?php // forum\n");
        file_put_contents($production . '/mod/forum/version.php', "<?php // forum version\n");
        self::run(['git', 'init', '-q', '-b', 'main'], $production);
        self::run(['git', 'add', '-A'], $production);
        self::run(['git', '-c', 'user.email=test@example.org', '-c', 'user.name=Test', 'commit', '-q', '-m', 'initial'],
            $production);
        // Its upstream: switch and run-all ask it before acting (git ls-remote), as on a real site.
        self::run(['git', 'init', '-q', '--bare', '-b', 'main', $this->directory . '/upstream.git'], $this->directory);
        self::run(['git', 'remote', 'add', 'origin', $this->directory . '/upstream.git'], $production);
        self::run(['git', 'push', '-q', 'origin', 'main'], $production);
        symlink('releases/production', $this->directory . '/site/current');
        $user = posix_getpwuid(posix_geteuid())['name'];
        $site = [
            'siteRoot' => $this->directory . '/site', 'stateDirectory' => $this->directory . '/state',
            'publicLayout' => false, 'php' => PHP_BINARY, 'webUser' => $user, 'codeOwner' => $user,
            'upstream' => ['kind' => 'git', 'branch' => 'main'],
            'moodle' => [
                'wwwroot' => 'https://moodle.example.org', 'dataroot' => $this->directory . '/data', 'admin' => 'admin',
                'dbtype' => 'pgsql', 'dbhost' => 'localhost', 'dbname' => 'moodle', 'dbuser' => 'moodle',
                'prefix' => 'mdl_',
            ],
            'timeouts' => ['versionControl' => 60, 'upgrade' => 60, 'phpScript' => 60],
        ];
        file_put_contents($this->directory . '/site.json', json_encode($site, JSON_UNESCAPED_SLASHES));
        $this->key = bin2hex(random_bytes(24));
        file_put_contents($this->keyfile, $this->key . "\n");
        chmod($this->keyfile, 0600);
        $configuration = [
            'socketPath' => $this->socketpath, 'allowedUids' => [posix_geteuid()], 'keyFile' => $this->keyfile,
            'siteConfiguration' => $this->directory . '/site.json', 'workers' => 2,
            'limits' => $limits + ['readTimeoutSeconds' => 2],
        ];
        if (posix_geteuid() === 0) {
            // As root the helper splits; its request side runs as a user no test peer uses.
            $configuration['requestUser'] = 'nobody';
        }
        file_put_contents($this->directory . '/deliveryd.json', json_encode($configuration, JSON_UNESCAPED_SLASHES));
    }

    /**
     * Enrols a Moodle user for the second factor with deliveryctl (beside the deliveryd binary).
     *
     * @param int $userid The Moodle user id.
     * @return string The secret (base 32).
     */
    public function enrol(int $userid): string {
        $deliveryctl = dirname(self::binary()) . '/deliveryctl';
        $output = self::run([$deliveryctl, 'admin', 'enrol-totp', (string) $userid, '--config',
            $this->directory . '/site.json', '--json'], '/');
        return json_decode($output, true, 8, JSON_THROW_ON_ERROR)['secret'];
    }

    /**
     * The code an authenticator app shows for a secret (RFC 6238: SHA-1, 30 s, 6 digits).
     *
     * @param string $secret The secret in base 32.
     * @param int $offset Seconds from now.
     * @return string The code.
     */
    public static function totp(string $secret, int $offset = 0): string {
        require_once(dirname(__DIR__, 2) . '/Tests/Support/totp.php');
        return delivery_test_totp($secret, $offset);
    }

    /**
     * Stops the helper and removes the folder.
     */
    public function __destruct() {
        $this->stop();
        self::run(['rm', '-rf', $this->directory], '/');
    }

    /**
     * Starts deliveryd and waits until it accepts connections.
     *
     * @throws RuntimeException When it exits or does not answer within 15 seconds.
     */
    public function start(): void {
        $binary = self::binary();
        if ($binary === null) {
            throw new RuntimeException('deliveryd is not built');
        }
        $log = fopen($this->logpath, 'a');
        $this->process = proc_open([$binary, '--config', $this->directory . '/deliveryd.json'],
            [0 => ['file', '/dev/null', 'r'], 1 => $log, 2 => $log], $pipes);
        fclose($log);
        $deadline = microtime(true) + 15;
        while (microtime(true) < $deadline) {
            if (file_exists($this->socketpath)) {
                $socket = @stream_socket_client('unix://' . $this->socketpath, $errno, $errstr, 1);
                if ($socket !== false) {
                    fclose($socket);
                    return;
                }
            }
            if (!proc_get_status($this->process)['running']) {
                throw new RuntimeException('deliveryd exited: ' . $this->log());
            }
            usleep(20000);
        }
        throw new RuntimeException('deliveryd did not answer in time: ' . $this->log());
    }

    /**
     * Stops deliveryd with SIGTERM and waits for it.
     */
    public function stop(): void {
        if ($this->process === null) {
            return;
        }
        $status = proc_get_status($this->process);
        if ($status['running']) {
            proc_terminate($this->process, 15);
            $deadline = microtime(true) + 10;
            while (proc_get_status($this->process)['running'] && microtime(true) < $deadline) {
                usleep(20000);
            }
            if (proc_get_status($this->process)['running']) {
                proc_terminate($this->process, 9);
            }
        }
        proc_close($this->process);
        $this->process = null;
        // A helper killed (not stopped) leaves its socket file, and its request side may answer on
        // it for a moment: the next start replaces a stale socket, and so does this.
        $deadline = microtime(true) + 2;
        while (file_exists($this->socketpath) && microtime(true) < $deadline) {
            usleep(20000);
        }
        @unlink($this->socketpath);
    }

    /**
     * What the helper logged.
     *
     * @return string The log.
     */
    public function log(): string {
        return (string) @file_get_contents($this->logpath);
    }

    /**
     * The production tree of the site.
     *
     * @return string Its path.
     */
    public function production(): string {
        return $this->directory . '/site/releases/production';
    }

    /**
     * Changes the engine's state file as another process of the engine would (it is read on every
     * request): for states a test cannot reach without Moodle, such as a database snapshot.
     *
     * @param callable $change Takes the decoded state (objects, so that empty maps stay maps) and changes it.
     */
    public function change_state(callable $change): void {
        $path = $this->directory . '/state/state.json';
        $state = json_decode(file_get_contents($path), false, 512, JSON_THROW_ON_ERROR);
        $change($state);
        file_put_contents($path . '.new', json_encode($state, JSON_UNESCAPED_SLASHES | JSON_PRETTY_PRINT | JSON_THROW_ON_ERROR));
        rename($path . '.new', $path);
    }

    /**
     * A client acting for a user.
     *
     * @param int $userid The Moodle user id.
     * @param string $fullname The name.
     * @return \tool_delivery\local\helper_client The client.
     */
    public function client(int $userid = 2, string $fullname = 'Ada Lovelace'): \tool_delivery\local\helper_client {
        return new \tool_delivery\local\helper_client(new \tool_delivery\local\fastcgi_client($this->socketpath),
            new \tool_delivery\local\request_signer($this->key), $userid, $fullname);
    }

    /**
     * Runs a command and fails on a non-zero exit.
     *
     * @param array $command The argv.
     * @param string $directory The working directory.
     * @return string What it printed on its standard output.
     */
    private static function run(array $command, string $directory): string {
        $process = proc_open($command, [0 => ['file', '/dev/null', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes,
            $directory);
        $output = stream_get_contents($pipes[1]);
        $errors = stream_get_contents($pipes[2]);
        fclose($pipes[1]);
        fclose($pipes[2]);
        if (proc_close($process) !== 0) {
            throw new RuntimeException(implode(' ', $command) . ' failed: ' . $output . $errors);
        }
        return $output;
    }
}
