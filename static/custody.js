/* Custody: small progressive enhancements, no framework.
   1. Live tier preview on the change-request form (POST /api/v1/products/<key>/risk-preview).
   2. Signing dialogs: show the meaning statement first, then ask for username and password. */
(function () {
  "use strict";

  function cookie(name) {
    var match = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return match ? decodeURIComponent(match[1]) : "";
  }

  function csrfToken() {
    // The cookie is the source; the hidden form field is a fallback when cookies are read-only to scripts.
    var field = document.querySelector("input[name=csrfmiddlewaretoken]");
    return cookie("csrftoken") || (field ? field.value : "");
  }

  /* ---------- 1. live tier preview ---------- */

  function setupRiskPreview(root) {
    var url = root.getAttribute("data-preview-url");
    var selects = root.querySelectorAll("select[data-risk-question]");
    var box = root.querySelector("[data-risk-preview]");
    var tier = box.querySelector("[data-tier]");
    var score = box.querySelector("[data-score]");
    var demand = box.querySelector("[data-demand]");
    var production = box.querySelector("[data-production]");
    var problems = box.querySelector("[data-problems]");
    var sequence = 0;

    function answers() {
      var result = {};
      selects.forEach(function (select) {
        if (select.value) result[select.getAttribute("data-risk-question")] = select.value;
      });
      return result;
    }

    function show(data) {
      problems.textContent = "";
      if (data.complete) {
        tier.textContent = data.tier.charAt(0).toUpperCase() + data.tier.slice(1);
        tier.className = "badge badge-tier-" + data.tier;
        score.textContent = "score " + data.score + (data.policy_version ? " · policy v" + data.policy_version : "");
        demand.textContent = "Change approval: " + data.change_approval + ".";
        var roles = data.production_approval_roles || [];
        production.textContent = roles.length ? "Production release will need approval from: " + roles.join(", ") + "." : "";
      } else {
        tier.textContent = "not computed yet";
        tier.className = "badge badge-tier-none";
        score.textContent = "";
        demand.textContent = "Answer every question to see the tier and what it will demand.";
        production.textContent = "";
        var unanswered = selects.length - Object.keys(answers()).length;
        if (unanswered > 0) {
          var li = document.createElement("li");
          li.textContent = unanswered + " question" + (unanswered === 1 ? "" : "s") + " not answered yet.";
          problems.appendChild(li);
        } else {
          (data.problems || []).forEach(function (text) {
            var item = document.createElement("li");
            item.textContent = text;
            problems.appendChild(item);
          });
        }
      }
      box.setAttribute("data-state", data.complete ? "complete" : "incomplete");
    }

    function refresh() {
      var mine = ++sequence;
      box.setAttribute("aria-busy", "true");
      fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify({ answers: answers() })
      })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (data) { if (mine === sequence) show(data); })
        .catch(function () {
          if (mine !== sequence) return;
          demand.textContent = "The preview is unavailable right now; the tier is still computed when you save.";
        })
        .finally(function () { if (mine === sequence) box.removeAttribute("aria-busy"); });
    }

    selects.forEach(function (select) { select.addEventListener("change", refresh); });
    refresh();
  }

  /* ---------- 2. signing dialogs ---------- */

  function setupSignDialog(dialog) {
    var statement = dialog.querySelector("[data-sign-statement]");
    var steps = dialog.querySelectorAll("[data-sign-step]");
    var radios = dialog.querySelectorAll("input[name=meaning]");

    function step(number) {
      steps.forEach(function (section) { section.hidden = section.getAttribute("data-sign-step") !== String(number); });
      var first = dialog.querySelector("[data-sign-step='" + number + "'] input, [data-sign-step='" + number + "'] button");
      if (first) first.focus();
    }

    radios.forEach(function (radio) {
      radio.addEventListener("change", function () {
        statement.textContent = radio.getAttribute("data-statement");
        var comment = dialog.querySelector("textarea[name=comment]");
        if (comment) comment.required = radio.value === "rejected";
      });
    });
    dialog.querySelector("[data-sign-continue]").addEventListener("click", function () { step(2); });
    dialog.querySelectorAll("[data-close-dialog]").forEach(function (button) {
      button.addEventListener("click", function () { dialog.close(); });
    });
    dialog.addEventListener("close", function () {
      // Never keep a typed password around after the dialog closes.
      var password = dialog.querySelector("input[type=password]");
      if (password) password.value = "";
      step(1);
    });
    dialog.querySelector("form").addEventListener("submit", function () {
      var submit = dialog.querySelector("[data-sign-submit]");
      if (submit) { submit.disabled = true; submit.textContent = "Signing…"; }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-risk-form]").forEach(setupRiskPreview);
    document.querySelectorAll("dialog[data-sign-dialog]").forEach(setupSignDialog);
    document.querySelectorAll("[data-open-dialog]").forEach(function (button) {
      button.addEventListener("click", function () {
        var dialog = document.getElementById(button.getAttribute("data-open-dialog"));
        if (dialog && !dialog.open) dialog.showModal();
      });
    });
  });
})();
