<?php
// A FIXTURE page for the browser test of the plugin's AMD module (Tests/EndToEnd/amd_browser.py), made
// without Moodle (CI has none): the delivery screen rendered from the plugin's own
// templates/screen.mustache with its example context (by the small renderer of
// Tests/PluginTests/check_templates.php; Moodle's {{#str}} helpers show as stand-ins), its URLs
// pointed at the test's fake Moodle, then what Moodle's page footer does for
// $PAGE->requires->js_call_amd('tool_delivery/progress', 'init', […]): the loader (a fixture), the
// stubs of core modules (fixtures), the built module, and the require() call.
//
// Usage: php page.php BASE_URL > page.html

require_once(dirname(__DIR__, 3) . '/Tests/PluginTests/check_templates.php');

$base = rtrim($argv[1] ?? '', '/');
$templates = dirname(__DIR__, 3) . '/moodle-plugin/templates';
preg_match('/Example context \(json\):\s*(\{.*?\})\s*\}\}/s', file_get_contents("{$templates}/screen.mustache"), $match);
$context = json_decode($match[1], true, 64, JSON_THROW_ON_ERROR);
$context['actionurl'] = "{$base}/admin/tool/delivery/action.php";
$context['consoleurl'] = "{$base}/admin/tool/delivery/console.php";
$context['indexurl'] = "{$base}/admin/tool/delivery/index.php";
$context['preflight'] = false;
$context['job'] = false;
$screen = (new mini_mustache($templates))->render_name('tool_delivery/screen', [$context]);
?>
<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>FIXTURE: tool_delivery screen without Moodle</title>
<style>
/* The few Bootstrap rules the module's drawing relies on to be seen. */
[hidden]{display:none!important}.progress{background:#e9ecef;height:1rem}.progress-bar{background:#0f6cbf;color:#fff;height:100%}
</style>
<script>
// Every uncaught error and unhandled rejection of the page, for the test to read.
window.fixtureErrors = [];
window.addEventListener('error', function(event) { window.fixtureErrors.push(String(event.message)); });
window.addEventListener('unhandledrejection', function(event) {
    window.fixtureErrors.push('unhandled rejection: ' + String(event.reason));
});
</script>
</head><body>
<?php echo $screen; ?>

<script src="/fixture/loader.js"></script>
<script src="/fixture/stubs.js"></script>
<script src="/amd/build/progress.min.js"></script>
<script>
require(['tool_delivery/progress'], function(amd) { amd.init('[data-region="tool_delivery-screen"]'); });
</script>
</body></html>
