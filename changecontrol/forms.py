"""Forms of the core domain's pages: they validate input; services decide and write."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm

from changecontrol.models import ChangeRequest, Signature

RISK_FIELD_PREFIX = "risk_"


def humanize(name: str) -> str:
    """`patient_safety_impact` → `Patient safety impact` (policy keys are written for machines)."""
    return name.replace("_", " ").replace("-", " ").strip().capitalize()


class SignInForm(AuthenticationForm):
    """Django's sign-in form with one message for every failure, so it never reveals whether a username exists."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": (
            "Sign-in failed: the username and password do not match an active account, the account is "
            "locked after repeated failed attempts, or too many attempts came from your address (try again in "
            "%(window)s). Locked accounts unlock after %(minutes)s, or when an administrator unlocks them."
        ),
    }

    def get_invalid_login_error(self):
        minutes = settings.CUSTODY_LOCKOUT_MINUTES
        wait = f"{minutes} minutes" if minutes else "an administrator's review"
        return forms.ValidationError(
            self.error_messages["invalid_login"],
            code="invalid_login",
            params={"minutes": wait, "window": f"{settings.CUSTODY_SIGNIN_WINDOW_MINUTES} minutes"},
        )


class ChangeRequestForm(forms.Form):
    """The change request's content plus the policy's risk questionnaire (one choice per question)."""

    title = forms.CharField(max_length=200)
    why = forms.CharField(label="Why is this change needed?", widget=forms.Textarea(attrs={"rows": 3}), required=False)
    what_changes = forms.CharField(label="What changes", widget=forms.Textarea(attrs={"rows": 3}), required=False)
    affected_items = forms.CharField(
        label="Affected items",
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        help_text="Modules, services, requirements (REQ-…) or hazards (HAZ-…) touched.",
    )
    kind = forms.ChoiceField(choices=ChangeRequest.Kind.choices)
    change_type = forms.ChoiceField(label="Type", choices=ChangeRequest.Type.choices, initial=ChangeRequest.Type.NORMAL)
    verification_plan = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    rollback_plan = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    reason = forms.CharField(
        label="Reason for this edit",
        required=False,
        help_text="Recorded in the audit trail with the change.",
    )

    def __init__(self, *args, questions=None, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if not editing:
            del self.fields["reason"]
        # The questionnaire comes from the active policy: its questions and answers are the policy author's.
        self.question_names = []
        for question, weights in (questions or {}).items():
            name = f"{RISK_FIELD_PREFIX}{question}"
            self.fields[name] = forms.ChoiceField(
                label=humanize(question),
                choices=[("", "— not answered yet —")] + [(answer, humanize(answer)) for answer in weights],
                required=False,
                widget=forms.Select(attrs={"data-risk-question": question}),
            )
            self.question_names.append(name)

    def content(self) -> dict:
        return {name: self.cleaned_data[name] for name in ChangeRequest.CONTENT_FIELDS}

    def risk_answers(self) -> dict[str, str]:
        return {
            name.removeprefix(RISK_FIELD_PREFIX): self.cleaned_data[name]
            for name in self.question_names
            if self.cleaned_data.get(name)
        }

    def risk_fields(self):
        return [self[name] for name in self.question_names]

    def content_fields(self):
        return [self[name] for name in self.fields if name not in self.question_names and name != "reason"]


class ChangeRequestFilterForm(forms.Form):
    """Filters of the change-request list (the same names as the API's query parameters)."""

    q = forms.CharField(
        label="Search",
        required=False,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "title contains…"}),
    )
    state = forms.ChoiceField(choices=[("", "any state")] + ChangeRequest.State.choices, required=False)
    tier = forms.ChoiceField(required=False)
    kind = forms.ChoiceField(choices=[("", "any kind")] + ChangeRequest.Kind.choices, required=False)

    def __init__(self, *args, tiers=("low", "medium", "high", "critical"), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tier"].choices = [("", "any tier")] + [(tier, humanize(tier)) for tier in tiers]

    def filters(self) -> dict:
        if not self.is_valid():
            return {}
        return {key: value for key, value in self.cleaned_data.items() if value}


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=2000, required=False)


class SignForm(forms.Form):
    """Part 11 §11.200(a): the signer re-enters both components of the signature at signing; §11.70: the dialog
    posts back the content_sha256 of the record as it showed it (the service refuses anything else)."""

    meaning = forms.ChoiceField(
        choices=[
            (m, label)
            for m, label in Signature.Meaning.choices
            if m in ("approved", "rejected", "reviewed", "failure_accepted")
        ]
    )
    username = forms.CharField(max_length=150)
    password = forms.CharField(strip=False, widget=forms.PasswordInput)
    comment = forms.CharField(max_length=4000, required=False)
    # Checked by the signing envelope (esign.seen_content), whose message says what to do when it is missing.
    content_sha256 = forms.CharField(max_length=100, required=False)

    def signing(self) -> dict:
        """The cleaned fields as the signing services take them."""
        data = dict(self.cleaned_data)
        data["seen_sha256"] = data.pop("content_sha256")
        return data


class AuditFilterForm(forms.Form):
    """Filters of the audit trail page; names match `/api/v1/audit-events` so exports reuse the query string."""

    product = forms.ChoiceField(required=False)
    object = forms.CharField(
        label="Object (human ID)", required=False, widget=forms.TextInput(attrs={"placeholder": "CR-12"})
    )
    actor = forms.CharField(required=False, widget=forms.TextInput(attrs={"placeholder": "name or username"}))
    action = forms.CharField(required=False, widget=forms.TextInput(attrs={"placeholder": "change_request."}))
    since = forms.DateField(label="From (UTC)", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label="To (UTC)", required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, product_keys=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["product"].choices = [("", "all my products")] + [(key, key) for key in product_keys]
