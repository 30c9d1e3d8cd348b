<?php
// A FIXTURE for the browser test of the plugin's AMD module (Tests/EndToEnd/amd_browser.py): renders
// one of the plugin's own templates with a context read as JSON on stdin ({"name", "context"}), by
// the small renderer of Tests/PluginTests/check_templates.php, as core/templates would in Moodle.
//
// Usage: php render.php < request.json

require_once(dirname(__DIR__, 3) . '/Tests/PluginTests/check_templates.php');

$request = json_decode(stream_get_contents(STDIN), true, 64, JSON_THROW_ON_ERROR);
echo (new mini_mustache(dirname(__DIR__, 3) . '/moodle-plugin/templates'))->render_name($request['name'], [$request['context']]);
