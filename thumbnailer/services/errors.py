"""What the job services raise, for views and tasks to answer."""


class QueueUnavailable(Exception):
    """The broker could not take the job; nothing was kept."""


class JobBusy(Exception):
    """Another worker holds the job's lease; try again after `retry_in` seconds."""

    def __init__(self, retry_in: float):
        super().__init__(f"job is being processed elsewhere; retry in {retry_in:.0f}s")
        self.retry_in = retry_in


class LeaseLost(Exception):
    """This worker's claim on a job lapsed or passed to another worker: it must write nothing more."""


class UploadRefused(Exception):
    """Why one uploaded file was not accepted: a snake_case code and a sentence for a person."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message
