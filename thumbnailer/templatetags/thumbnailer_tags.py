from django import template
from django.core.files.storage import default_storage

register = template.Library()


@register.filter
def storage_url(path: str) -> str:
    """The public URL of a stored file, whatever the storage backend."""
    return default_storage.url(path) if path else ""
