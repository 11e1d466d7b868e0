from django.apps import AppConfig


class ThumbnailerConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "thumbnailer"
    verbose_name = "Thumbnailer"
