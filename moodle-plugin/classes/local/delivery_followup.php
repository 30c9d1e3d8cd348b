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
 * What follows each new audit record besides its events: the delivery's report is kept, and the people who deliver are told.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\local;

/**
 * What follows each new audit record besides its events (history_sync calls it once per record):
 * the report of the record's delivery is fetched from the helper and kept (refreshed as its records
 * arrive), and the record's notification, if it calls for one ({@see record_notifications}), is
 * sent, once: the ids notified are kept outside the database ({@see notified_records}), so a record
 * synced again after a database restore sends nothing.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
final class delivery_followup {
    /** @var \Closure|null Reads a delivery's report from the helper: (string $deliveryid): array. */
    private ?\Closure $fetchreport;

    /** @var report_store The reports kept. */
    private report_store $reports;

    /** @var notified_records The records already notified. */
    private notified_records $notified;

    /** @var \Closure Sends a notification: (string $kind, array $record): void. */
    private \Closure $send;

    /**
     * Makes the follow-up.
     *
     * @param \Closure|null $fetchreport Reads a report from the helper (null: keep what the record says).
     * @param report_store $reports The reports kept.
     * @param notified_records $notified The records already notified.
     * @param \Closure|null $send Sends a notification; default: the message ({@see record_notifications::send()}).
     */
    public function __construct(?\Closure $fetchreport, report_store $reports, notified_records $notified, ?\Closure $send = null) {
        $this->fetchreport = $fetchreport;
        $this->reports = $reports;
        $this->notified = $notified;
        $this->send = $send ?? fn(string $kind, array $record) => record_notifications::send($kind, $record);
    }

    /**
     * The follow-up in Moodle: reports in the database, the ids notified in the data folder.
     *
     * @param helper_client|null $client The helper, to read the reports (null: none read).
     * @return self The follow-up.
     */
    public static function in_moodle(?helper_client $client): self {
        $fetch = $client === null ? null : fn(string $deliveryid): array => $client->report($deliveryid);
        return new self($fetch, new report_store(), notified_records::in_dataroot());
    }

    /**
     * Follows one new record: keeps its delivery's report, then sends its notification once.
     *
     * @param array $record The helper's audit record.
     */
    public function handle(array $record): void {
        $deliveryid = (string) ($record['deliveryId'] ?? '');
        $first = false;
        if (report_store::is_delivery_id($deliveryid)) {
            $first = !$this->reports->exists($deliveryid);
            $this->keep_report($deliveryid, $record, $first);
        }
        $id = (string) ($record['id'] ?? '');
        if ($id === '' || $this->notified->contains($id)) {
            return;
        }
        $kind = record_notifications::kind($record);
        if ($kind !== null) {
            ($this->send)($kind, $record);
        }
        $this->notified->add($id);
    }

    /**
     * Keeps the delivery's report as the helper gives it; when the helper cannot, a first record
     * still leaves a report of what it says, so that the delivery is known as seen.
     *
     * @param string $deliveryid The delivery id.
     * @param array $record The record.
     * @param bool $first Whether no report of the delivery is kept yet.
     */
    private function keep_report(string $deliveryid, array $record, bool $first): void {
        try {
            if ($this->fetchreport !== null) {
                $this->reports->save(($this->fetchreport)($deliveryid));
                return;
            }
        } catch (helper_exception $error) {
            // The next record of the delivery, or the report page, reads it again.
            unset($error);
        }
        if ($first) {
            $this->reports->save([
                'deliveryId' => $deliveryid,
                'startedAt' => (string) ($record['time'] ?? ''),
                'actor' => is_array($record['actor'] ?? null) ? $record['actor'] : [],
                'outcome' => 'in_progress',
                'steps' => [],
            ]);
        }
    }
}
