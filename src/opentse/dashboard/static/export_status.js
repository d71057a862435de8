/* The export page while its export runs or is verified: ask the status every second
   and change only what changed (the state, the status line: a live region that a
   screen reader reads out); once nothing changes any more, take the result part
   (download button, verification report) from the page anew. The page is never
   reloaded, so keyboard focus and reading position stay where the user left them.
   Without JavaScript the page has a link to reload it by hand. */
(function () {
  "use strict";
  var line = document.getElementById("export-status");
  if (!line || !line.dataset.poll) {
    return;
  }
  var url = line.dataset.poll;
  var last = ((document.getElementById("export-state") || {}).dataset || {}).state;
  var focusedIn = function (node) {
    return node && node.contains(document.activeElement);
  };
  var removeUnlessFocused = function (id) {
    var node = document.getElementById(id);
    if (node && !focusedIn(node)) {
      node.remove();
    }
  };

  /* Bring `box` to the children of `fresh`: keep a child that did not change (it may
     hold the focus), add the new ones in their place, drop the old ones. */
  var merge = function (box, fresh) {
    var old = Array.prototype.slice.call(box.children);
    var byHtml = new Map();
    old.forEach(function (child) { byHtml.set(child.outerHTML, child); });
    var wanted = Array.prototype.map.call(fresh.children, function (child) {
      var same = byHtml.get(child.outerHTML);
      byHtml.delete(child.outerHTML);
      return same || document.importNode(child, true);
    });
    old.forEach(function (child) {
      if (wanted.indexOf(child) < 0 && !focusedIn(child)) {
        child.remove();
      }
    });
    var next = null;
    for (var i = wanted.length - 1; i >= 0; i--) {
      if (wanted[i].parentNode !== box) {
        box.insertBefore(wanted[i], next);
      }
      next = wanted[i];
    }
  };

  /* `state` the API's name (the class, the data attribute), `text` as shown in the
     page's language */
  var setState = function (state, text) {
    var shown = document.getElementById("export-state");
    if (shown && shown.dataset.state !== state) {
      shown.dataset.state = state;
      shown.textContent = text || state;
      shown.className = "state state-" + state.toLowerCase();
    }
    var bar = document.getElementById("progress");
    if (bar && state === "WORKING") {
      bar.max = 2;
      bar.value = 1;
    }
  };

  var refresh = function (done) {
    return fetch(window.location.pathname + window.location.search, {
      credentials: "same-origin", cache: "no-store"
    }).then(function (response) {
      return response.ok ? response.text() : null;
    }).then(function (html) {
      if (html === null) {
        return;
      }
      var page = new DOMParser().parseFromString(html, "text/html");
      var ended = page.getElementById("export-finished");
      var here = document.getElementById("export-finished");
      if (ended && here) {
        here.textContent = ended.textContent;
      }
      var fresh = page.getElementById("export-result");
      var box = document.getElementById("export-result");
      if (fresh && box) {
        merge(box, fresh);
      }
      if (done) {
        removeUnlessFocused("export-progress");
        removeUnlessFocused("export-reload");
      }
    }).catch(function () {
      /* the next status, or the link, brings the result */
    });
  };

  var ask = function () {
    fetch(url, { credentials: "same-origin", cache: "no-store",
                 headers: { Accept: "application/json" } })
      .then(function (response) {
        var type = response.headers.get("content-type") || "";
        /* a session that ran out answers with the login page: the link stays */
        return response.ok && type.indexOf("application/json") === 0 ? response.json() : null;
      })
      .then(function (status) {
        if (status === null) {
          return;
        }
        var changed = status.state !== last;
        last = status.state;
        setState(status.state, status.state_text);
        if (line.textContent !== status.message) {
          line.textContent = status.message;
        }
        line.classList.toggle("alert", Boolean(status.alert));
        if (status.done) {
          return refresh(true);
        }
        if (changed) {
          refresh(false); /* COMPLETED: its download button, while the check runs */
        }
        if (status.state !== "PENDING" && status.state !== "WORKING") {
          removeUnlessFocused("export-progress");
        }
        window.setTimeout(ask, 1000);
      })
      .catch(function () {
        window.setTimeout(ask, 5000); /* the server restarting: try again, slower */
      });
  };
  window.setTimeout(ask, 1000);
})();
