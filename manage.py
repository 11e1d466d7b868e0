#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys

DEFAULT_SETTINGS = "thumbnailer_project.settings"


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", DEFAULT_SETTINGS)
    if sys.argv[1:2] == ["thumbnail"]:
        run_thumbnail_command(sys.argv)
        return
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


def run_thumbnail_command(argv):
    """`manage.py thumbnail` without Django when it can: that is most of its start-up.

    thumbnailer/cli.py reads the limits our settings module would read, from the environment.
    Another settings module may set them otherwise, and a DJANGO_COLORS palette is Django's to
    parse: those runs take the management command instead, still without Celery and without
    django.setup(). test_cli runs both paths in real processes and checks what each imports.
    """
    early = _early_options(argv[2:])
    needs_django = (
        early is None
        or (early.settings or os.environ["DJANGO_SETTINGS_MODULE"]) != DEFAULT_SETTINGS
        or "DJANGO_COLORS" in os.environ
    )
    if needs_django:
        run_thumbnail_management_command(argv)
        return
    if early.pythonpath:
        sys.path.insert(0, early.pythonpath)  # as Django's handle_default_options() does
    from thumbnailer import cli

    sys.exit(cli.main(argv))


def run_thumbnail_management_command(argv):
    """The command through Django, without the Celery app and without django.setup().

    It reads settings and runs the image pipeline on local files: it needs no broker (see
    thumbnailer_project/__init__.py), no models, no admin and no URLs, which is what
    django.setup() would import (a third of the start-up). --settings and --pythonpath are
    honoured first, as execute_from_command_line() does.
    """
    os.environ["THUMBNAILER_WITHOUT_CELERY"] = "1"
    from django.core.management.base import CommandParser, handle_default_options

    early = CommandParser(add_help=False, allow_abbrev=False)
    early.add_argument("--settings")
    early.add_argument("--pythonpath")
    handle_default_options(early.parse_known_args(argv[2:])[0])

    from thumbnailer.management.commands.thumbnail import Command

    Command().run_from_argv(argv)


def _early_options(args):
    """--settings and --pythonpath, abbreviated or not, as the command's parser will read them.

    Only to choose the path: an ambiguous abbreviation such as --s, or --settings with no value,
    gives None or another module, and the management command reports it as it always has.
    """
    import argparse

    early = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    early.add_argument("--settings")
    early.add_argument("--pythonpath")
    try:
        return early.parse_known_args(args)[0]
    except argparse.ArgumentError:
        return None


if __name__ == "__main__":
    main()
