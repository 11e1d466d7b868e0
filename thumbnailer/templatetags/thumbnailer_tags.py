from django import template
from django.core.files.storage import default_storage

from thumbnailer import units

register = template.Library()


@register.filter
def storage_url(path: str) -> str:
    """The public URL of a stored file, whatever the storage backend."""
    return default_storage.url(path) if path else ""


@register.filter
def human_size(count: int | None) -> str:
    """Bytes in the units the whole site uses (see thumbnailer.units)."""
    return units.human_size(count) if count is not None else ""
