"""Waiting for something that happens in another process, always bounded in time."""

import time

from .http import job_status

FINISHED = ("SUCCESS", "FAILURE")
JOB_TIMEOUT_SECONDS = 30


def wait_until(predicate, *, timeout: float, interval: float = 0.1, message: str = "condition"):
    """Poll `predicate` until it returns something truthy, and return that; bounded by `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"{message} not met within {timeout}s")


def wait_for_jobs(
    server,
    task_ids: list[str],
    *,
    states: tuple[str, ...] = FINISHED,
    timeout: float = JOB_TIMEOUT_SECONDS,
    interval: float = 0.1,
) -> dict[str, dict]:
    """Poll each job's status JSON until every one is in `states`; return the last status of each.

    `server` is a running server's base URL or a Django test client. On timeout the error
    lists the states each job went through, which usually says what went wrong.
    """
    seen: dict[str, list[str]] = {task_id: [] for task_id in task_ids}
    last: dict[str, dict] = {}

    def all_there():
        for task_id in task_ids:
            if task_id in last and last[task_id]["task_status"] in states:
                continue
            body = job_status(server, task_id)
            if seen[task_id][-1:] != [body["task_status"]]:
                seen[task_id].append(body["task_status"])
            last[task_id] = body
        return all(body["task_status"] in states for body in last.values())

    try:
        wait_until(all_there, timeout=timeout, interval=interval, message=f"jobs in {states}")
    except TimeoutError as error:
        raise TimeoutError(f"{error}; the states each went through: {seen}") from None
    return last


def wait_for_job(server, task_id: str, **options) -> dict:
    """The status of one job once it is in `states` (finished, unless told otherwise)."""
    return wait_for_jobs(server, [task_id], **options)[task_id]
