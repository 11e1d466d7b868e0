"""Upload forms: the page's (several files, size choices) and the API's (one file, sizes text).

Every ValidationError carries the code the JSON error answers with, so a view never has to
guess the reason from the field's name.
"""

from django import forms
from django.conf import settings

from . import naming, webhooks
from .imaging.options import ThumbnailOptions

MISSING_FILE_MESSAGE = "Send the image in the multipart field 'image_file'."


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class ImageFileField(forms.FileField):
    """A file field whose missing file is the `missing_file` error."""

    def to_python(self, data):
        try:
            return super().to_python(data)
        except forms.ValidationError as error:
            # A part that is not a file, or a file with no name: to a client, no file at all.
            raise forms.ValidationError(self.error_messages["required"], code="missing_file") from error

    def validate(self, value):
        if value in self.empty_values and self.required:
            raise forms.ValidationError(self.error_messages["required"], code="missing_file")
        super().validate(value)


class MultipleImageFileField(ImageFileField):
    """Several files in one field (the pattern from Django's file-upload docs)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": "image/*"}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        items = [item for item in (data if isinstance(data, (list, tuple)) else [data]) if item]
        if not items:
            self.validate(None)
            return []
        single_clean = super().clean
        return [single_clean(item, initial) for item in items]


def size_choices() -> list[tuple[str, str]]:
    return [(size, size.replace("x", " × ")) for size in settings.THUMBNAILER_SIZE_CHOICES]


def boxes_from_text(text: str) -> list[tuple[int, int]]:
    """`"128x128,256x256"` -> boxes, or the `invalid_option` error naming the field."""
    try:
        return naming.parse_boxes(text, largest=settings.THUMBNAILER_LARGEST_SIDE)
    except ValueError as error:
        raise forms.ValidationError(f"sizes: {error}", code="invalid_option") from error


class ThumbnailOptionsMixin:
    """mode, focus, format and quality, checked together into cleaned_data["options"]."""

    def clean(self):
        cleaned = super().clean()
        try:
            cleaned["options"] = ThumbnailOptions.from_text(
                mode=cleaned.get("mode", ""),
                focus=cleaned.get("focus", ""),
                output_format=cleaned.get("format", ""),
                quality=cleaned.get("quality", ""),
            )
        except ValueError as error:
            field = str(error).split(" ", 1)[0]
            self.add_error(
                field if field in self.fields else None,
                forms.ValidationError(str(error), code="invalid_option"),
            )
        return cleaned


MODE_CHOICES = [
    ("fit", "Fit — the whole picture inside the box"),
    ("fill", "Fill — exactly the box, cropped at the centre"),
    ("smart", "Smart — exactly the box, cropped on the most detailed part"),
]
FORMAT_CHOICES = [
    ("auto", "Same kind as the original"),
    ("jpeg", "JPEG"),
    ("png", "PNG"),
    ("webp", "WebP"),
    ("avif", "AVIF"),
]


class UploadForm(ThumbnailOptionsMixin, forms.Form):
    """The page's form. Each file's content is checked later, one by one, by the upload service."""

    image_file = MultipleImageFileField(
        label="Images",
        error_messages={"required": "Choose at least one image to upload."},
        # Emptiness is reported per file (with the file's name) by the upload service.
        allow_empty_file=True,
    )
    sizes = forms.MultipleChoiceField(
        label="Thumbnail sizes",
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    mode = forms.ChoiceField(
        label="Shape", choices=MODE_CHOICES, required=False, initial="fit", widget=forms.RadioSelect
    )
    format = forms.ChoiceField(label="Format", choices=FORMAT_CHOICES, required=False, initial="auto")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sizes"].choices = size_choices()
        self.fields["sizes"].initial = [settings.THUMBNAILER_DEFAULT_SIZES.split(",")[0]]

    def clean_image_file(self) -> list:
        files = self.cleaned_data["image_file"]
        if len(files) > settings.THUMBNAILER_MAX_FILES_PER_POST:
            raise forms.ValidationError(
                f"Send at most {settings.THUMBNAILER_MAX_FILES_PER_POST} files at a time.",
                code="too_many_files",
            )
        return files

    def clean_sizes(self) -> list[tuple[int, int]]:
        return boxes_from_text(",".join(self.cleaned_data["sizes"]) or settings.THUMBNAILER_DEFAULT_SIZES)


class ApiJobForm(ThumbnailOptionsMixin, forms.Form):
    """The JSON API's form: one file, optional `sizes` like "128x128,256x256", and the thumbnail options."""

    image_file = ImageFileField(
        error_messages={"required": MISSING_FILE_MESSAGE},
        allow_empty_file=True,
    )
    sizes = forms.CharField(required=False)
    callback_url = forms.CharField(required=False, strip=True)
    mode = forms.CharField(required=False)
    focus = forms.CharField(required=False)
    format = forms.CharField(required=False)
    quality = forms.CharField(required=False)

    def clean_callback_url(self) -> str:
        url = self.cleaned_data["callback_url"]
        if not url:
            return ""
        if not settings.THUMBNAILER_WEBHOOK_SECRET:
            raise forms.ValidationError(
                "This server has no webhook secret configured, so it sends no webhooks.",
                code="invalid_callback_url",
            )
        try:
            webhooks.check_callback_url(url, allow_private=settings.THUMBNAILER_WEBHOOK_ALLOW_PRIVATE)
        except webhooks.CallbackRefused as refused:
            raise forms.ValidationError(str(refused), code="invalid_callback_url") from refused
        return url

    def clean_sizes(self) -> list[tuple[int, int]]:
        text = self.cleaned_data["sizes"]
        if len(text) > 200:
            raise forms.ValidationError("sizes: the field is too long.", code="invalid_option")
        return boxes_from_text(text or settings.THUMBNAILER_DEFAULT_SIZES)


def first_error(form: forms.Form) -> tuple[str, str]:
    """The code and message of the form's first error, in field order."""
    for field_errors in form.errors.as_data().values():
        error = field_errors[0]
        return error.code or "invalid_request", error.messages[0]
    raise ValueError("first_error() needs a form with errors.")
