from django import template

from thumbnailer import storage_io, units

register = template.Library()


@register.filter
def storage_url(path: str) -> str:
    """The site-relative URL (/media/...) of a stored file, whatever the storage backend."""
    return storage_io.public_url(path) if path else ""


@register.filter
def human_size(count: int | None) -> str:
    """Bytes in the units the whole site uses (see thumbnailer.units)."""
    return units.human_size(count) if count is not None else ""
