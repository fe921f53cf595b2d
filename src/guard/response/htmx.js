// concurrency-guard for htmx: shows the guard's conflicts and refusals where
// the submitted form was, keeps a page's tokens current after its own saves,
// and takes a conflict's alert and marks off a form whose save then passed. Plain JavaScript, no inline code (CSP-safe); listens to htmx 2
// (htmx:beforeSwap, htmx:afterRequest) and htmx 4 (htmx:after:request)
// events and does nothing on pages without htmx.
(function () {
  "use strict";
  var me = document.currentScript;
  if (window.__concurrencyGuardHtmx) return;
  window.__concurrencyGuardHtmx = true;
  var FIELD = (me && me.getAttribute("data-field")) || "_concurrency_token";
  var HEADER = "x-concurrency-token";

  // The token a request carried: its header, else its form field.
  function sent(headers, body) {
    if (headers) {
      for (var k in headers) {
        if (k.toLowerCase() === HEADER) return String(headers[k]);
      }
    }
    if (body && typeof body.get === "function") {
      var v = body.get(FIELD);
      if (typeof v === "string") return v;
    }
    return null;
  }

  // After a successful write, every place on the page that held the token
  // the request carried gets the fresh one (a form's hidden input, an
  // element's hx-headers, the early warning's script).
  function refresh(old, fresh) {
    if (!old || !fresh || old === fresh || !/^[A-Za-z0-9_-]+$/.test(fresh)) return;
    var inputs = document.querySelectorAll("input[type=hidden]");
    for (var i = 0; i < inputs.length; i++) {
      if (inputs[i].value === old) inputs[i].value = fresh;
    }
    var attrs = ["hx-headers", "hx-vals", "data-hx-headers", "data-hx-vals", "data-token"];
    for (var a = 0; a < attrs.length; a++) {
      var els = document.querySelectorAll("[" + attrs[a] + "]");
      for (var j = 0; j < els.length; j++) {
        var v = els[j].getAttribute(attrs[a]);
        if (v.indexOf(old) >= 0) els[j].setAttribute(attrs[a], v.split(old).join(fresh));
      }
    }
    // The page now holds a token for the data as saved, while htmx's
    // history snapshot keeps the inputs as first rendered: Back/Forward to
    // it would send the old values with the new token and revert the save.
    // hx-history="false" makes htmx fetch the page again instead.
    document.body.setAttribute("hx-history", "false");
  }

  function ok(status) { return status >= 200 && status < 300; }

  // After a write from a form passed, the guard's marks of an earlier
  // conflict on that form describe a state that is gone: its alert, and on
  // the controls it marked their class, aria-invalid and the alert in
  // aria-describedby. (A GET, such as a dependent select's, changes nothing.)
  var ALERT = "concurrency-conflict-alert", MARK = "concurrency-conflict";
  function settled(elt, method) {
    if (!elt || typeof elt.closest !== "function") return;
    if (!method || String(method).toUpperCase() === "GET") return;
    var form = elt.closest("form");
    if (!form) return;
    var alerts = form.querySelectorAll("#" + ALERT + ", ." + ALERT);
    for (var i = 0; i < alerts.length; i++) alerts[i].remove();
    var marked = form.querySelectorAll("." + MARK);
    for (var j = 0; j < marked.length; j++) {
      var el = marked[j];
      el.classList.remove(MARK);
      if (!el.getAttribute("class")) el.removeAttribute("class");
      el.removeAttribute("aria-invalid");
      var described = (el.getAttribute("aria-describedby") || "").split(/\s+/)
        .filter(function (id) { return id && id !== ALERT; }).join(" ");
      if (described) el.setAttribute("aria-describedby", described);
      else el.removeAttribute("aria-describedby");
    }
  }

  // htmx 2: a 4xx is not swapped by default; the guard's answers are (into
  // the target its HX-Retarget / HX-Reswap headers name: the form).
  document.addEventListener("htmx:beforeSwap", function (e) {
    var xhr = e.detail && e.detail.xhr;
    if (xhr && xhr.getResponseHeader("x-concurrency-guard")) {
      e.detail.shouldSwap = true;
    }
  });
  document.addEventListener("htmx:afterRequest", function (e) {
    var d = e.detail, xhr = d && d.xhr;
    if (!xhr || xhr.__concurrencyGuardDone || !ok(xhr.status)) return;
    xhr.__concurrencyGuardDone = true;
    var c = d.requestConfig || {};
    refresh(sent(c.headers, c.formData), xhr.getResponseHeader(HEADER));
    settled(d.elt, c.verb);
  });
  // htmx 4: 4xx answers are swapped by default; only the fresh token.
  document.addEventListener("htmx:after:request", function (e) {
    var ctx = e.detail && e.detail.ctx;
    if (!ctx || !ctx.response || !ok(ctx.response.status)) return;
    var req = ctx.request || {};
    refresh(sent(req.headers, req.body), ctx.response.headers.get(HEADER));
    settled(ctx.sourceElement, req.method);
  });
})();
