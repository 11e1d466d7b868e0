"""WSGI entry point (gunicorn thumbnailer_project.wsgi)."""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "thumbnailer_project.settings")

application = get_wsgi_application()

# Say in the log, once per web process, what is misconfigured or down (a missing bucket, refused
# keys, an unreachable host); the site starts anyway and /healthz/ keeps reporting.
from thumbnailer.checks import log_service_faults  # noqa: E402  (needs the apps loaded above)

log_service_faults("web")

# Everything loaded so far lives as long as the process: leave it out of the cyclic garbage
# collector's scans. Its full collections over these ~90k objects cost about 1.2 ms of CPU per
# job across web and worker (measured in-process, bench/README.md).
gc.freeze()
