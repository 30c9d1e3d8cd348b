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
 * The upstream watch: asks the helper what a delivery would bring, and tells the people who deliver once per revision.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\local;

/**
 * The upstream watch (the scheduled task check_upstream): asks the helper to look at the upstream
 * (POST /upstream-checks), keeps a small copy of its answer in the plugin's configuration for the
 * Notifications page, and, when new code waits, sends the notification `upstreamwaiting` once per
 * upstream revision: the id last notified is kept in the configuration, so the same revision found
 * again sends nothing, and a new one sends one message.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
final class upstream_watch {
    /** @var \Closure Asks the helper: (): array, the UpstreamPreview. */
    private \Closure $check;

    /** @var \Closure Tells people: (upstream_summary $summary): void. */
    private \Closure $notify;

    /** @var \Closure|null Starts a rehearsal: (): void; null when the helper is not asked to. */
    private ?\Closure $rehearse;

    /**
     * Makes the watch.
     *
     * @param helper_client|\Closure $check The helper, or what returns an UpstreamPreview.
     * @param \Closure|null $notify Receives the summary of a new waiting revision; default: the message.
     * @param \Closure|null $rehearse Starts a rehearsal of what waits, when the setting asks for one after
     *      each new revision that upgrades Moodle; default: the helper's `rehearse` operation (a job).
     */
    public function __construct(helper_client|\Closure $check, ?\Closure $notify = null, ?\Closure $rehearse = null) {
        $this->check = $check instanceof helper_client ? fn(): array => $check->check_upstream() : $check;
        $this->notify = $notify ?? fn(upstream_summary $summary) => self::notify($summary);
        $this->rehearse = $rehearse
            ?? ($check instanceof helper_client ? function () use ($check): void {
                $check->start_operation('rehearse', []);
            } : null);
    }

    /**
     * Looks once: keeps the answer, and notifies a waiting revision not notified before.
     *
     * @return upstream_summary What was found.
     * @throws helper_exception When the helper refuses (an operation runs) or does not answer.
     */
    public function run(): upstream_summary {
        $summary = new upstream_summary(($this->check)());
        self::keep($summary);
        $id = $summary->revision_id();
        if ($summary->waiting() && $id !== '' && (string) get_config('tool_delivery', 'upstreamnotified') !== $id) {
            ($this->notify)($summary);
            set_config('upstreamnotified', $id, 'tool_delivery');
        }
        // The automatic rehearsal: once per new revision whose delivery would upgrade Moodle (a
        // refusal, such as another operation running, is tried again at the next run).
        if (
            $this->rehearse !== null && get_config('tool_delivery', 'rehearseafterupstreamcheck') && $summary->upgrades()
                && $id !== '' && (string) get_config('tool_delivery', 'upstreamrehearsed') !== $id
        ) {
            try {
                ($this->rehearse)();
                set_config('upstreamrehearsed', $id, 'tool_delivery');
            } catch (helper_exception $error) {
                debugging('tool_delivery: the rehearsal did not start: ' . $error->getMessage(), DEBUG_DEVELOPER);
            }
        }
        return $summary;
    }

    /**
     * Keeps what the helper says of the upstream for the Notifications page (which never waits for
     * the helper). The status's copy says nothing waits any more once production is at that
     * revision, so a delivery clears the page's notice as soon as this is kept again.
     *
     * @param upstream_summary|array|null $upstream A summary, or the status's `site.upstream` (null: nothing kept changes).
     */
    public static function keep(upstream_summary|array|null $upstream): void {
        if ($upstream === null) {
            return;
        }
        $summary = $upstream instanceof upstream_summary ? $upstream : new upstream_summary($upstream);
        $kept = json_encode($summary->compact(), JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
        set_config('upstreamlast', $kept, 'tool_delivery');
    }

    /**
     * What the last run found, as kept in the plugin's configuration.
     *
     * @return upstream_summary|null The summary, or null before the first run.
     */
    public static function last(): ?upstream_summary {
        $kept = json_decode((string) get_config('tool_delivery', 'upstreamlast'), true);
        return is_array($kept) ? new upstream_summary($kept) : null;
    }

    /**
     * Sends the notification of a waiting revision to the people who deliver.
     *
     * @param upstream_summary $summary What waits.
     * @return int How many messages were sent.
     */
    public static function notify(upstream_summary $summary): int {
        return notifier::send(
            'upstreamwaiting',
            get_string('message:upstreamwaiting', 'tool_delivery', $summary->revision_label()),
            $summary->lines(),
            new \moodle_url('/admin/tool/delivery/index.php'),
            get_string('pluginname', 'tool_delivery')
        );
    }
}
