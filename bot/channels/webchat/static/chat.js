/* Web chat: only makes the plain forms feel like a chat (everything works without it).
   Posts a form in the background, shows the resident's words at once with a "..." bubble,
   swaps in the page the server answers (the same post/redirect/get), and asks the browser
   for the location where the question takes one. */
(function () {
  "use strict";
  function scrollEnd() {
    var note = document.querySelector(".note.secret, .note.error");
    if (note) { note.scrollIntoView({block: "start"}); return; }  /* a ticket's secret: shown whole */
    var end = document.getElementById("end");
    if (end) { end.scrollIntoView({block: "end"}); }
  }
  function bubble(thread, cls, text) {
    var div = document.createElement("div");
    div.className = "msg " + cls;
    var p = document.createElement("p");
    p.className = "text";
    p.textContent = text;
    div.appendChild(p);
    thread.appendChild(div);
    return div;
  }
  function said(form, submitter) {
    if (submitter && submitter.name === "choice") { return submitter.textContent; }
    if (form.querySelector("input[type=file]")) { return "\uD83D\uDCF7"; }
    if (form.elements.lat && form.elements.lat.value) { return "\uD83D\uDCCD"; }
    if (submitter && submitter.name === "text") { return submitter.value; }
    var text = form.elements.text;
    return text ? text.value : "";
  }
  function tooBig(form) {
    /* a photo over the limit is refused here, before it costs the resident's data plan */
    var input = form.querySelector("input[type=file]");
    var file = input && input.files && input.files[0];
    if (!file || !(file.size > Number(input.dataset.max))) { return false; }
    var old = form.querySelector(".note.error");
    if (old) { old.remove(); }
    var note = document.createElement("div");
    note.className = "note error";
    note.setAttribute("role", "alert");
    note.textContent = input.dataset.tooBig;
    form.appendChild(note);
    input.value = "";
    return true;
  }
  function post(form, submitter) {
    if (tooBig(form)) { return; }
    var data = new FormData(form);
    if (submitter && submitter.name) { data.append(submitter.name, submitter.value); }
    var thread = document.querySelector(".thread");
    var words = said(form, submitter);
    if (thread && words) { bubble(thread, "me", words); bubble(thread, "bot wait", "\u2026"); scrollEnd(); }
    Array.prototype.forEach.call(document.querySelectorAll("form[data-chat] button"), function (b) { b.disabled = true; });
    fetch(form.action, {method: "POST", body: data, credentials: "same-origin"})
      .then(function (r) {
        /* the address the plain post ends at (/chat): a reload shows the thread, not a QR code's
           /chat/<service> offering its survey again */
        if (r.redirected && window.history.replaceState) { window.history.replaceState(null, "", r.url); }
        return r.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("main");
        if (fresh) { document.getElementById("main").replaceWith(fresh); }
        wire();
        scrollEnd();
        var box = document.getElementById("text");
        if (box) { box.focus(); }
      })
      .catch(function () { form.submit(); });
  }
  function wire() {
    Array.prototype.forEach.call(document.querySelectorAll("form[data-chat]"), function (form) {
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        post(form, ev.submitter);
      });
    });
    var box = document.getElementById("text");
    if (box) {
      box.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); if (box.value.trim()) { post(box.form, null); } }
      });
    }
    var geo = document.querySelector("form[data-geo]");
    if (geo && navigator.geolocation) {
      geo.hidden = false;
      geo.querySelector("[data-geo-button]").addEventListener("click", function () {
        var status = geo.querySelector("[data-geo-status]");
        status.textContent = "\u2026";
        navigator.geolocation.getCurrentPosition(function (pos) {
          geo.elements.lat.value = pos.coords.latitude.toFixed(6);
          geo.elements.lon.value = pos.coords.longitude.toFixed(6);
          post(geo, null);
        }, function () { status.textContent = status.dataset.failed || "\u2715"; },  /* refused or unknown: say what to do */
        {enableHighAccuracy: true, timeout: 15000});
      });
    }
  }
  document.addEventListener("DOMContentLoaded", function () { wire(); scrollEnd(); });
}());
