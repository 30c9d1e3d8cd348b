// A FIXTURE, not Moodle: the smallest AMD loader that runs the plugin's built module
// (moodle-plugin/amd/build/*.min.js) in a browser without Moodle (CI has no Moodle). Moodle's own
// loader is RequireJS; this one knows what the built module asks for: `define(name, deps,
// factory)` with the "exports" dependency, and stubs of Moodle's core modules registered with
// `define` by the page (Tests/EndToEnd/amd/stubs.js). A dependency nobody defined is an error thrown
// at once (the browser test fails on it), never a silent wait.
(function() {
    'use strict';
    var factories = {};
    var modules = {};
    var resolve = function(name) {
        if (Object.prototype.hasOwnProperty.call(modules, name)) {
            return modules[name];
        }
        if (!Object.prototype.hasOwnProperty.call(factories, name)) {
            throw new Error('fixture AMD loader: no module "' + name + '" (is a stub missing in Tests/EndToEnd/amd/stubs.js?)');
        }
        var entry = factories[name];
        var exported = {};
        var args = entry.deps.map(function(dep) {
            return dep === 'exports' ? exported : resolve(dep);
        });
        var result = entry.factory.apply(null, args);
        modules[name] = result === undefined ? exported : result;
        return modules[name];
    };
    window.define = function(name, deps, factory) {
        if (typeof name !== 'string' || !Array.isArray(deps) || typeof factory !== 'function') {
            throw new Error('fixture AMD loader: only define("name", [deps], factory) is supported');
        }
        factories[name] = {deps: deps, factory: factory};
    };
    window.define.amd = {};
    window.require = function(names, callback) {
        var loaded = names.map(resolve);
        if (callback) {
            callback.apply(null, loaded);
        }
    };
})();
