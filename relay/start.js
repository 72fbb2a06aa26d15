// Runs on the page that sends the browser to log in. The server never sees
// the URL's fragment (#/reports/17), so this script keeps it for the relay
// page, in this tab's sessionStorage, before leaving for the authorization
// server.
(function () {
  "use strict";
  var next = document.getElementById("next").getAttribute("href");
  if (location.hash.length > 1) {
    try {
      sessionStorage.setItem("implicit_grant_fragment", JSON.stringify({
        path: location.pathname + location.search,
        hash: location.hash
      }));
    } catch (e) { /* storage disabled: log in without the fragment */ }
  }
  location.replace(next);
})();
