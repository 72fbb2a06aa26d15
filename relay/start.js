// Runs on the page that sends the browser to log in. It keeps, in this
// tab's sessionStorage and under this login's state, the path the login
// comes back to (the state cookie holds only short ones) and the URL's
// fragment (#/reports/17), which the browser carried across the redirect
// to this page and no server ever sees; the relay page takes them back.
// Then it leaves for the authorization server.
(function () {
  "use strict";
  var link = document.getElementById("next");
  var next = link.getAttribute("href");
  var returnTo = link.getAttribute("data-return-to");
  try {
    var state = new URL(next).searchParams.get("state");
    var now = Date.now();
    // Logins abandoned in this tab leave entries behind: drop old ones.
    for (var i = sessionStorage.length - 1; i >= 0; i--) {
      var key = sessionStorage.key(i);
      if (key && key.indexOf("implicit_grant_login:") === 0) {
        var old = JSON.parse(sessionStorage.getItem(key) || "null");
        if (!old || now - old.t > 3600000) sessionStorage.removeItem(key);
      }
    }
    if (state && returnTo) {
      sessionStorage.setItem("implicit_grant_login:" + state, JSON.stringify({
        path: returnTo,
        hash: link.getAttribute("data-keep-fragment") === "false" ? "" : location.hash,
        t: now
      }));
    }
  } catch (e) { /* storage disabled: the login still works, without what it kept */ }
  location.replace(next);
})();
