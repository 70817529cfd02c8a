"""The upload form: the same checks as the API (extension, size, a pipeline for the kind)."""

from __future__ import annotations

from typing import Any

from django import forms

from tapestry_media.api.uploads import allowed_extensions, check_upload
from tapestry_media.models import Submission

SOURCES = [("web", "Website"), ("ios", "iOS app"), ("android", "Android app"), ("other", "Other")]


class UploadForm(forms.ModelForm):
    source = forms.ChoiceField(choices=SOURCES, initial="web")

    class Meta:
        model = Submission
        fields = ("file", "title", "campaign", "source")
        widgets = {
            "title": forms.TextInput(attrs={"placeholder": "Beach day, take 2"}),
            "campaign": forms.TextInput(
                attrs={"placeholder": "summer-launch", "list": "campaigns", "autocomplete": "off"}
            ),
        }
        help_texts = {"campaign": "Groups uploads; it travels with every processing task."}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["file"].widget.attrs["accept"] = ",".join(
            f".{ext}" for ext in allowed_extensions()
        )

    def clean_file(self) -> Any:
        upload = self.cleaned_data.get("file")
        if upload is not None:
            check_upload(upload)
        return upload
