"""`thumbnail` as a Django management command, for call_command() and django-admin.

The command itself is thumbnailer/cli.py, which `python manage.py thumbnail` runs without Django.
This wrapper only reads the limits from Django's settings, so a custom settings module and the
tests' `settings` fixture apply, and turns the CLI's failures into CommandError.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from thumbnailer import cli
from thumbnailer.limits import Limits


class Command(BaseCommand):
    help = cli.DESCRIPTION
    # The system checks import the URLconf, views, admin and Celery to check the web site,
    # which this command never uses; skipping them halves its start-up.
    requires_system_checks = []

    def add_arguments(self, parser):
        cli.add_arguments(parser, default_sizes=settings.THUMBNAILER_DEFAULT_SIZES)

    def handle(self, *args, **options):
        limits = Limits(
            max_pixels=settings.THUMBNAILER_MAX_PIXELS,
            max_frames=settings.THUMBNAILER_MAX_FRAMES,
            default_sizes=settings.THUMBNAILER_DEFAULT_SIZES,
            largest_side=settings.THUMBNAILER_LARGEST_SIDE,
        )
        try:
            cli.thumbnail_paths(
                options, limits=limits, write_line=self.stdout.write, write_failure=self.stderr.write
            )
        except cli.CommandFailed as failure:
            raise CommandError(str(failure), returncode=failure.returncode) from failure
