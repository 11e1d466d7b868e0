// Polls the status JSON of every unfinished job on the page and shows its state,
// its thumbnails and the zip link as soon as they exist. Without JavaScript the
// results page refreshes itself instead.
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
  var FIRST_DELAY_MS = 500;
  var MAX_DELAY_MS = 5000;

  function describe(status) {
    var words = STATE_WORDS[status.task_status] || status.task_status;
    if (status.progress && status.progress.total > 1 && status.task_status !== "PENDING") {
      words += " (" + status.progress.current + " of " + status.progress.total + ")";
    }
    if (status.error) {
      words = "Failed: " + status.error.message;
    }
    return words;
  }

  function showResults(jobElement, results) {
    var container = jobElement.querySelector(".job-results");
    container.textContent = "";
    results.thumbnails.forEach(function (thumb) {
      var figure = document.createElement("figure");
      var image = document.createElement("img");
      image.src = thumb.url;
      image.width = thumb.width;
      image.height = thumb.height;
      image.alt = "Thumbnail " + thumb.size;
      var caption = document.createElement("figcaption");
      caption.textContent = thumb.size + " · " + thumb.width + "×" + thumb.height;
      figure.appendChild(image);
      figure.appendChild(caption);
      container.appendChild(figure);
    });
    var link = document.createElement("a");
    link.className = "download";
    link.href = results.archive_path;
    link.setAttribute("download", "");
    link.textContent = "Download zip";
    container.appendChild(link);
  }

  function render(jobElement, status) {
    jobElement.className = "job state-" + status.task_status.toLowerCase();
    jobElement.querySelector(".job-state").textContent = describe(status);
    if (status.task_status === "SUCCESS") {
      showResults(jobElement, status.results);
    }
  }

  function poll(jobElement, delay) {
    fetch(jobElement.dataset.statusUrl, { headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      })
      .then(function (answer) {
        if (!answer.ok) {
          jobElement.querySelector(".job-state").textContent = answer.body.error.message;
          jobElement.dataset.finished = "true";
          return;
        }
        render(jobElement, answer.body);
        if (answer.body.task_status === "SUCCESS" || answer.body.task_status === "FAILURE") {
          jobElement.dataset.finished = "true";
          return;
        }
        window.setTimeout(function () { poll(jobElement, Math.min(delay * 1.5, MAX_DELAY_MS)); }, delay);
      })
      .catch(function () {
        // The server may be restarting: keep trying, more slowly.
        window.setTimeout(function () { poll(jobElement, MAX_DELAY_MS); }, MAX_DELAY_MS);
      });
  }

  document.querySelectorAll('.job[data-finished="false"]').forEach(function (jobElement) {
    poll(jobElement, FIRST_DELAY_MS);
  });

  // The visitor's own jobs can be deleted: DELETE on the status URL, with the page's CSRF token.
  var csrfInput = document.querySelector("input[name=csrfmiddlewaretoken]");
  var announcer = document.getElementById("jobs-announcer");

  function deleteJob(jobElement, button) {
    var name = jobElement.querySelector(".job-name").textContent;
    button.disabled = true;
    fetch(jobElement.dataset.statusUrl, {
      method: "DELETE",
      headers: { "X-CSRFToken": csrfInput.value, Accept: "application/json" },
      credentials: "same-origin"
    }).then(function (response) {
      if (response.status === 204) {
        jobElement.remove();
        announcer.textContent = name + " was deleted.";
        return;
      }
      button.disabled = false;
      announcer.textContent = name + " could not be deleted; please try again.";
    }).catch(function () {
      button.disabled = false;
      announcer.textContent = name + " could not be deleted; please try again.";
    });
  }

  if (csrfInput && announcer) {
    document.querySelectorAll(".job-delete").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () { deleteJob(button.closest(".job"), button); });
    });
  }
})();
