// Carries the authorization response from the URL fragment, which the
// browser never sends to a server, to the server: same-origin, once, and
// without leaving the token in the address bar or the history.
(function () {
  "use strict";
  var status = document.getElementById("status");
  status.textContent = "Finishing your sign-in. This page forwards you in a moment.";
  var fragment = location.hash.slice(1);
  // Wipe the token from the address bar and this history entry first, so it
  // is gone even if the POST below fails.
  history.replaceState(null, "", location.pathname);

  // The fragment the login started from (kept by the start page in this
  // tab), if the login returns to the same page.
  function savedFragment(path) {
    try {
      var saved = JSON.parse(sessionStorage.getItem("implicit_grant_fragment") || "null");
      sessionStorage.removeItem("implicit_grant_fragment");
      if (saved && saved.path === path && /^#[^\s]*$/.test(saved.hash)) {
        return saved.hash;
      }
    } catch (e) { /* storage disabled or garbled: no fragment */ }
    return "";
  }

  function fail(text) {
    status.textContent = text;
    document.getElementById("retry").hidden = false;
  }
  if (!fragment) {
    fail("No sign-in response arrived with this page. Start again from the page you wanted to open.");
    return;
  }
  fetch(location.pathname, {
    method: "POST",
    credentials: "same-origin",
    cache: "no-store",
    redirect: "error",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: fragment
  }).then(function (resp) {
    return resp.json();
  }).then(function (answer) {
    if (typeof answer.location !== "string" || answer.location.charAt(0) !== "/") {
      throw new Error("unexpected answer");
    }
    location.replace(answer.location + savedFragment(answer.location));
  }).catch(function () {
    fail("Signing in failed: the server could not be reached or gave an unexpected answer.");
  });
})();
