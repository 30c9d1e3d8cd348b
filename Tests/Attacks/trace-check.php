<?php
// Reads an strace log of deliveryd (strace -f -y -b execve: its own threads, and each child until
// it runs its program) and checks the first rule of docs/SECURITY.md: no call of the privileged
// helper resolves a path through a folder a less-privileged user can write.
//
// Usage: php trace-check.php TRACE WEB_UID [RELEASES]
//
// With RELEASES (the site's releases/ folder), it also checks that the helper itself wrote nothing
// inside a copy (releases/.<copy>.<generation>/…): the copies are made by delivery-copy, as the
// code owner, after its execve (where strace leaves it).
//
// For every traced call that names a path, each folder on the way is looked at (now, after the
// run; a folder gone since counts as writable when it sat in a sticky world-writable folder such
// as /tmp, where anybody could have made it):
//   - through a folder the web user can write (its own, or writable by group or others): any call
//     fails the check, reading included;
//   - through a folder of another user (the code owner's trees): a call that changes something
//     fails the check; a read is counted and listed (see "reads through the code owner's folders").
// A call relative to an open folder must name a single entry (or be openat2, which resolves
// beneath without symlinks). Paths through /proc/self/fd are descriptors, not paths.
// Prints "ok - …" / "not ok - …" lines.

$trace = $argv[1];
$webuid = (int) $argv[2];
$changing = ['unlink', 'unlinkat', 'rmdir', 'rename', 'renameat', 'renameat2', 'mkdir', 'mkdirat', 'chmod',
    'fchmodat', 'chown', 'lchown', 'fchownat', 'symlink', 'symlinkat', 'link', 'linkat', 'utimensat', 'truncate'];
$writeflags = '/O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND/';

/** Who can write the folder $dir: null when only root can, else a description. */
function writer(string $dir, bool $afterstickyparent, int $webuid): ?string {
    static $cache = [];
    if (array_key_exists($dir, $cache)) {
        return $cache[$dir];
    }
    $status = @lstat($dir);
    if ($status === false) {
        $result = $afterstickyparent ? 'anybody (made in a sticky world-writable folder, gone now)' : null;
    } else if (($status['mode'] & 0170000) === 0120000) {
        $result = null; // A symlink on the way: resolved by the kernel like any path of root's own.
    } else if ($status['uid'] === $webuid) {
        $result = 'web';
    } else if (($status['mode'] & 0022) && !($status['mode'] & 01000)) {
        $result = 'web';
    } else if ($status['uid'] !== 0) {
        $result = 'uid ' . $status['uid'];
    } else {
        $result = null;
    }
    return $cache[$dir] = $result;
}

/** The least trusted writer of the folders on the way to $path (null: root's only). */
function path_writer(string $path, int $webuid): ?string {
    $parts = array_values(array_filter(explode('/', $path), fn($p) => $p !== ''));
    array_pop($parts); // The entry itself.
    $dir = '';
    $sticky = false;
    $found = null;
    foreach ($parts as $part) {
        $dir .= '/' . $part;
        $who = writer($dir, $sticky, $webuid);
        if ($who === 'web' || ($who !== null && str_starts_with($who, 'anybody'))) {
            return $who;
        }
        if ($who !== null) {
            $found = $who;
        }
        $status = @lstat($dir);
        $sticky = $status !== false && ($status['mode'] & 01002) === 01002;
    }
    return $found;
}

$releases = $argv[3] ?? null;
$failures = 0;
$reads = [];
$checked = 0;
$intocopies = [];
foreach (file($trace, FILE_IGNORE_NEW_LINES) as $line) {
    if (!preg_match('/^(?:\[pid\s+)?(\d+)\]?\s+([a-z0-9_]+)\((.*)$/', $line, $m)) {
        continue;
    }
    [$all, $pid, $call, $rest] = $m;
    if (!in_array($call, $changing, true) && !in_array($call, ['open', 'openat', 'openat2'], true)) {
        continue;
    }
    if (preg_match('/= -1 /', $rest)) {
        continue; // Failed calls changed nothing and read nothing.
    }
    // Arguments: descriptors print as N</path>, strings as "…".
    preg_match_all('/(AT_FDCWD(?:<[^>]*>)?|\d+<([^>]*)>|"((?:[^"\\\\]|\\\\.)*)")/', $rest, $args, PREG_SET_ORDER);
    $paths = [];
    $base = null;
    foreach ($args as $arg) {
        if (str_starts_with($arg[1], 'AT_FDCWD')) {
            $base = '';
        } else if (isset($arg[2]) && $arg[2] !== '' && !isset($arg[3])) {
            $base = $arg[2];
        } else if (isset($arg[3])) {
            $name = stripcslashes($arg[3]);
            $paths[] = [$base, $name];
            $base = null;
        }
        if (count($paths) == 2) {
            break;
        }
    }
    $changes = in_array($call, $changing, true) || preg_match($writeflags, $rest);
    if ($releases !== null && $changes) {
        // Inside a copy: a descriptor of a folder in it, or a path below its root.
        foreach ($args as $arg) {
            $where = isset($arg[3]) ? stripcslashes($arg[3]) : ($arg[2] ?? '');
            if (str_starts_with($where, "$releases/.") && (isset($arg[3]) ? substr_count(substr($where, strlen($releases) + 1), '/') >= 1 : true)) {
                $intocopies[] = "pid {$pid} {$call}(" . substr($rest, 0, 160) . ')';
                break;
            }
        }
    }
    foreach ($paths as [$dirbase, $name]) {
        if (($call === 'symlink' || $call === 'symlinkat') && $name === $paths[0][1] && count($paths) == 2) {
            continue; // A symlink's target is text, not a path the call resolves.
        }
        if (str_starts_with($name, '/proc/self/fd/') || str_starts_with($name, '/dev/')) {
            continue;
        }
        $checked++;
        if ($dirbase !== null && $dirbase !== '' && !str_starts_with($name, '/')) {
            if (str_contains(trim($name, '/'), '/') && $call !== 'openat2') {
                $failures++;
                echo "not ok - pid {$pid} {$call}: '{$name}' below {$dirbase} resolves several parts without openat2\n";
            }
            continue;
        }
        $who = path_writer($name, $webuid);
        if ($who === null) {
            continue;
        }
        if ($who === 'web' || str_starts_with($who, 'anybody')) {
            $failures++;
            echo "not ok - pid {$pid} {$call}({$name}): through a folder writable by {$who}\n";
        } else if ($changes) {
            $failures++;
            echo "not ok - pid {$pid} {$call}({$name}) changes something through a folder of {$who}\n";
        } else {
            $reads[$name] = $who;
        }
    }
}
echo "    {$checked} path arguments checked; reads through the code owner's folders: " . count($reads) . "\n";
foreach (array_slice(array_keys($reads), 0, 15) as $path) {
    echo "      {$path}\n";
}
if ($releases !== null) {
    if ($intocopies) {
        $failures++;
        echo "not ok - the helper itself wrote inside a copy " . count($intocopies) . " times (the code owner's delivery-copy must):\n";
        foreach (array_slice($intocopies, 0, 10) as $call) {
            echo "      {$call}\n";
        }
    } else {
        echo "ok - the helper itself wrote nothing inside a copy: delivery-copy made them, as the code owner\n";
    }
}
if ($failures === 0) {
    echo "ok - no call of the helper resolves a path through a folder a less-privileged user can write, and none changes anything through the code owner's folders ({$checked} path arguments)\n";
}
exit($failures === 0 ? 0 : 1);
