// session.js: keeps a long-lived page's session alive. Include it with
// <script src="/oauth/session.js"></script>. Shortly before the session
// ends it renews it in a hidden same-origin frame (prompt=none: no dialog),
// and it tells the page what happened with DOM events on window:
//   implicit_grant:renewed          the session was renewed
//   implicit_grant:login_required   it could not be (detail.login_url: where to log in)
// When the site sets require_header, the page's same-origin fetch() calls
// carry that header from then on (the site's CSRF defence).
(function () {
  "use strict";
  var self = document.currentScript;
  var infoURL = self.src.replace(/\.js(?:[?#].*)?$/, ""); // the session path, beside this script
  var timer = null, frame = null, giveUp = null, renewURL = null;
  var plainFetch = window.fetch.bind(window);
  var required = null; // require_header, once the first check has said
  var firstCheck = null;

  function sameOrigin(input) {
    var u = new URL(input instanceof Request ? input.url : String(input), location.href);
    return u.origin === location.origin;
  }
  window.fetch = function (input, init) {
    return firstCheck.then(function () {
      if (required && sameOrigin(input)) {
        init = Object.assign({}, init);
        var headers = new Headers(init.headers || (input instanceof Request ? input.headers : undefined));
        if (!headers.has(required.name)) headers.set(required.name, required.value);
        init.headers = headers;
      }
      return plainFetch(input, init);
    });
  };

  function emit(name, detail) {
    window.dispatchEvent(new CustomEvent("implicit_grant:" + name, { detail: detail || {} }));
  }
  function schedule(ms) {
    clearTimeout(timer);
    timer = setTimeout(renew, Math.max(ms, 1000));
  }
  // Asks the server how long the session has, and schedules the renewal:
  // renew_before ahead (60 s when the site sets none), never more than
  // half of what is left, so a short session is not renewed in a loop.
  function check() {
    return plainFetch(infoURL, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        required = s.require_header || null;
        if (!s.authenticated) {
          emit("login_required", { login_url: s.login_url });
          return;
        }
        renewURL = s.renew_url;
        var left = Date.parse(s.expires_at) - Date.now();
        var lead = Math.min((s.renew_before || 60) * 1000, left / 2);
        schedule(left - lead);
      })
      .catch(function () { schedule(30000); }); // the server could not be asked: later
  }
  function finish(message) {
    clearTimeout(giveUp);
    if (frame) {
      frame.remove();
      frame = null;
    }
    if (message.implicit_grant === "renewed") {
      emit("renewed");
      check();
    } else {
      emit("login_required", { login_url: message.login_url || null });
    }
  }
  function renew() {
    if (frame || !renewURL) return;
    frame = document.createElement("iframe");
    frame.hidden = true;
    frame.title = "session renewal";
    frame.src = renewURL;
    (document.body || document.documentElement).appendChild(frame);
    giveUp = setTimeout(function () { finish({ implicit_grant: "login_required" }); }, 20000);
  }
  window.addEventListener("message", function (e) {
    if (!frame || e.source !== frame.contentWindow || e.origin !== location.origin ||
        !e.data || typeof e.data.implicit_grant !== "string") {
      return;
    }
    finish(e.data);
  });
  firstCheck = check();
})();
