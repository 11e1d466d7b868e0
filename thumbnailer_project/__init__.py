"""The project package. Importing it loads the Celery app, so shared_task and current_app bind
to it in every process (the pattern from Celery's own Django example): web, worker, beat, tests
and management commands.

The one exception is `manage.py thumbnail`: it runs the image pipeline on local files and never
talks to the broker, so manage.py sets THUMBNAILER_WITHOUT_CELERY=1 for it alone and it starts
without loading the Celery app. test_cli checks that it does not.
"""

import os

if os.environ.get("THUMBNAILER_WITHOUT_CELERY") != "1":
    from .celery import app as celery_app

    __all__ = ("celery_app",)
