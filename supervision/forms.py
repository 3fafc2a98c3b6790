import secrets
from collections.abc import Sequence
from datetime import timedelta

from django import forms
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from . import photos as photo_intake
from . import services
from .models import Department, Issue, Project, Region, ScopeItem, Subdistrict, issue_county


class CountyChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return f"{obj.parent.name} · {obj.name}"


class ProjectFilterForm(forms.Form):
    # Shown where more than one county-level city runs a programme; chosen by its code.
    region = CountyChoiceField(
        label=_("县（市、区）"),
        queryset=Region.objects.none(),
        to_field_name="code",
        required=False,
        empty_label=_("全部县（市、区）"),
    )
    subdistrict = forms.ModelChoiceField(
        label=_("街道"),
        queryset=Subdistrict.objects.all(),
        required=False,
        empty_label=_("全部街道"),
    )
    year = forms.TypedChoiceField(label=_("年度"), required=False, coerce=int, empty_value=None)
    status = forms.ChoiceField(
        label=_("状态"), required=False, choices=[("", _("全部状态")), *Project.Status.choices]
    )
    q = forms.CharField(label=_("搜索"), required=False, max_length=50)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        years = Project.objects.order_by("-year").values_list("year", flat=True).distinct()
        self.fields["year"].choices = [("", _("全部年度"))] + [(y, str(y)) for y in years]
        counties = Region.objects.filter(
            level=Region.Level.COUNTY, subdistricts__isnull=False
        ).distinct()
        self.fields["region"].queryset = counties.select_related("parent").order_by("code")
        self.several_counties = counties.count() > 1
        if not self.several_counties:
            del self.fields["region"]
            return
        chosen = (self.data.get("region") or "") if self.is_bound else ""
        subdistricts = Subdistrict.objects.select_related("region")
        if chosen:
            subdistricts = subdistricts.filter(region__code=chosen)
        self.fields["subdistrict"].queryset = subdistricts
        # Two cities may each have a 城关街道: name the city beside it.
        self.fields["subdistrict"].label_from_instance = lambda s: f"{s.region.name} · {s.name}"

    def filter(self, projects: QuerySet[Project]) -> QuerySet[Project]:
        data = self.cleaned_data
        if data.get("region"):
            projects = projects.filter(neighbourhood__subdistrict__region=data["region"])
        if data.get("subdistrict"):
            projects = projects.filter(neighbourhood__subdistrict=data["subdistrict"])
        if data.get("year"):
            projects = projects.filter(year=data["year"])
        if data.get("status"):
            projects = projects.filter(status=data["status"])
        if data.get("q"):
            q = data["q"].strip()
            projects = projects.filter(
                Q(name__icontains=q)
                | Q(neighbourhood__name__icontains=q)
                | Q(neighbourhood__address__icontains=q)
            )
        return projects


# --- photos ------------------------------------------------------------------------------------


class PhotoPicker(forms.Widget):
    """Two ways to add photos, always both: 「拍照」 opens the back camera, 「从相册选」 the album
    (several at once). Both inputs carry the field's name, so without JavaScript the form posts
    whatever each holds; with it (issue-form.js) the photos add up across choices, with
    thumbnails and a × on each, up to nine."""

    needs_multipart_form = True

    def value_from_datadict(self, data, files, name):
        return files.getlist(name)

    def value_omitted_from_data(self, data, files, name) -> bool:
        return name not in files

    def use_required_attribute(self, initial) -> bool:
        return False

    def render(self, name, value, attrs=None, renderer=None) -> str:
        attrs = {**self.attrs, **(attrs or {})}
        field_id = attrs.get("id") or f"id_{name}"
        described = attrs.get("aria-describedby", "")
        invalid = " is-invalid" if "is-invalid" in attrs.get("class", "") else ""
        return format_html(
            '<div class="photo-picker" data-photo-picker data-name="{name}">'
            '<div class="photo-buttons">'
            '<span class="photo-choice"><input type="file" name="{name}" id="{id}-camera" '
            'accept="image/*" capture="environment" class="form-control photo-input{invalid}" '
            'aria-describedby="{described}">'
            '<label class="btn btn-outline-primary photo-button" for="{id}-camera">{camera}'
            "</label></span>"
            '<span class="photo-choice"><input type="file" name="{name}" id="{id}" '
            'accept="image/*,.heic,.heif" multiple class="form-control photo-input{invalid}" '
            'aria-describedby="{described}">'
            '<label class="btn btn-outline-primary photo-button" for="{id}">{album}</label>'
            "</span></div>"
            '<p class="photo-count mb-1" data-photo-count aria-live="polite"></p>'
            '<div class="photo-grid" data-photo-previews></div>'
            '<div class="invalid-feedback d-block" data-photo-problems aria-live="polite"></div>'
            "</div>",
            name=name,
            id=field_id,
            described=described,
            invalid=invalid,
            camera=_("拍照"),
            album=_("从相册选"),
        )


class PhotosField(forms.Field):
    """Cleans to a list of ``photos.PreparedPhoto``: every file checked and converted once. How
    many a step needs is the service's rule (it answers beside the field).

    At most ``max_photos`` (``count_message`` words the refusal), and at most
    ``photos.PHOTO_MAX_PIXELS_PER_REQUEST`` pixels together, checked before any is decoded. With
    ``prepare=False`` it only checks and cleans to the files: a form with several pickers (a
    patrol's) then prepares them all at once with ``prepare_photo_fields``. With ``defer=True``
    (an issue's photos) a HEIC photo is checked but left for the worker to decode
    (``photos.convert_pending``)."""

    widget = PhotoPicker

    def __init__(
        self,
        *,
        max_photos: int = photo_intake.MAX_PHOTOS,
        count_message: str = "",
        prepare: bool = True,
        defer: bool = False,
        **kwargs,
    ):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)
        self.max_photos, self.count_message, self.prepare = max_photos, count_message, prepare
        self.defer = defer

    def clean(self, value):
        files = [f for f in (value or []) if f]
        try:
            if not self.prepare:
                photo_intake.check_photos(files, limit=self.max_photos, message=self.count_message)
                return files
            return photo_intake.prepare_photos(
                files, limit=self.max_photos, message=self.count_message, defer=self.defer
            )
        except photo_intake.PhotoError as error:
            raise forms.ValidationError(error.messages) from None


def prepare_photo_fields(
    form: forms.Form, names: Sequence[str], *, limit: int = photo_intake.MAX_PHOTOS
) -> None:
    """For a form with several photo pickers (``PhotosField(prepare=False)``, a patrol's one per
    item): ``limit`` photos and one pixel budget for all of them together, checked before any is
    decoded, the refusal beside each picker that holds photos; then each picker's photos are
    prepared, a file's refusal beside its own picker. Call from the form's ``clean``."""
    chosen = {name: form.cleaned_data[name] for name in names if form.cleaned_data.get(name)}
    try:
        photo_intake.check_photos([f for files in chosen.values() for f in files], limit=limit)
    except photo_intake.PhotoError as error:
        for name in chosen:
            form.add_error(name, error.messages)
        return
    for name, files in chosen.items():
        try:
            form.cleaned_data[name] = photo_intake.prepare_photos(files)
        except photo_intake.PhotoError as error:
            form.add_error(name, error.messages)


class VoiceRecorder(forms.Widget):
    """「按住说话」: records up to a minute in the browser (MediaRecorder, voice in issue-form.js)
    and sends it with the form. Hidden until the script finds a phone that can record; a phone
    that cannot simply shows no button."""

    needs_multipart_form = True

    def value_from_datadict(self, data, files, name):
        return files.get(name)

    def value_omitted_from_data(self, data, files, name) -> bool:
        return name not in files

    def render(self, name, value, attrs=None, renderer=None) -> str:
        return format_html(
            '<div class="voice-recorder" data-voice-recorder data-name="{name}" hidden>'
            '<button type="button" class="btn btn-outline-primary voice-button" '
            'data-voice-record aria-pressed="false">{hold}</button>'
            '<span class="voice-status" data-voice-status aria-live="polite"></span>'
            "<audio controls hidden data-voice-preview></audio>"
            '<button type="button" class="btn btn-link" data-voice-remove hidden>{remove}</button>'
            "</div>",
            name=name,
            hold=_("按住说话"),
            remove=_("删除语音"),
        )


class VoiceField(forms.FileField):
    """A voice note as uploaded; ``voice.prepare_voice`` (through the service) checks it."""

    widget = VoiceRecorder

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("label", "")  # the button says what it does
        super().__init__(**kwargs)


# --- filing an issue ---------------------------------------------------------------------------


# Django's own refusals that say no more than a filing rule does (services.filing_problems).
REPLACED_BY_THE_RULE = {"required", "invalid_choice"}


class IssueForm(forms.Form):
    """What a supervisor fills in on the phone. The token makes a double tap file one issue."""

    token = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)
    project = forms.ModelChoiceField(
        label=_("项目"),
        queryset=Project.objects.none(),
        empty_label=_("请选择项目"),
        error_messages={"required": services.FILING_MESSAGES["project"]},
    )
    category = forms.ChoiceField(
        label=_("问题类别"), choices=Issue.Category.choices, widget=forms.RadioSelect
    )
    urgency = forms.ChoiceField(
        label=_("紧急程度"),
        choices=Issue.Urgency.choices,
        initial=Issue.Urgency.NORMAL,
        widget=forms.RadioSelect,
        help_text=_("危及安全、需要马上处理的，请选“紧急”。"),
    )
    title = forms.CharField(
        label=_("一句话说明问题"),
        max_length=100,
        widget=forms.TextInput(attrs={"placeholder": _("如：5 幢北面外墙涂料起皮")}),
    )
    description = forms.CharField(
        label=_("详细情况"),
        max_length=services.MAX_TEXT,
        widget=forms.Textarea(
            attrs={"rows": 4, "placeholder": _("看到了什么、从什么时候开始、影响到谁")}
        ),
    )
    building = forms.CharField(label=_("楼栋"), max_length=20, required=False)
    unit = forms.CharField(label=_("单元"), max_length=20, required=False)
    location = forms.CharField(
        label=_("具体部位"),
        max_length=100,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": _("如：北面外墙、3 楼楼道")}),
    )
    households = forms.IntegerField(
        label=_("代表多少户居民"),
        max_value=10000,  # at least 1: the service's rule, in its words (filing_problems)
        required=False,
        widget=forms.NumberInput(attrs={"min": 1}),
        help_text=_("居民意见填写：有多少户居民这样反映。"),
    )
    area = forms.ChoiceField(
        label=_("涉及哪方面"),
        choices=[("", _("（请选择）")), *ScopeItem.Area.choices],
        required=False,
        help_text=_("居民意见填写：属于改造内容的哪个方面。"),
    )
    photos = PhotosField(
        defer=True,
        label=_("现场照片"),
        help_text=_("最多 9 张，可以分几次拍或选；大照片会先在手机上压缩再发送。"),
    )
    share_position = forms.BooleanField(
        label=_("附上照片的拍摄位置，方便部门找到现场"),
        required=False,
        help_text=_("只记录位置坐标，照片本身不保存位置信息。"),
    )
    voice = VoiceField(help_text=_("不方便打字，可以按住说话录一段（最长 60 秒）。"))
    # With the consent above, the phone sends the position it read from the photo before
    # shrinking it (or its own): the photos that arrive then no longer carry it.
    latitude = forms.DecimalField(
        min_value=-90, max_value=90, decimal_places=6, required=False, widget=forms.HiddenInput
    )
    longitude = forms.DecimalField(
        min_value=-180, max_value=180, decimal_places=6, required=False, widget=forms.HiddenInput
    )

    def __init__(self, *args, projects: QuerySet[Project], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = projects
        # Marked as required (a residents' opinion needs none: the service says so if asked).
        self.fields["photos"].required = True
        # A voice note may stand in for the written details.
        if self.files and self.files.get("voice"):
            self.fields["description"].required = False
        for name in ("building", "unit", "households"):
            self.fields[name].widget.attrs.setdefault("inputmode", "text")
        self.fields["households"].widget.attrs["inputmode"] = "numeric"

    def submit(self, reporter) -> Issue:
        """File the validated issue (the page, the JSON API and Open311 all come here). A refusal
        that names a field is shown beside it, and raised for the caller's status code."""
        try:
            return self._submit(reporter)
        except services.WorkflowError as error:
            if error.field in self.fields:
                self.add_error(error.field, error.message)
            raise

    def _submit(self, reporter) -> Issue:
        data = self.cleaned_data
        return services.submit_issue(
            reporter=reporter,
            project=data["project"],
            category=data["category"],
            urgency=data["urgency"],
            title=data["title"],
            description=data["description"],
            building=data["building"],
            unit=data["unit"],
            location=data["location"],
            households=data["households"],
            area=data["area"],
            photos=data["photos"],
            idempotency_key=data["token"],
            position_from_photos=data["share_position"],
            voice=data.get("voice"),
            **self._position(),
        )

    def _position(self) -> dict:
        """The position the phone sent, only with the person's consent and only as a pair."""
        data = self.cleaned_data
        latitude, longitude = data.get("latitude"), data.get("longitude")
        if not data.get("share_position") or latitude is None or longitude is None:
            return {}
        return {"latitude": latitude, "longitude": longitude}

    def clean_token(self) -> str:
        # A page from before the token existed, or a client that sends none: file it once
        # anyway rather than refuse what the person wrote.
        return self.cleaned_data.get("token") or secrets.token_urlsafe(24)

    def clean(self):
        """The rules that guard filing live in the service (``services.filing_problems``); the
        form shows every one that applies at once, beside its field, before anything is filed."""
        data = super().clean()
        problems = services.filing_problems(
            # Missing or not one of the choices: the rule's words, not Django's.
            category=data.get("category", ""),
            urgency=data.get("urgency", ""),
            title=data.get("title", ""),
            description=data.get("description", ""),
            building=data.get("building", ""),
            households=data.get("households"),
            photos_given=bool(data.get("photos")),
            voice_given=bool(data.get("voice")),
        )
        for problem in problems:
            name = problem.field
            if name not in self.fields:
                continue
            if name in self.errors:
                # Django's plain 「请填写这一项」 or 「选择一个有效的选项」 gives way to the rule's own
                # words; other errors (too long, not a number) stay.
                codes = {error.code for error in self.errors.as_data()[name]}
                if not codes <= REPLACED_BY_THE_RULE:
                    continue
                del self._errors[name]
            self.add_error(name, problem.message)
        return data


# --- the steps on the issue page ---------------------------------------------------------------


def _text_field(label, *, required: bool = True, rows: int = 3, placeholder: str = ""):
    return forms.CharField(
        label=label,
        required=required,
        max_length=services.MAX_TEXT,
        widget=forms.Textarea(attrs={"rows": rows, "placeholder": placeholder}),
    )


class StepForm(forms.Form):
    """A step's fields. ``run`` calls the one service function behind the step."""

    step = ""
    label = ""
    button_class = "btn-primary"

    def __init__(self, *args, issue: Issue, user, **kwargs):
        self.issue = issue
        self.user = user
        # Field names stay as DESIGN.md gives them (a mobile client posts them too); only the
        # element ids carry the step, since the page shows several of these forms at once.
        kwargs.setdefault("auto_id", f"{self.step}-%s")
        super().__init__(*args, **kwargs)

    # The 常用回复 written for this step (the issue page sets them for staff).
    response_templates: list = []

    def applies(self) -> bool:
        """Whether the page offers this form now (a step may be allowed yet pointless)."""
        return True

    def run(self):  # pragma: no cover - every subclass defines it
        raise NotImplementedError


class CommentForm(StepForm):
    step, label, button_class = "comment", _("留言"), "btn-outline-primary"
    text = _text_field(_("留言"), required=False, placeholder=_("补充情况、提问或回复"))
    voice = VoiceField()
    photos = PhotosField(label=_("照片（可选）"), defer=True)

    def clean(self):
        data = super().clean()
        if (
            not (data.get("text") or "").strip()
            and not data.get("voice")
            and "text" not in self.errors
        ):
            self.add_error("text", _("请填写留言内容，或按住说话录一段语音。"))
        return data

    def run(self):
        d = self.cleaned_data
        return services.comment_on_issue(
            self.issue, actor=self.user, text=d["text"], photos=d["photos"], voice=d.get("voice")
        )


class VerifyForm(StepForm):
    step, label, button_class = "verify", _("验收评价"), "btn-success"
    rating = forms.ChoiceField(
        label=_("您对处理结果"), choices=Issue.Rating.choices, widget=forms.RadioSelect
    )
    text = _text_field(
        _("说明"), required=False, placeholder=_("选择“不满意”时请写明哪里还不行，问题会退回重办")
    )

    def clean(self):
        data = super().clean()
        if data.get("rating") == Issue.Rating.UNSATISFIED and not data.get("text", "").strip():
            self.add_error("text", _("选择“不满意”时，请写明哪里还不满意。"))
        return data

    def run(self):
        d = self.cleaned_data
        return services.verify_issue(
            self.issue, actor=self.user, rating=d["rating"], text=d["text"]
        )


class ReasonForm(StepForm):
    """Steps whose field is ``reason`` (DESIGN.md); ``text`` is taken too, for other clients."""

    reason_label = _("原因")
    reason_required = True
    reason = _text_field(_("原因"))

    def __init__(self, data=None, *args, **kwargs):
        if data is not None and not data.get("reason") and data.get("text"):
            data = data.copy()
            data["reason"] = data["text"]
        super().__init__(data, *args, **kwargs)
        self.fields["reason"].label = self.reason_label
        self.fields["reason"].required = self.reason_required


class ReopenForm(ReasonForm):
    step, label, button_class = "reopen", _("退回重办"), "btn-outline-danger"
    reason_label = _("退回原因")

    def run(self):
        return services.reopen_issue(self.issue, actor=self.user, text=self.cleaned_data["reason"])


class WithdrawForm(ReasonForm):
    step, label, button_class = "withdraw", _("撤回问题"), "btn-outline-secondary"
    reason_label = _("撤回原因（可选）")
    reason_required = False

    def run(self):
        return services.withdraw_issue(
            self.issue, actor=self.user, text=self.cleaned_data["reason"]
        )


class RejectForm(ReasonForm):
    step, label, button_class = "reject", _("不予受理"), "btn-outline-danger"
    reason_label = _("不予受理的理由")

    def run(self):
        return services.reject_issue(self.issue, actor=self.user, text=self.cleaned_data["reason"])


class AcceptForm(StepForm):
    step, label = "accept", _("签收")
    deadline = forms.DateField(
        label=_("整改期限"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=_("不填则按类别和紧急程度给出默认期限。"),
    )
    text = _text_field(_("签收说明（可选）"), required=False, rows=2)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        default = services.default_rectify_deadline(self.issue, timezone.now())
        self.fields["deadline"].initial = timezone.localtime(default).date()

    def clean_deadline(self):
        deadline = self.cleaned_data.get("deadline")
        if deadline and deadline > timezone.localdate() + timedelta(days=366):
            raise forms.ValidationError(_("整改期限最长一年，请重新选择。"))
        return deadline

    def run(self):
        d = self.cleaned_data
        return services.accept_issue(
            self.issue, actor=self.user, deadline=d["deadline"], text=d["text"]
        )


class AnswerForm(StepForm):
    step, label = "answer", _("答复")
    text = _text_field(_("答复内容"), placeholder=_("不需要施工就能解决的问题，在这里直接答复"))

    def run(self):
        return services.answer_issue(self.issue, actor=self.user, text=self.cleaned_data["text"])


class DepartmentStepForm(StepForm):
    department = forms.ModelChoiceField(
        label=_("单位"), queryset=Department.objects.none(), empty_label=_("请选择")
    )
    kinds: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Only the departments of the issue's own county: another county's are not ours to send to.
        departments = Department.objects.filter(
            is_active=True, region=issue_county(self.issue)
        ).order_by("kind", "name")
        if self.kinds:
            departments = departments.filter(kind__in=self.kinds)
        self.fields["department"].queryset = departments.exclude(pk=self.issue.department_id)


class DispatchForm(DepartmentStepForm):
    step, label = "dispatch", _("派单整改")
    kinds = (Department.Kind.CONTRACTOR,)
    text = _text_field(_("派单说明（可选）"), required=False, rows=2)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["department"].label = _("施工单位")
        if self.issue.contractor_id:
            # Already dispatched: this is 改派, to one of the other contractors.
            self.label = _("改派施工单位")
            self.button_class = "btn-outline-primary"
            self.fields["department"].queryset = self.fields["department"].queryset.exclude(
                pk=self.issue.contractor_id
            )
        elif self.issue.project.contractor_id:
            self.fields["department"].initial = self.issue.project.contractor_id

    def applies(self) -> bool:
        return not self.issue.contractor_id or self.fields["department"].queryset.exists()

    def run(self):
        d = self.cleaned_data
        return services.dispatch_issue(
            self.issue, actor=self.user, department=d["department"], text=d["text"]
        )


class TransferForm(DepartmentStepForm):
    step, label, button_class = "transfer", _("转派"), "btn-outline-primary"
    # Issues are transferred between the departments that sign for them, never to a contractor
    # (that is dispatch).
    kinds = tuple(k for k in Department.Kind.values if k != Department.Kind.CONTRACTOR)
    reason = _text_field(_("转派原因"), rows=2)

    def __init__(self, data=None, *args, **kwargs):
        # DESIGN.md names the message ``text``; the page's field says what it is for.
        if data is not None and not data.get("reason") and data.get("text"):
            data = data.copy()
            data["reason"] = data["text"]
        super().__init__(data, *args, **kwargs)
        self.fields["department"].label = _("转给")

    def run(self):
        d = self.cleaned_data
        return services.transfer_issue(
            self.issue, actor=self.user, department=d["department"], text=d["reason"]
        )


class RectifyForm(StepForm):
    step, label, button_class = "rectify", _("报告整改完成"), "btn-success"
    text = _text_field(_("整改情况"), placeholder=_("做了什么、什么时候完成"))
    photos = PhotosField(
        label=_("整改后照片"), defer=True
    )  # at least one: the service says so beside it

    def run(self):
        d = self.cleaned_data
        return services.rectify_issue(
            self.issue, actor=self.user, text=d["text"], photos=d["photos"]
        )


class EscalateForm(StepForm):
    step, label, button_class = "escalate", _("督办"), "btn-outline-danger"
    text = _text_field(_("督办意见"), rows=2)
    # 上级督办 only: the day by which the county's bureau must answer.
    deadline = forms.DateField(
        label=_("要求住建局回复的日期"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not getattr(self.user, "is_oversight", False):
            del self.fields["deadline"]
        else:
            self.label = _("上级督办")
            self.fields["deadline"].required = True
            self.fields["deadline"].initial = timezone.localdate() + timedelta(days=3)

    def run(self):
        return services.escalate_issue(
            self.issue,
            actor=self.user,
            text=self.cleaned_data["text"],
            deadline=self.cleaned_data.get("deadline"),
        )


class ReplyForm(StepForm):
    """回复督办: the county's bureau answers the province's or the city's 督办."""

    step, label, button_class = "reply", _("回复上级督办"), "btn-danger"
    text = _text_field(_("回复内容"), rows=3, placeholder=_("办理进展、原因和下一步安排"))

    def run(self):
        return services.reply_to_oversight(
            self.issue, actor=self.user, text=self.cleaned_data["text"]
        )


class ExtendForm(StepForm):
    step, label, button_class = "extend", _("申请延期"), "btn-outline-secondary"
    until = forms.DateField(
        label=_("延期至"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    reason = _text_field(_("延期理由"), rows=2)

    def run(self):
        d = self.cleaned_data
        return services.request_extension(
            self.issue, actor=self.user, until=d["until"], text=d["reason"]
        )


class AppealForm(ReasonForm):
    step, label, button_class = "appeal", _("向住建局申诉"), "btn-outline-danger"
    reason_label = _("申诉理由")

    def run(self):
        return services.appeal_issue(self.issue, actor=self.user, text=self.cleaned_data["reason"])


class SupportForm(StepForm):
    """附议: one tap, no fields; the page shows it beside the status, not among the steps."""

    step, label, button_class = "support", _("附议"), "btn-outline-primary"

    @cached_property
    def already_supported(self) -> bool:
        """Whether this person supported the issue before (the page then says so instead)."""
        return self.issue.supports.filter(supporter=self.user.pk).exists()

    def run(self):
        return services.support_issue(self.issue, actor=self.user)


STEP_FORMS: dict[str, type[StepForm]] = {
    form.step: form
    for form in (
        AcceptForm,
        AnswerForm,
        DispatchForm,
        RectifyForm,
        TransferForm,
        RejectForm,
        EscalateForm,
        ReplyForm,
        VerifyForm,
        ReopenForm,
        WithdrawForm,
        ExtendForm,
        AppealForm,
        CommentForm,
        SupportForm,
    )
}
