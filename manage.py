#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "thumbnailer_project.settings")
    if sys.argv[1:2] == ["thumbnail"]:
        run_thumbnail_command(sys.argv)
        return
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


def run_thumbnail_command(argv):
    """`manage.py thumbnail` without the Celery app and without django.setup().

    The command reads settings and runs the image pipeline on local files: it needs no broker
    (see thumbnailer_project/__init__.py), no models, no admin and no URLs, which is what
    django.setup() would import (a third of the start-up). --settings and --pythonpath are
    honoured first, as execute_from_command_line() does. test_cli runs it in real processes.
    """
    os.environ["THUMBNAILER_WITHOUT_CELERY"] = "1"
    from django.core.management.base import CommandParser, handle_default_options

    early = CommandParser(add_help=False, allow_abbrev=False)
    early.add_argument("--settings")
    early.add_argument("--pythonpath")
    handle_default_options(early.parse_known_args(argv[2:])[0])

    from thumbnailer.management.commands.thumbnail import Command

    Command().run_from_argv(argv)


if __name__ == "__main__":
    main()
