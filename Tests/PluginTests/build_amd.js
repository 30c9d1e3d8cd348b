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
 * Makes amd/build/<module>.min.js from amd/src/<module>.js without grunt (not installable here).
 *
 * Moodle's grunt task transpiles an ES module into an AMD define() and minifies it. Our modules
 * have named and default imports only and one kind of export (`export const name =`), so the AMD form is the
 * same code inside define(): each import a dependency whose exports it reads, each export a member
 * of the exports object. It is not minified.
 * Usage: node build_amd.js <plugin dir> [--check]   (--check: fail when a build is not up to date)
 *
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

const fs = require('fs');
const path = require('path');

const pluginDir = process.argv[2];
const check = process.argv.includes('--check');
const component = 'tool_delivery';
let stale = 0;

for (const file of fs.readdirSync(path.join(pluginDir, 'amd', 'src'))) {
    if (!file.endsWith('.js')) {
        continue;
    }
    const name = file.replace(/\.js$/, '');
    const source = fs.readFileSync(path.join(pluginDir, 'amd', 'src', file), 'utf8');
    // Named imports of other AMD modules (`import {a, b} from 'core/x';`) become dependencies of
    // the define() and constants taken from their exports; any other import is refused.
    const dependencies = [];
    const named = source.replace(/^import \{([\w\s,]+)\} from '([\w/]+)';$/gm, (match, names, module) => {
        dependencies.push(module);
        return `const {${names.trim()}} = _dependency${dependencies.length - 1};`;
    });
    // Default imports (`import Templates from 'core/templates';`) as Babel makes them: the module's
    // `default` when it is an ES module (core/templates), else the module itself (core/ajax).
    const withImports = named.replace(/^import (\w+) from '([\w/]+)';$/gm, (match, identifier, module) => {
        dependencies.push(module);
        const dependency = `_dependency${dependencies.length - 1}`;
        return `const ${identifier} = ${dependency} && ${dependency}.__esModule ? ${dependency}.default : ${dependency};`;
    });
    if (/^\s*import\s/m.test(withImports)) {
        throw new Error(`${file}: only named and default imports of modules are supported by this builder`);
    }
    const exported = [];
    const body = withImports.replace(/^export const (\w+) =/gm, (match, identifier) => {
        exported.push(identifier);
        return `const ${identifier} =`;
    });
    const build = `/* Built from amd/src/${file} by Tests/PluginTests/build_amd.js (grunt is not available): */\n`
        + `/* the same code as an AMD module, not minified. */\n`
        + `define("${component}/${name}", ${JSON.stringify(['exports', ...dependencies])}, `
        + `function(${['_exports', ...dependencies.map((module, index) => `_dependency${index}`)].join(', ')}) {\n`
        + `"use strict";\n`
        + `Object.defineProperty(_exports, "__esModule", {value: true});\n`
        + body
        + exported.map((identifier) => `_exports.${identifier} = ${identifier};\n`).join('')
        + `});\n`;
    const target = path.join(pluginDir, 'amd', 'build', `${name}.min.js`);
    if (check) {
        if (!fs.existsSync(target) || fs.readFileSync(target, 'utf8') !== build) {
            console.error(`${target} is not up to date: run node Tests/PluginTests/build_amd.js moodle-plugin`);
            stale += 1;
        }
    } else {
        fs.writeFileSync(target, build);
    }
}
process.exit(stale === 0 ? 0 : 1);
