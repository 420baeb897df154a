// Download buttons with progress (issue 7, item 7). A packet or bundle GET answers 200 with the file when a
// rendering of the release as it is now is kept, else 202 with the export's status; we poll
// GET /api/v1/exports/{EXP-n} until it is done, then start the download. Without JavaScript the links still work.
(function () {
  "use strict";
  var POLL_MS = 700;

  function show(item, text, progress) {
    var status = item.querySelector(".export-status");
    var bar = item.querySelector("progress");
    if (status) status.textContent = text;
    if (bar && progress !== null) { bar.hidden = false; bar.value = progress; }
  }

  function getJson(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (r) {
      if (!r.ok) throw new Error("the server answered " + r.status);
      return r.json();
    });
  }

  function poll(item, link, statusUrl) {
    getJson(statusUrl).then(function (exp) {
      if (exp.state === "done") {
        show(item, "Ready (" + exp.id + ", sha256 " + exp.sha256.slice(0, 12) + "…) — downloading", 100);
        link.removeAttribute("aria-busy");
        window.location.assign(exp.download_url);
      } else if (exp.state === "failed") {
        show(item, "Rendering failed: " + exp.error, null);
        link.removeAttribute("aria-busy");
      } else {
        show(item, "Rendering " + exp.id + ": " + exp.progress + "%", exp.progress);
        window.setTimeout(function () { poll(item, link, statusUrl); }, POLL_MS);
      }
    }).catch(function (error) { show(item, "Could not check progress: " + error.message, null); });
  }

  function start(event) {
    var link = event.currentTarget;
    var item = link.closest("li") || link.parentNode;
    event.preventDefault();
    if (link.getAttribute("aria-busy") === "true") return;
    link.setAttribute("aria-busy", "true");
    show(item, "Requesting…", 0);
    var url = link.getAttribute("data-export-url");
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (r) {
      if (r.status === 200) {
        // A kept rendering: let the browser download it as an ordinary file.
        if (r.body && r.body.cancel) r.body.cancel();
        show(item, "Ready — downloading", 100);
        link.removeAttribute("aria-busy");
        window.location.assign(url);
        return;
      }
      if (r.status !== 202) throw new Error("the server answered " + r.status);
      return r.json().then(function (exp) {
        show(item, "Queued " + exp.id + ": " + exp.progress + "%", exp.progress);
        poll(item, link, exp.status_url);
      });
    }).catch(function (error) {
      link.removeAttribute("aria-busy");
      show(item, "Could not request it: " + error.message, null);
    });
  }

  document.querySelectorAll("[data-export-url]").forEach(function (link) { link.addEventListener("click", start); });
})();
