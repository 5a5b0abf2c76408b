// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var field = document.getElementById(button.getAttribute("data-copy"));
    if (!field) return;
    var done = function () { button.textContent = "Copied"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done, function () { field.select(); });
    } else {
      field.select();
      try { document.execCommand("copy"); done(); } catch (e) { /* the text stays selected */ }
    }
  });

  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) event.preventDefault();
  });

  document.addEventListener("DOMContentLoaded", function () {
    var highlighted = document.querySelector(".plan.highlight");
    if (highlighted) highlighted.scrollIntoView({ block: "center" });
    var pending = document.querySelector("[data-poll]");
    if (pending) poll(pending);
  });

  // After Checkout: wait for the subscription webhook, then show the new plan.
  function poll(banner) {
    var url = banner.getAttribute("data-poll");
    var started = Date.now();
    var tick = function () {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (state) {
          if (state && state.has_subscription) {
            window.location.replace("/settings/billing?notice=subscribed");
            return;
          }
          if (Date.now() - started > 30000) {
            var slow = banner.querySelector("[data-slow]");
            if (slow) slow.hidden = false;
          }
          setTimeout(tick, Date.now() - started > 60000 ? 5000 : 1000);
        })
        .catch(function () { setTimeout(tick, 3000); });
    };
    setTimeout(tick, 500);
  }
})();
