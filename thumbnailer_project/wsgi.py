"""WSGI entry point (gunicorn thumbnailer_project.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "thumbnailer_project.settings")

application = get_wsgi_application()
