// Runs on the page that sends the browser to log in. The server never sees
// the URL's fragment (#/reports/17), which the browser carried across the
// redirect to this page, so this script keeps it for the relay page, in
// this tab's sessionStorage, with the path the login will come back to,
// before leaving for the authorization server.
(function () {
  "use strict";
  var link = document.getElementById("next");
  var next = link.getAttribute("href");
  var returnTo = link.getAttribute("data-return-to");
  if (returnTo && location.hash.length > 1) {
    try {
      sessionStorage.setItem("implicit_grant_fragment", JSON.stringify({
        path: returnTo,
        hash: location.hash
      }));
    } catch (e) { /* storage disabled: log in without the fragment */ }
  }
  location.replace(next);
})();
