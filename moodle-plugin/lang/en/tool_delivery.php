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
 * Strings for tool_delivery (English).
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

defined('MOODLE_INTERNAL') || die();

$string['action:cancel'] = 'Cancel';
$string['action:check'] = 'Check';
$string['action:restore'] = 'Restore production';
$string['action:rollback'] = 'Emergency rollback';
$string['action:runall'] = 'Run all';
$string['action:secure'] = 'Secure';
$string['action:switch'] = 'Set production aside';
$string['action:update'] = 'Update source files';
$string['banner:before'] = 'Before the delivery: {$a}';
$string['banner:comment'] = 'Comment: {$a}';
$string['banner:deliverystarted'] = 'Delivery started {$a}';
$string['banner:healthcheck'] = 'Last health check';
$string['banner:holder'] = '{$a->name} is running "{$a->operation}" since {$a->since}.';
$string['banner:interrupted'] = 'An operation died while running: "{$a->operation}" by {$a->name} since {$a->since}. Run "deliveryctl recover" on the server before anything else.';
$string['banner:maintenance'] = 'Moodle is in maintenance mode.';
$string['banner:nocopy'] = 'No complete copy';
$string['banner:nolock'] = 'Nobody holds the delivery lock.';
$string['banner:production'] = 'Production';
$string['banner:refreshed'] = 'Refreshed: {$a}';
$string['banner:served'] = 'Served copy';
$string['banner:snapshot'] = 'Database snapshot';
$string['banner:snapshotcode'] = 'Snapshot of the database used by {$a} (the code before the delivery)';
$string['banner:snapshotdetail'] = '{$a->database} ({$a->type}): {$a->tables} tables, {$a->size}';
$string['banner:snapshottaken'] = 'Taken {$a->date}, dumped in {$a->duration}';
$string['banner:state'] = 'State';
$string['banner:unknown'] = 'not read yet';
$string['banner:upgraderan'] = 'Moodle\'s upgrade has run in this delivery: cancel is no longer possible; finish with Restore production or roll back.';
$string['banner:windowopen'] = 'The delivery window is open: Moodle stays in maintenance mode, closed to users, until the health check after Restore production passes. A rollback now loses nothing users wrote.';
$string['check:down'] = 'The delivery helper does not answer on {$a}.';
$string['check:error'] = 'The delivery helper answered an error ({$a}).';
$string['check:helperreachable'] = 'Delivery helper';
$string['check:ok'] = 'The delivery helper answers; the site is in the state "{$a}".';
$string['check:peerrefused'] = 'The delivery helper refuses the web server\'s user: add its uid to allowedUids in the helper\'s configuration.';
$string['check:wrongkey'] = 'The delivery helper refuses our requests: the key file {$a} is missing, too short or not the helper\'s key.';
$string['console:help'] = 'The helper\'s own page follows the delivery and has the emergency rollback, even while Moodle cannot serve pages (the link is yours, valid until {$a}; the web server needs the console location from deploy/).';
$string['console:link'] = 'Emergency console';
$string['console:open'] = 'Open the emergency console';
$string['copy:backup'] = 'Backup copy';
$string['copy:production'] = 'Production';
$string['copy:security'] = 'Security copy';
$string['copy:unknown'] = 'Not one of the copies';
$string['delivery:deliver'] = 'Deliver code to the site with the delivery helper';
$string['duration:days'] = '{$a->days} d {$a->hours} h';
$string['duration:hours'] = '{$a->hours} h {$a->minutes} min';
$string['duration:minutes'] = '{$a->minutes} min';
$string['duration:seconds'] = '{$a->seconds} s';
$string['error:badpath'] = 'The component path was refused: use letters, digits, "_", "-" and "." separated by single "/", such as mod/forum.';
$string['error:badrequest'] = 'The helper refused the request as malformed.';
$string['error:badsignature'] = 'The helper refused the request\'s signature: the key file is not the helper\'s key.';
$string['error:bodytoolarge'] = 'The request is too large for the helper.';
$string['error:busy'] = 'The helper is busy or stopping; try again in a moment.';
$string['error:configuration'] = 'The helper\'s site configuration is not usable; see the helper\'s log.';
$string['error:confirmationrequired'] = 'The rollback was not done: it would restore the database snapshot and lose what users wrote since. Tick the confirmation above the Emergency rollback button, then try again.';
$string['error:copymissing'] = 'There is no complete copy for this step; secure the whole tree first.';
$string['error:databaserestorefailed'] = 'Restoring the database snapshot failed; the site stays in maintenance mode. Read the log, then run the rollback again or finish from the server with deliveryctl.';
$string['error:healthcheckfailed'] = 'The health check after Restore production failed (see the log for what failed): the site was rolled back, or waits in maintenance mode for your choice, as the helper is configured.';
$string['error:helperdenied'] = 'The web server\'s user may not open the helper\'s socket; check its group and mode.';
$string['error:helpermissing'] = 'The delivery helper is not running: there is no socket at the configured path.';
$string['error:helperprotocol'] = 'The delivery helper answered something unexpected; see its log.';
$string['error:helperrefused'] = 'The delivery helper does not answer on its socket.';
$string['error:helpertimeout'] = 'The delivery helper did not answer in time.';
$string['error:internal'] = 'The helper met an internal error; see the helper\'s log.';
$string['error:io'] = 'The helper could not read or write the site\'s files; see the helper\'s log.';
$string['error:keyshort'] = 'The key file holds fewer than 32 bytes.';
$string['error:keyunreadable'] = 'The helper\'s key file cannot be read by the web server\'s user.';
$string['error:lockheld'] = 'Another operation is running; wait for it to finish.';
$string['error:lockheldby'] = '{$a->name} is running "{$a->operation}" since {$a->since}; wait for it to finish.';
$string['error:methodnotallowed'] = 'The helper does not take this request.';
$string['error:notfound'] = 'The helper does not know this job (it keeps only the last ones, and forgets them when restarted).';
$string['error:notmoodle'] = 'The site is not a Moodle code tree the helper can work on.';
$string['error:parameterstoolarge'] = 'The request carries too many parameters for the helper.';
$string['error:peerrefused'] = 'The helper refuses the web server\'s user.';
$string['error:preempted'] = 'The operation stopped because an emergency rollback took over.';
$string['error:preflightfailed'] = 'The check before serving production found what would break the site (syntax error, conflict markers, a version going backwards…): the site still serves the backup copy. Press Check to see the report.';
$string['error:privileges'] = 'The helper lacks the privileges for this; see the helper\'s log.';
$string['error:replayednonce'] = 'The helper refused a replayed request.';
$string['error:requesttimeout'] = 'The helper did not receive the request in time.';
$string['error:snapshotfailed'] = 'The database snapshot before Moodle\'s upgrade failed, so the upgrade did not run; the site still serves the copy it served. Read the log for the reason (free space, dump tool, database access).';
$string['error:stalelock'] = 'An operation died while running: run "deliveryctl recover" on the server.';
$string['error:stalerequest'] = 'The helper refused the request\'s time: check both clocks.';
$string['error:unauthenticated'] = 'The helper refused an unsigned request.';
$string['error:unknown'] = 'The helper answered the error "{$a}".';
$string['error:upgradefailed'] = 'Moodle\'s upgrade failed; read the log, fix the cause and retry Restore production, or roll back.';
$string['error:vcsfailed'] = 'Updating the source files failed; the site still serves the backup copy. Read the log for the reason.';
$string['error:wrongstate'] = 'The site\'s state does not allow this step now.';
$string['event:rollbackrequested'] = 'Emergency rollback requested';
$string['event:stepfailed'] = 'Delivery step failed';
$string['event:stepfinished'] = 'Delivery step finished';
$string['event:stepstarted'] = 'Delivery step started';
$string['helperdown:cancel'] = 'go back to exactly the state before the delivery (until the upgrade has run)';
$string['helperdown:check'] = 'See the delivery helper check in the system status report';
$string['helperdown:finish'] = 'Finish a delivery from the server with deliveryctl: status, restore, cancel or rollback.';
$string['helperdown:intro'] = 'The page cannot work without the delivery helper (socket {$a}). A delivery in progress can be finished on the server:';
$string['helperdown:restore'] = 'serve the updated production again and run the upgrade';
$string['helperdown:rollback'] = 'serve at once a copy whose code matches the database (the security copy, else the backup copy)';
$string['helperdown:service'] = 'see why the helper is not running';
$string['helperdown:status'] = 'see where the delivery stands and who holds the lock';
$string['history:cli'] = 'command line';
$string['history:comment'] = 'Comment';
$string['history:lessthanasecond'] = 'less than a second';
$string['history:moodle'] = 'Moodle';
$string['history:none'] = 'No delivery yet.';
$string['history:operation'] = 'Operation';
$string['history:result'] = 'Result';
$string['history:revisions'] = 'Revisions';
$string['history:title'] = 'History';
$string['history:took'] = 'took {$a}';
$string['history:when'] = 'When';
$string['history:who'] = 'Who';
$string['next:delivering'] = 'The site is served from the backup copy. Next: Update source files.';
$string['next:idle'] = 'Production is served as before the delivery. Nothing else to do.';
$string['next:restoring'] = 'Production is served but Restore production did not finish: retry it, or roll back.';
$string['next:rolledback'] = 'The site is served from a copy. Next: fix production with Update source files and Restore production, or Cancel.';
$string['next:secured'] = 'The copies are ready. Next: Switch to delivery (Set production aside).';
$string['next:updated'] = 'Production is updated. Next: Restore production (or update more paths).';
$string['operation:cancel'] = 'Cancel';
$string['operation:recover'] = 'Recover';
$string['operation:restore'] = 'Restore production';
$string['operation:rollback'] = 'Emergency rollback';
$string['operation:runall'] = 'Run all';
$string['operation:secure'] = 'Secure';
$string['operation:switch'] = 'Switch to delivery';
$string['operation:update'] = 'Update source files';
$string['option:comment'] = 'Comment';
$string['option:securepath'] = 'Component path (empty for the whole tree)';
$string['option:securitycopy'] = 'Also refresh the security copy';
$string['option:updatepath'] = 'Path to update (empty for the whole tree)';
$string['phase:delivering'] = 'Delivery mode';
$string['phase:idle'] = 'Production';
$string['phase:restoring'] = 'Restoring';
$string['phase:rolledback'] = 'Rolled back';
$string['phase:secured'] = 'Secured';
$string['phase:updated'] = 'Updated';
$string['pluginname'] = 'Code delivery';
$string['preflight:backwards'] = 'goes backwards';
$string['preflight:blocked'] = 'Blocked: Restore production would refuse to serve this code, because of:';
$string['preflight:blocking'] = 'blocking';
$string['preflight:checkedat'] = 'Checked {$a}.';
$string['preflight:checking'] = 'Checking production… this can take a minute on a large update.';
$string['preflight:core'] = 'Moodle core';
$string['preflight:counts'] = 'Compared with the backup copy (the code before the delivery): {$a->added} files added, {$a->changed} changed, {$a->removed} removed.';
$string['preflight:failed'] = 'The check could not run:';
$string['preflight:help'] = 'Runs the checks of Restore production now, without changing anything: what the update brought compared with the backup copy, PHP syntax, conflict markers, versions, local modifications, untracked and missing files, the upgrade to come, room for the database snapshot and the PHP version.';
$string['preflight:line'] = 'line {$a}';
$string['preflight:maintenanceon'] = 'Moodle\'s maintenance mode is on now.';
$string['preflight:more'] = 'and {$a} more';
$string['preflight:norestore'] = 'Nothing to restore now: the site\'s state does not allow Restore production.';
$string['preflight:norestorecompare'] = 'The report compares production with the backup copy all the same, which may be older than production: read it as information, not as the verdict on a delivery.';
$string['preflight:norestorereasons'] = 'Restore production would refuse this code, because of:';
$string['preflight:php:norequirement'] = 'The site runs PHP {$a->current}; the new code states no minimum.';
$string['preflight:php:ok'] = 'The site runs PHP {$a->current}; the new code needs {$a->required} or later.';
$string['preflight:php:tooold'] = 'The new code needs PHP {$a->required} or later; the site runs PHP {$a->current}.';
$string['preflight:readwarnings'] = 'Read the warnings below before you go on.';
$string['preflight:ready'] = 'Ready: nothing stops Restore production.';
$string['preflight:reason:backwards'] = 'The version of {$a->component} goes backwards ({$a->before} → {$a->after}): Moodle refuses to run older code.';
$string['preflight:reason:conflicts'] = 'files with conflict markers: {$a}';
$string['preflight:reason:inconsistent'] = '{$a->component} is inconsistent: {$a->detail}';
$string['preflight:reason:lint'] = 'PHP syntax errors: {$a}';
$string['preflight:reason:missing'] = 'tracked files missing from production: {$a}';
$string['preflight:reason:space'] = 'Not enough free space for the database snapshot in {$a->directory}: {$a->available} free, the database takes {$a->database}.';
$string['preflight:section:added'] = 'Added files';
$string['preflight:section:changed'] = 'Changed files';
$string['preflight:section:conflicts'] = 'Conflict markers';
$string['preflight:section:inconsistent'] = 'Inconsistent components';
$string['preflight:section:lint'] = 'PHP syntax errors';
$string['preflight:section:localmodifications'] = 'Local modifications';
$string['preflight:section:missing'] = 'Missing files';
$string['preflight:section:removed'] = 'Removed files';
$string['preflight:section:untracked'] = 'Files not under version control';
$string['preflight:section:versions'] = 'Version changes';
$string['preflight:space'] = 'Room for the database snapshot in {$a->directory}: {$a->available} free, the database takes {$a->database}.';
$string['preflight:title'] = 'Check before restoring production';
$string['preflight:upgrade:maintenance'] = 'It needs maintenance mode: the site is closed to users while it runs.';
$string['preflight:upgrade:nomaintenance'] = 'It does not need maintenance mode.';
$string['preflight:upgrade:none'] = 'No upgrade is pending: Restore production serves the new code and purges the caches.';
$string['preflight:upgrade:nosnapshot'] = 'No database snapshot will be taken: after the upgrade, a rollback could only serve the older code, which Moodle refuses on the upgraded database.';
$string['preflight:upgrade:pending'] = 'Moodle\'s upgrade will run.';
$string['preflight:upgrade:snapshot'] = 'A database snapshot is taken first, so that a rollback can restore the database.';
$string['preflight:upgrade:snapshotmaintenance'] = 'Maintenance mode is on for the snapshot and the upgrade, even when Moodle does not require it: users are held out for that time.';
$string['preflight:upgrade:unknown'] = 'Moodle could not say whether an upgrade is pending (see the warnings).';
$string['preflight:version:none'] = 'new';
$string['preflight:version:removed'] = 'removed';
$string['preflight:versionchange'] = '{$a->before} → {$a->after}';
$string['preflight:warnings'] = 'Warnings';
$string['privacy:metadata:deliveryd'] = 'The delivery helper (deliveryd) on the server runs the delivery steps and keeps an audit log of who ran each one.';
$string['privacy:metadata:deliveryd:comment'] = 'The comment given with an update or run all.';
$string['privacy:metadata:deliveryd:fullname'] = 'The full name of the administrator who asks for an operation.';
$string['privacy:metadata:deliveryd:userid'] = 'The user id of the administrator who asks for an operation.';
$string['progress:finishcli'] = 'If this lasts, finish from the server with deliveryctl:';
$string['progress:login'] = 'Log in again';
$string['progress:nothingchanged'] = 'Nothing was changed: the site is as it was.';
$string['progress:reload'] = 'Reload the page';
$string['progress:running'] = '{$a}: running…';
$string['progress:served'] = 'The site serves: {$a}.';
$string['progress:sessionlost'] = 'Your Moodle session has ended: it expired, or the database was restored from its snapshot, which takes Moodle\'s sessions back to that moment and logs you out.';
$string['progress:sessionlosthelper'] = 'The delivery helper is not affected: the operation goes on, or has finished, without this page. Log in again to see the result.';
$string['progress:sessionlostrollback'] = 'Your Moodle session has ended: the rollback restored the database snapshot, and with it Moodle\'s sessions as they were at that moment, which logged you out.';
$string['progress:unreachable'] = 'Moodle does not answer at the moment (it is in maintenance mode while it upgrades, or the new code is broken). The delivery goes on in the helper; this page keeps asking.';
$string['result:failed'] = 'Failed';
$string['result:refused'] = 'Refused';
$string['result:running'] = 'Running';
$string['result:succeeded'] = 'Succeeded';
$string['rollback:confirm'] = 'Serve the {$a} now, whatever is running?';
$string['rollback:confirmdatabase'] = 'Serve the {$a} and restore the database snapshot now, whatever is running?';
$string['rollback:confirmloss'] = 'I accept that everything users wrote since the snapshot ({$a}) is lost: the database goes back to that moment.';
$string['rollback:help'] = 'Serves at once, from any state and even while another operation runs, a copy whose code matches the database: the security copy, else the backup copy. When Moodle\'s upgrade changed the database, it also restores the database snapshot taken before the upgrade.';
$string['rollback:helpersays'] = 'The helper explains:';
$string['rollback:kind:code'] = 'Rollback of the code only: the database stays as it is.';
$string['rollback:kind:codeanddatabase'] = 'Rollback of the code and the database (snapshot taken {$a->age} ago, {$a->size})';
$string['rollback:kind:codeanddatabasenosnapshot'] = 'Rollback of the code and the database';
$string['rollback:kind:unavailable'] = 'No rollback possible: there is no complete copy to serve.';
$string['rollback:target'] = 'A rollback would serve the {$a}.';
$string['rollback:title'] = 'Emergency rollback';
$string['screen:busy'] = 'An operation is running; the steps are disabled until it ends.';
$string['screen:runallhelp'] = 'Run all does steps 1 to 4 with the options above and stops at the first failure. Cancel puts production back exactly as it was before the delivery.';
$string['settings:keyfile'] = 'Key file';
$string['settings:keyfile_desc'] = 'The file holding the key shared with the helper (readable by the web server\'s user, not by others).';
$string['settings:socketpath'] = 'Helper socket';
$string['settings:socketpath_desc'] = 'The unix socket of the delivery helper (deliveryd). Both paths can be forced in config.php with $CFG->forced_plugin_settings.';
$string['settings:title'] = 'Code delivery settings';
$string['size:b'] = '{$a} bytes';
$string['size:gb'] = '{$a} GB';
$string['size:kb'] = '{$a} kB';
$string['size:mb'] = '{$a} MB';
$string['step:restore'] = 'Restore production';
$string['step:restore_help'] = 'Serves the updated production again, runs Moodle\'s upgrade (maintenance mode only when required) and purges the caches.';
$string['step:secure'] = 'Secure';
$string['step:secure_help'] = 'Mirrors production into the backup copy, which serves the site during the delivery, and on request into the security copy kept for emergencies.';
$string['step:switch'] = 'Switch to delivery';
$string['step:switch_help'] = 'The site is served from the backup copy, so production can be updated.';
$string['step:update'] = 'Update source files';
$string['step:update_help'] = 'Updates the production tree from version control (whole or a path), with a comment.';
