import Crypto
import DeliveryCore

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Short-lived bearer tokens for the emergency console, issued to a Moodle administrator through
/// a signed request before a delivery, while Moodle can still serve pages.
///
/// Only the SHA-256 of each token is kept, in memory; a token names the administrator it was
/// issued to (every rollback from the console is audited under that name) and expires.
final class ConsoleTokens: Sendable {
    struct Entry {
        var actor: Actor
        var expiresAt: Date
    }

    /// The longest lifetime a token may ask for, and the default.
    static let maximumLifetime: Double = 4 * 3600
    static let defaultLifetime: Double = 2 * 3600
    /// How many live tokens are kept (the oldest go first).
    static let capacity = 32

    private let entries = Locked([String: Entry]())

    /// Issues a token for an administrator.
    func issue(for actor: Actor, lifetime: Double, now: Date = Date()) -> (token: String, expiresAt: Date) {
        let token = hexString(System.randomBytes(32))
        let expiresAt = now.addingTimeInterval(max(60, min(lifetime, Self.maximumLifetime)))
        entries.withLock { entries in
            entries = entries.filter { $0.value.expiresAt > now }
            if entries.count >= Self.capacity,
                let oldest = entries.min(by: { $0.value.expiresAt < $1.value.expiresAt })?.key
            {
                entries[oldest] = nil
            }
            entries[Self.digest(token)] = Entry(actor: actor, expiresAt: expiresAt)
        }
        return (token, expiresAt)
    }

    /// The administrator a live token was issued to, or nil.
    func check(_ token: String?, now: Date = Date()) -> Entry? {
        guard let token, token.utf8.count == 64,
            token.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) })
        else { return nil }
        let key = Self.digest(token)
        return entries.withLock { entries in
            guard let entry = entries[key] else { return nil }
            if entry.expiresAt <= now {
                entries[key] = nil
                return nil
            }
            return entry
        }
    }

    static func digest(_ token: String) -> String {
        hexString(SHA256.hash(data: Array(token.utf8)))
    }
}

/// What the console's page reads: the site's status and the latest job's progress.
struct ConsoleStatusView: Encodable {
    var site: StatusView
    var job: JobView?
    var administrator: String
    var expiresAt: Date
}

extension API {
    /// The path prefix of the console, as the web server passes it (see deploy/nginx-console.conf).
    static let consolePrefix = "/delivery-console"

    /// `POST /console-tokens` (signed): a token for the emergency console.
    func issueConsoleToken(_ request: APIRequest) throws(APIError) -> Response {
        struct Body: Decodable { var lifetimeSeconds: Double? }
        var lifetime = ConsoleTokens.defaultLifetime
        if !request.body.isEmpty {
            guard let body = try? JSONCoding.decode(Body.self, from: request.body) else {
                throw APIError.badRequest("the body is not a JSON object of the expected shape")
            }
            lifetime = body.lifetimeSeconds ?? lifetime
        }
        let issued = consoleTokens.issue(for: request.actor, lifetime: lifetime)
        logger.info(
            "console token issued",
            metadata: ["actor": "\(request.actor.name)", "moodleUserId": "\(request.actor.moodleUserId ?? -1)"])
        struct Issued: Encodable {
            var token: String
            var expiresAt: Date
            var path: String
        }
        return .json(201, Issued(token: issued.token, expiresAt: issued.expiresAt, path: Self.consolePrefix + "/"))
    }

    /// The console's routes, reached through the web server without a signature:
    /// `GET /delivery-console/` (the page; it holds no data), `GET /delivery-console/status` and
    /// `POST /delivery-console/rollback` (`?confirmDatabaseRestore=1` confirms a rollback that
    /// restores the database snapshot once the site was open; the code of the administrator's
    /// authenticator then comes in `X-Delivery-Second-Factor`), both with the token in
    /// `X-Delivery-Console-Token`.
    func console(
        method: String, path: String, token: String?, query: [String: String], secondFactor: String? = nil
    ) -> Response {
        let rest = String(path.dropFirst(Self.consolePrefix.count))
        do throws(APIError) {
            switch (method, rest) {
            case ("GET", ""), ("GET", "/"):
                return Response.html(
                    ConsolePage.html(siteConfiguration: siteConfiguration), scriptHash: ConsolePage.scriptHash)
            case ("GET", "/status"):
                guard let entry = consoleTokens.check(token) else { throw Self.consoleRefused }
                let status = try consoleEngineCall { () throws(DeliveryError) in try engine.status() }
                let offset = try consoleOffset(query["offset"])
                let latest = jobs.latest
                return .json(
                    200,
                    ConsoleStatusView(
                        site: StatusView(status, job: jobs.running),
                        job: latest?.view(offset: offset, maxLines: limits.maxLinesPerResponse),
                        administrator: entry.actor.name, expiresAt: entry.expiresAt))
            case ("POST", "/rollback"):
                guard let entry = consoleTokens.check(token) else { throw Self.consoleRefused }
                let actor = Actor(
                    name: entry.actor.name, source: "console", moodleUserId: entry.actor.moodleUserId,
                    peerUid: entry.actor.peerUid, claimed: true)
                let request: OperationRequest
                do {
                    request = try OperationRequest(
                        .rollback, actor: actor, confirmDatabaseRestore: query["confirmDatabaseRestore"] == "1",
                        secondFactorCode: secondFactor)
                } catch {
                    throw APIError(error)
                }
                return try startJob(request)
            case (_, "/status"), (_, "/rollback"), (_, ""), (_, "/"):
                throw APIError(.methodNotAllowed, "\(Self.printable(method)) is not allowed here")
            default:
                throw APIError(.notFound, "no such route")
            }
        } catch {
            return .error(error)
        }
    }

    static var consoleRefused: APIError {
        APIError(.unauthenticated, "the console link is missing, wrong or expired: open it again from Moodle")
    }

    private func consoleOffset(_ text: String?) throws(APIError) -> Int {
        guard let text else { return 0 }
        guard text.utf8.count <= 9, !text.isEmpty, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let value = Int(text)
        else {
            throw APIError.badRequest("offset must be a non-negative integer")
        }
        return value
    }

    private func consoleEngineCall<T>(_ body: () throws(DeliveryError) -> T) throws(APIError) -> T {
        do {
            return try body()
        } catch {
            throw APIError(error)
        }
    }
}

extension Response {
    /// An HTML page whose only script is the one with this hash (Content-Security-Policy).
    static func html(_ page: String, scriptHash: String) -> Response {
        Response(
            status: 200, body: Array(page.utf8), contentType: "text/html; charset=utf-8",
            extraHeaders: [
                "Content-Security-Policy":
                    "default-src 'none'; script-src 'sha256-\(scriptHash)'; style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
                "Referrer-Policy": "no-referrer",
                "X-Content-Type-Options": "nosniff",
            ])
    }
}

/// The emergency console: one self-contained page (no external resource) that follows the
/// delivery and offers the emergency rollback while Moodle itself cannot serve pages.
enum ConsolePage {
    static let script = """
        (function () {
          'use strict';
          var params = new URLSearchParams(location.hash.slice(1));
          var token = params.get('token') || sessionStorage.getItem('deliveryConsoleToken') || '';
          if (params.get('token')) {
            sessionStorage.setItem('deliveryConsoleToken', token);
            history.replaceState(null, '', location.pathname);
          }
          var base = location.pathname.replace(/\\/+$/, '');
          var offset = 0;
          var jobId = null;
          var $ = function (id) { return document.getElementById(id); };
          function text(id, value) { $(id).textContent = value; }
          function show(message, bad) {
            text('message', message);
            $('message').className = bad ? 'bad' : '';
          }
          function poll() {
            fetch(base + '/status?offset=' + offset, {headers: {'X-Delivery-Console-Token': token}, cache: 'no-store'})
              .then(function (response) { return response.json().then(function (body) { return [response, body]; }); })
              .then(function (pair) {
                var response = pair[0], body = pair[1];
                if (!response.ok) {
                  show((body.error && body.error.message) || ('Error ' + response.status), true);
                  $('rollback').disabled = true;
                  return;
                }
                var site = body.site.site || {};
                text('phase', site.phase || '?');
                text('served', site.served || '?');
                text('who', body.administrator);
                text('expires', new Date(body.expiresAt).toLocaleString());
                var job = body.job;
                if (job) {
                  if (job.id !== jobId) { jobId = job.id; offset = 0; $('log').textContent = ''; }
                  text('job', job.operation + ' — ' + job.state);
                  (job.lines || []).forEach(function (line) { $('log').textContent += line + '\\n'; });
                  offset += (job.lines || []).length;
                  var steps = job.steps || [];
                  var fraction = steps.length ? steps[steps.length - 1].fraction || 0 : 0;
                  $('bar').style.width = Math.round(fraction * 100) + '%';
                  if (job.result && job.result.message) { show(job.result.message, false); }
                  if (job.error && job.error.message) { show(job.error.message, true); }
                }
                var plan = site.rollback || {};
                text('plan', plan.explanation || '');
                $('confirmbox').hidden = !plan.needsConfirmation;
                $('rollback').disabled = (site.allowed || []).indexOf('rollback') < 0 ||
                  (plan.needsConfirmation && !$('confirm').checked);
              })
              .catch(function () { show('The helper does not answer.', true); })
              .then(function () { setTimeout(poll, 2000); });
          }
          $('confirm').addEventListener('change', function () {
            $('rollback').disabled = !$('confirm').checked;
          });
          // The confirmation is the page's own dialog (modal: the keyboard stays in it, Escape
          // answers no, and no answers by default), never the browser's confirm box.
          var dialog = $('confirmdialog');
          $('rollback').addEventListener('click', function () {
            text('confirmquestion', $('plan').textContent);
            dialog.returnValue = '';
            dialog.showModal();
            $('confirmno').focus();
          });
          $('confirmyes').addEventListener('click', function () { dialog.close('yes'); });
          $('confirmno').addEventListener('click', function () { dialog.close('no'); });
          dialog.addEventListener('close', function () {
            if (dialog.returnValue !== 'yes') { $('rollback').focus(); return; }
            $('rollback').disabled = true;
            var confirmed = !$('confirmbox').hidden && $('confirm').checked;
            var headers = {'X-Delivery-Console-Token': token};
            if (confirmed) { headers['X-Delivery-Second-Factor'] = $('code').value.trim(); }
            $('code').value = '';
            fetch(base + '/rollback' + (confirmed ? '?confirmDatabaseRestore=1' : ''),
                  {method: 'POST', headers: headers})
              .then(function (response) { return response.json(); })
              .then(function (body) { show(body.error ? body.error.message : 'Emergency rollback started.', !!body.error); });
          });
          poll();
        })();
        """

    static let scriptHash: String = {
        Data(SHA256.hash(data: Array(script.utf8))).base64EncodedString()
    }()

    /// The page, its shell commands naming the site's configuration.
    static func html(siteConfiguration: String) -> String {
        let escaped = siteConfiguration.replacing("&", with: "&amp;").replacing("<", with: "&lt;")
            .replacing(">", with: "&gt;").replacing("\"", with: "&quot;")
        return page.replacing("--config CONFIG", with: "--config \(escaped)")
    }

    static let page = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="robots" content="noindex">
        <title>Moodle delivery — emergency console</title>
        <style>
        body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#1d2125}
        h1{font-size:1.4rem}dl{display:grid;grid-template-columns:12rem 1fr;gap:.3rem 1rem}dt{font-weight:600}
        #progress{background:#e9ecef;border-radius:.3rem;height:1rem;margin:1rem 0}#bar{background:#0f6cbf;height:100%;width:0;border-radius:.3rem}
        pre{background:#f8f9fa;border:1px solid #dee2e6;padding:.8rem;max-height:24rem;overflow:auto;white-space:pre-wrap}
        button{background:#ca3120;color:#fff;border:0;border-radius:.3rem;padding:.6rem 1.2rem;font-size:1rem;cursor:pointer}
        button:disabled{background:#adb5bd;cursor:not-allowed}#message{margin:1rem 0;font-weight:600}.bad{color:#ca3120}
        dialog{border:1px solid #dee2e6;border-radius:.3rem;max-width:36rem;padding:1.2rem}dialog::backdrop{background:rgba(0,0,0,.4)}
        button.secondary{background:#6c757d;margin-left:.5rem}button:focus-visible{outline:3px solid #1d2125;outline-offset:2px}
        </style></head><body>
        <h1>Moodle delivery — emergency console</h1>
        <p>This page is served by the delivery helper itself, for when Moodle cannot serve pages (maintenance mode during the upgrade, or broken new code).</p>
        <dl><dt>State</dt><dd id="phase">…</dd><dt>Serving</dt><dd id="served">…</dd>
        <dt>Operation</dt><dd id="job">none</dd><dt>Administrator</dt><dd id="who">…</dd><dt>Link valid until</dt><dd id="expires">…</dd></dl>
        <div id="progress"><div id="bar"></div></div>
        <div id="message"></div>
        <p id="plan"></p>
        <div id="confirmbox" hidden><p><label><input type="checkbox" id="confirm"> I accept that what users wrote since the snapshot is lost.</label></p>
        <p><label>Code of your authenticator app <input id="code" inputmode="numeric" autocomplete="one-time-code" maxlength="6" size="8"></label><br>
        <small>Restoring the database loses what users wrote, so the helper asks for a proof that the web server cannot make: the six-digit code of the app root enrolled you with (<code>deliveryctl admin enrol-totp</code>). Without one, run the rollback from a shell on the server.</small></p></div>
        <p><button id="rollback" type="button" disabled>Emergency rollback</button></p>
        <dialog id="confirmdialog" aria-labelledby="confirmtitle" aria-describedby="confirmquestion">
        <h2 id="confirmtitle">Roll back now?</h2><p id="confirmquestion"></p>
        <p><button id="confirmyes" type="button">Roll back now</button><button id="confirmno" type="button" class="secondary">Cancel</button></p>
        </dialog>
        <pre id="log"></pre>
        <p>From a shell on the server: <code>deliveryctl status --config CONFIG</code>, <code>deliveryctl restore --config CONFIG</code>, <code>deliveryctl rollback --config CONFIG</code> (<code>--restore-database</code> to confirm a database restore).</p>
        <script>\(script)</script>
        </body></html>
        """
}
