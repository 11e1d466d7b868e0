"""Upload forms: the page's (several files, size choices) and the API's (one file, sizes text)."""
from django import forms
from django.conf import settings

from . import naming


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """A file field that takes several files (the pattern from Django's file-upload docs)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": "image/*"}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single_clean = super().clean
        if isinstance(data, (list, tuple)):
            if not data and self.required:
                raise forms.ValidationError(self.error_messages["required"], code="required")
            return [single_clean(item, initial) for item in data]
        return [single_clean(data, initial)]


def size_choices() -> list[tuple[str, str]]:
    return [(size, size.replace("x", " × ")) for size in settings.THUMBNAILER_SIZE_CHOICES]


class UploadForm(forms.Form):
    """The page's form. Each file's content is checked later, one by one, by the view."""

    image_file = MultipleFileField(
        label="Images",
        error_messages={"required": "Choose at least one image to upload."},
        # Emptiness is reported per file (with the file's name) by upload_inspect.
        allow_empty_file=True,
    )
    sizes = forms.MultipleChoiceField(
        label="Thumbnail sizes",
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sizes"].choices = size_choices()
        self.fields["sizes"].initial = [settings.THUMBNAILER_DEFAULT_SIZES.split(",")[0]]

    def clean_sizes(self) -> list[tuple[int, int]]:
        chosen = ",".join(self.cleaned_data["sizes"]) or settings.THUMBNAILER_DEFAULT_SIZES
        return naming.parse_boxes(chosen, largest=settings.THUMBNAILER_LARGEST_SIDE)


class ApiJobForm(forms.Form):
    """The JSON API's form: one file, optional `sizes` like "128x128,256x256"."""

    image_file = forms.FileField(
        error_messages={"required": "Send the image in the multipart field 'image_file'."},
        allow_empty_file=True,
    )
    sizes = forms.CharField(required=False, max_length=200)

    def clean_sizes(self) -> list[tuple[int, int]]:
        text = self.cleaned_data["sizes"] or settings.THUMBNAILER_DEFAULT_SIZES
        try:
            return naming.parse_boxes(text, largest=settings.THUMBNAILER_LARGEST_SIDE)
        except ValueError as error:
            raise forms.ValidationError(str(error), code="invalid_size") from error
