// FIXTURES, not Moodle: stand-ins of Moodle's core AMD modules that the plugin's module requires,
// for the browser test without Moodle (Tests/EndToEnd/amd_browser.py). A module that starts requiring
// another one fails the test with the loader's "no module" error until its stub is added here,
// doing in the page what the test needs of it.
define('core/config', [], function() {
    return {wwwroot: window.location.origin, sesskey: 'fixture-sesskey'};
});

// core/str: the string's identifier stands for its text (the test reads it back).
define('core/str', [], function() {
    return {getString: function(key, component) { return Promise.resolve('[' + component + ':' + key + ']'); }};
});

// core/notification: saveCancelPromise as Moodle's resolves on save and rejects on cancel; here its
// dialogue is plain markup the test finds (data-fixture="modal") and clicks.
define('core/notification', [], function() {
    var saveCancelPromise = function(title, question, saveLabel) {
        return Promise.all([title, question, saveLabel]).then(function(texts) {
            return new Promise(function(resolve, reject) {
                var modal = document.createElement('div');
                modal.setAttribute('role', 'dialog');
                modal.dataset.fixture = 'modal';
                [['h2', 'title', texts[0]], ['p', 'question', texts[1]]].forEach(function(part) {
                    var element = document.createElement(part[0]);
                    element.dataset.part = part[1];
                    element.textContent = part[2];
                    modal.appendChild(element);
                });
                [['save', texts[2], resolve], ['cancel', 'Cancel', reject]].forEach(function(action) {
                    var button = document.createElement('button');
                    button.type = 'button';
                    button.dataset.action = action[0];
                    button.textContent = action[1];
                    button.addEventListener('click', function() {
                        modal.remove();
                        action[2]();
                    });
                    modal.appendChild(button);
                });
                document.body.appendChild(modal);
            });
        });
    };
    return {saveCancelPromise: saveCancelPromise};
});

// core/ajax: call() posts the requests as Moodle's does (lib/ajax/service.php with the session key,
// a JSON list of {index, methodname, args}) and settles each promise from the answer: `data` when
// `error` is false, else the `exception` ({errorcode, message}); an answer that is not JSON (the fake's
// maintenance page) rejects with the status text, as jQuery does.
define('core/ajax', ['core/config'], function(config) {
    var call = function(requests) {
        var body = JSON.stringify(requests.map(function(request, index) {
            return {index: index, methodname: request.methodname, args: request.args};
        }));
        var url = config.wwwroot + '/lib/ajax/service.php?sesskey=' + config.sesskey + '&info='
            + requests.map(function(request) { return request.methodname; }).join();
        var answer = fetch(url, {method: 'POST', body: body, headers: {'Content-Type': 'application/json'}})
            .then(function(response) {
                return response.json().catch(function() { return Promise.reject(response.statusText); });
            });
        return requests.map(function(request, index) {
            return answer.then(function(responses) {
                if (responses.error) {
                    return Promise.reject(responses);
                }
                return responses[index].error === false ? responses[index].data : Promise.reject(responses[index].exception);
            });
        });
    };
    return {call: call};
});

// core/templates: the page's own Mustache templates rendered by the fake (Tests/EndToEnd/amd/render.php,
// the small renderer of Tests/PluginTests/check_templates.php), and Moodle's node helpers.
define('core/templates', [], function() {
    var nodes = function(html) {
        var template = document.createElement('template');
        template.innerHTML = html.trim();
        return Array.prototype.slice.call(template.content.childNodes);
    };
    var exported = {
        renderForPromise: function(name, context) {
            return fetch('/fixture/render', {method: 'POST', body: JSON.stringify({name: name, context: context})})
                .then(function(response) {
                    return response.ok ? response.text() : Promise.reject(new Error('render ' + name + ': ' + response.status));
                })
                .then(function(html) { return {html: html, js: ''}; });
        },
        replaceNode: function(element, html) {
            var fresh = nodes(html);
            element.replaceWith.apply(element, fresh);
            return fresh;
        },
        replaceNodeContents: function(element, html) {
            var fresh = nodes(html);
            element.replaceChildren.apply(element, fresh);
            return fresh;
        },
        appendNodeContents: function(element, html) {
            var fresh = nodes(html);
            element.append.apply(element, fresh);
            return fresh;
        }
    };
    // As Moodle's build of an ES module with a default export.
    return {__esModule: true, default: exported};
});
