// Carries the authorization response from the URL fragment, which the
// browser never sends to a server, to the server: same-origin, once, and
// without leaving the token in the address bar or the history.
//
// With response_mode form_post the server posted the response itself, and
// this page is the answer to that POST: the answer is in the page (#answer)
// and only the last step, going back where the login started, is left.
//
// In session.js's hidden frame (a renewal), the page does not go anywhere:
// it tells the page that framed it, same origin only, how the renewal went.
(function () {
  "use strict";
  var status = document.getElementById("status");
  status.textContent = "Finishing your sign-in. This page forwards you in a moment.";
  var fragment = location.hash.slice(1);
  // Wipe the token from the address bar and this history entry first, so it
  // is gone even if the POST below fails.
  history.replaceState(null, "", location.pathname);

  // What the start page kept in this tab for this login: the path it
  // comes back to and the URL's fragment.
  function kept(state) {
    try {
      var key = "implicit_grant_login:" + state;
      var saved = JSON.parse(sessionStorage.getItem(key) || "null");
      sessionStorage.removeItem(key);
      if (saved && typeof saved.path === "string" && typeof saved.hash === "string") {
        return saved;
      }
    } catch (e) { /* storage disabled or garbled: nothing kept */ }
    return null;
  }
  // Only a same-origin path: "/x", never "//host" or "/\host".
  function samePath(p) {
    return /^\/(?![\/\\])[^\s\\]*$/.test(p);
  }

  function fail(text) {
    if (framed) {
      tellParent({ error: "failed" });
      return;
    }
    status.textContent = text;
    document.getElementById("retry").hidden = false;
  }
  var framed = window.parent !== window;
  function tellParent(answer) {
    var renewed = !answer.error && !answer.relogin && typeof answer.location === "string";
    window.parent.postMessage({
      implicit_grant: renewed ? "renewed" : "login_required",
      login_url: answer.relogin && typeof answer.location === "string" ? answer.location : null
    }, location.origin);
  }

  // Goes where the server's answer says, with what this tab kept.
  function go(answer, state) {
    if (framed) {
      tellParent(answer);
      return;
    }
    if (typeof answer.location !== "string" || !samePath(answer.location)) {
      throw new Error("unexpected answer");
    }
    var saved = kept(state);
    var target = answer.location;
    if (answer.resume && saved && samePath(saved.path)) {
      target = saved.path; // too long for the state cookie: this tab kept it
    }
    var hash = saved && /^#[^\s]*$/.test(saved.hash) ? saved.hash : "";
    if (answer.error && hash) {
      // An error page: its "Try again" leads back where the login began,
      // so it gets the URL's fragment too.
      var page = new URL(target, location.origin);
      var back = page.searchParams.get("return_to") || "/";
      if (back === saved.path) {
        page.searchParams.set("return_to", back + hash);
        target = page.pathname + page.search;
      }
      hash = "";
    }
    location.replace(target + (saved && (saved.path === target || answer.relogin) ? hash : ""));
  }

  var posted = document.getElementById("answer");
  if (posted) {
    try {
      var answer = JSON.parse(posted.getAttribute("data-answer"));
      go(answer, answer.state);
    } catch (e) {
      fail("Signing in failed: the server gave an unexpected answer.");
    }
    return;
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
    headers: framed ?
      { "Content-Type": "application/x-www-form-urlencoded", "X-Implicit-Grant-Frame": "1" } :
      { "Content-Type": "application/x-www-form-urlencoded" },
    body: fragment
  }).then(function (resp) {
    return resp.json();
  }).then(function (answer) {
    go(answer, new URLSearchParams(fragment).get("state"));
  }).catch(function () {
    fail("Signing in failed: the server could not be reached or gave an unexpected answer.");
  });
})();
