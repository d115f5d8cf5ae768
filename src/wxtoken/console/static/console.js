// wxtoken console: small, dependency-free helpers. Every page works without this file;
// it only adds copy buttons, live countdowns, and polling while a sign-in is awaited.
"use strict";

(function () {
  function left(seconds) {
    // The same shape as wxtoken's human_left: "13d 23h", "5h 02m", "4m 09s", "42s".
    var s = Math.floor(Math.abs(seconds));
    var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
    var m = Math.floor((s % 3600) / 60), sec = s % 60;
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    if (d) return d + "d " + h + "h";
    if (h) return h + "h " + pad(m) + "m";
    if (m) return m + "m " + pad(sec) + "s";
    return sec + "s";
  }

  function countdowns() {
    var now = Date.now() / 1000;
    document.querySelectorAll("[data-until]").forEach(function (el) {
      var at = Date.parse(el.getAttribute("data-until")) / 1000;
      if (isNaN(at)) return;
      el.textContent = at >= now ? "in " + left(at - now) : left(now - at) + " ago";
    });
  }

  function say(text) {
    var status = document.getElementById("copy-status");
    if (status) status.textContent = text;
  }

  function copy(button) {
    var target = document.getElementById(button.getAttribute("data-copy"));
    if (!target) return;
    var text = ("value" in target ? target.value : target.textContent).trim();
    var done = function () {
      button.textContent = "Copied";
      button.setAttribute("data-copied", "yes");
      say("Copied to the clipboard.");
      setTimeout(function () { button.textContent = "Copy"; }, 2000);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { say("Copy failed: select the text and copy it by hand."); });
    } else if ("select" in target) {
      target.select();
      if (document.execCommand("copy")) done(); else say("Select the text and copy it by hand.");
    } else {
      var range = document.createRange();
      range.selectNodeContents(target);
      var sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      if (document.execCommand("copy")) done(); else say("Select the text and copy it by hand.");
    }
  }

  function poll(box) {
    // The server renders each stage of a sign-in; this only reloads when the stage changes.
    var url = box.getAttribute("data-poll");
    var ready = box.getAttribute("data-ready") === "yes";
    var tick = function () {
      fetch(url, { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.json(); })
        .then(function (job) {
          if (job.next) { window.location.assign(job.next); return; }
          if (job.done || (job.ready && !ready)) { window.location.reload(); return; }
          setTimeout(tick, 1000);
        })
        .catch(function () { setTimeout(tick, 3000); });
    };
    tick();
  }

  function toggles() {
    // Show a field only while the choice it belongs to is selected.
    var pairs = [["preset-other", "scopes-field"]];
    pairs.forEach(function (p) {
      var radio = document.getElementById(p[0]), field = document.getElementById(p[1]);
      if (!radio || !field) return;
      var update = function () { field.hidden = !radio.checked; };
      document.querySelectorAll("input[name='" + radio.name + "']").forEach(function (r) {
        r.addEventListener("change", update);
      });
      update();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-copy]").forEach(function (b) {
      b.addEventListener("click", function () { copy(b); });
    });
    countdowns();
    setInterval(countdowns, 1000);
    var box = document.querySelector("#signin-status[data-poll]");
    if (box && box.getAttribute("data-done") !== "yes") poll(box);
    toggles();
  });
})();
