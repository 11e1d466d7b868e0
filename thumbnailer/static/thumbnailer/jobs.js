// Polls the status JSON of every unfinished job on the page and says its state in words; when a
// job finishes, its card is replaced by the server's own rendering of it (GET card_url), so a
// card is only ever built in one place: templates/thumbnailer/_job.html. Without JavaScript the
// results page refreshes itself instead. upload.js hands new jobs to window.thumbnailerJobs.watch.
(function () {
  "use strict";

  var STATE_WORDS = {
    PENDING: "Waiting in the queue",
    STARTED: "Making thumbnails",
    PROGRESS: "Making thumbnails",
    RETRY: "Waiting to try again",
    SUCCESS: "Done",
    FAILURE: "Failed"
  };
  // Most jobs finish in tens of milliseconds: ask early, then back off.
  var FIRST_DELAY_MS = 60;
  var MAX_DELAY_MS = 3000;
  // From this pause on, the status request itself waits for the end (?wait=) for as long as
  // the page would have paused, so a finished job shows at once instead of up to a pause
  // later, and the state in words is still refreshed as often. A server that cannot wait
  // answers at once, and the page then pauses as before.
  var WAIT_FROM_MS = 400;

  function announce(text) {
    var announcer = document.getElementById("jobs-announcer");
    if (announcer) { announcer.textContent = text; }
  }

  function describe(status) {
    var words = STATE_WORDS[status.task_status] || status.task_status;
    if (status.progress && status.progress.total > 1 && status.task_status !== "PENDING") {
      words += " (" + status.progress.current + " of " + status.progress.total + ")";
    }
    return words;
  }

  // Swap in the server's card; it carries everything a finished job shows.
  function replaceWithServerCard(jobElement) {
    return fetch(jobElement.dataset.cardUrl, { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error("card " + response.status); }
        return response.text();
      })
      .then(function (html) {
        var holder = document.createElement("template");
        holder.innerHTML = html.trim();
        var card = holder.content.firstElementChild;
        jobElement.replaceWith(card);
        enableDelete(card);
        return card;
      });
  }

  function poll(jobElement, delay) {
    var waitMs = delay >= WAIT_FROM_MS ? delay : 0;
    var url = jobElement.dataset.statusUrl + (waitMs ? "?wait=" + waitMs / 1000 : "");
    var asked = Date.now();
    fetch(url, { headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      })
      .then(function (answer) {
        var state = jobElement.querySelector(".job-state");
        if (!answer.ok) {
          state.textContent = answer.body.error.message;
          jobElement.dataset.finished = "true";
          return;
        }
        var status = answer.body;
        if (status.task_status === "SUCCESS" || status.task_status === "FAILURE") {
          jobElement.dataset.finished = "true";
          var name = jobElement.querySelector(".job-name").textContent;
          replaceWithServerCard(jobElement).then(function (card) {
            announce(name + ": " + card.querySelector(".job-state").textContent);
          }).catch(function () {
            state.textContent = describe(status);
          });
          return;
        }
        jobElement.className = "job state-" + status.task_status.toLowerCase();
        state.textContent = describe(status);
        var pause = Math.max(0, delay - (Date.now() - asked));
        window.setTimeout(function () { poll(jobElement, Math.min(delay * 2, MAX_DELAY_MS)); }, pause);
      })
      .catch(function () {
        // The server may be restarting: keep trying, more slowly.
        window.setTimeout(function () { poll(jobElement, MAX_DELAY_MS); }, MAX_DELAY_MS);
      });
  }

  // The visitor's own jobs can be deleted: DELETE on the status URL, with the page's CSRF token.
  function enableDelete(jobElement) {
    var button = jobElement.querySelector(".job-delete");
    var csrfInput = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (!button || !csrfInput) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      var name = jobElement.querySelector(".job-name").textContent;
      button.disabled = true;
      fetch(jobElement.dataset.statusUrl, {
        method: "DELETE",
        headers: { "X-CSRFToken": csrfInput.value, Accept: "application/json" },
        credentials: "same-origin"
      }).then(function (response) {
        if (response.status === 204) {
          jobElement.remove();
          announce(name + " was deleted.");
          return;
        }
        button.disabled = false;
        announce(name + " could not be deleted; please try again.");
      }).catch(function () {
        button.disabled = false;
        announce(name + " could not be deleted; please try again.");
      });
    });
  }

  window.thumbnailerJobs = {
    // A job just accepted: its answer already said PENDING, so the first question waits
    // (asked at once it would only hear PENDING again). A repeat is finished: asked at once.
    watch: function (jobElement, taskStatus) {
      if (taskStatus === "SUCCESS" || taskStatus === "FAILURE") {
        poll(jobElement, FIRST_DELAY_MS);
        return;
      }
      window.setTimeout(function () { poll(jobElement, FIRST_DELAY_MS * 2); }, FIRST_DELAY_MS);
    },
    enableDelete: enableDelete
  };

  document.querySelectorAll(".job").forEach(function (jobElement) {
    enableDelete(jobElement);
    if (jobElement.dataset.finished === "false") { poll(jobElement, FIRST_DELAY_MS); }
  });
})();
