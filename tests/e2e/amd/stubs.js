// FIXTURES, not Moodle: stand-ins of Moodle's core AMD modules that the plugin's module requires,
// for the browser test without Moodle (tests/e2e/amd_browser.py). tool_delivery/progress requires
// none of them today (it uses fetch and the page's own markup): a module that starts requiring one
// (core/ajax, core/str, core/notification…) fails the test with the loader's "no module" error
// until its stub is added here, doing in the page what the test needs of it.
define('core/config', [], function() {
    return {wwwroot: window.location.origin, sesskey: 'fixture-sesskey'};
});
