// The /agent page: every <time data-agent-clock> shows in the agent's own clock (the browser's time zone),
// after the first render and after each htmx swap. Without script the server's UTC text stays.
(function () {
  "use strict";
  var format = new Intl.DateTimeFormat(undefined, {
    weekday: "short", day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit"
  });
  function localise(root) {
    var nodes = (root || document).querySelectorAll("time[data-agent-clock]");
    for (var i = 0; i < nodes.length; i++) {
      var when = new Date(nodes[i].getAttribute("datetime"));
      if (!isNaN(when.getTime())) {
        nodes[i].textContent = format.format(when);
        nodes[i].setAttribute("data-localised", "1");
      }
    }
  }
  document.addEventListener("DOMContentLoaded", function () { localise(document); });
  document.addEventListener("htmx:afterSwap", function (event) { localise(event.target); });
})();
