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
