from django.apps import AppConfig


class ThumbnailerConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "thumbnailer"
    verbose_name = "Thumbnailer"

    def ready(self):
        from . import checks  # noqa: F401  (registers the startup checks)
