"""发起意愿征询: the guided form the bureau or a subdistrict office fills in to open a consultation,
and the one step that saves it.

The four questions of the article (改不改、改什么、怎么改、如何管) are the form's four parts: whether to
renovate at all; one proposed line of work per content area, with the ways to do it residents
choose between; and how the community is managed afterwards. The adoption rule is said in words
with two plain choices (「参与户数达到 2/3 以上，且同意户数达到参与户数的 3/4 以上」), stored as the
model's fractions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

from django import forms
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .access import consultation_projects
from .models import Consultation, ConsultationItem, Project, ScopeItem
from .services import WorkflowError

# The shares a rule may ask for, as people say them. The default follows the Civil Code
# (民法典 art. 278) for rebuilding common parts: two thirds take part, three quarters of them agree.
SHARES = [("1/2", "1/2"), ("2/3", "2/3"), ("3/4", "3/4")]
DEFAULT_PARTICIPATION = "2/3"
DEFAULT_APPROVAL = "3/4"

MANAGEMENT_WAYS = [
    ("物业服务企业管理", gettext_lazy("物业服务企业管理")),
    ("业主委员会管理", gettext_lazy("业主委员会管理")),
    ("居民自治管理", gettext_lazy("居民自治管理")),
]

# What each area's sentence and options might say: examples from the article, shown as hints.
AREA_HINTS = {
    ScopeItem.Area.BUILDING: (gettext_lazy("如：外立面整治、屋面防水"), "真石漆\n普通涂料"),
    ScopeItem.Area.ROADS: (gettext_lazy("如：路面修复、增设停车位"), "沥青路面\n透水砖"),
    ScopeItem.Area.PIPES: (gettext_lazy("如：雨污分流、强弱电线路整理"), ""),
    ScopeItem.Area.LANDSCAPE: (gettext_lazy("如：补种绿化、建口袋公园"), ""),
    ScopeItem.Area.CARE: (gettext_lazy("如：设老年食堂、托育点"), ""),
    ScopeItem.Area.GOVERNANCE: (gettext_lazy("如：设居民议事室、门禁监控"), ""),
}


def share_words(numerator: int, denominator: int) -> str:
    return f"{numerator}/{denominator}"


def rule_sentence(participation: str, approval: str) -> str:
    return _("参与户数达到 %(p)s 以上，且同意户数达到参与户数的 %(a)s 以上，该事项通过。") % {
        "p": participation,
        "a": approval,
    }


class ShareField(forms.ChoiceField):
    """A share (「2/3」) chosen from a short list; cleaned to a Fraction."""

    def __init__(self, *, extra: str | None = None, **kwargs):
        choices = list(SHARES)
        if extra and extra not in dict(choices):
            choices.append((extra, extra))  # a rule set earlier in another way stays as it is
        super().__init__(choices=choices, **kwargs)

    def clean(self, value):
        value = super().clean(value)
        numerator, denominator = (int(part) for part in value.split("/"))
        return Fraction(numerator, denominator)


@dataclass
class ItemDraft:
    kind: str
    text: str
    area: str = ""
    options: str = ""
    budget: Decimal | None = None


def _options(value: str, field: str) -> str:
    lines = [line.strip() for line in value.splitlines() if line.strip()]
    if any(len(line) > 100 for line in lines):
        raise forms.ValidationError(_("每个做法不超过 100 个字。"), code=field)
    if len(set(lines)) != len(lines):
        raise forms.ValidationError(_("有两行写的是同一种做法，请删去一行。"), code=field)
    return "\n".join(lines)


class ConsultationStartForm(forms.Form):
    """发起意愿征询. ``user`` limits the projects to those they may consult residents on."""

    project = forms.ModelChoiceField(
        label=gettext_lazy("项目"),
        queryset=Project.objects.none(),
        empty_label=gettext_lazy("请选择项目"),
        error_messages={"required": gettext_lazy("请选择要征询的项目。")},
    )
    title = forms.CharField(
        label=gettext_lazy("标题"),
        max_length=100,
        required=False,
        help_text=gettext_lazy("不填就用「项目名称 + 改造意愿征询」。"),
    )
    opens_on = forms.DateField(
        label=gettext_lazy("开始日期"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    closes_on = forms.DateField(
        label=gettext_lazy("截止日期"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    participation = ShareField(label=gettext_lazy("参与户数至少占"), initial=DEFAULT_PARTICIPATION)
    approval = ShareField(label=gettext_lazy("同意户数至少占参与户数的"), initial=DEFAULT_APPROVAL)

    ask_renovate = forms.BooleanField(
        label=gettext_lazy("请居民表态：同不同意改造"), required=False, initial=True
    )
    renovate_text = forms.CharField(
        label=gettext_lazy("问题"),
        max_length=200,
        required=False,
        initial=gettext_lazy("是否同意对本小区进行改造？"),
    )

    ask_management = forms.BooleanField(
        label=gettext_lazy("请居民选择：改造后怎么管"), required=False, initial=True
    )
    management_text = forms.CharField(
        label=gettext_lazy("问题"),
        max_length=200,
        required=False,
        initial=gettext_lazy("改造后由谁来管理小区？"),
    )
    management_ways = forms.MultipleChoiceField(
        label=gettext_lazy("可选的管理方式"),
        choices=MANAGEMENT_WAYS,
        required=False,
        initial=[value for value, _label in MANAGEMENT_WAYS],
        widget=forms.CheckboxSelectMultiple,
    )
    management_other = forms.CharField(
        label=gettext_lazy("其他方式"),
        max_length=100,
        required=False,
        help_text=gettext_lazy("可不填，如：社区托管"),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["project"].queryset = consultation_projects(user).order_by("name")
        for name in ("participation", "approval"):  # read inside the sentence of the rule
            self.fields[name].widget.attrs["aria-label"] = self.fields[name].label
        today = timezone.localdate()
        self.fields["opens_on"].initial = today
        self.fields["closes_on"].initial = today + timedelta(days=14)
        for area in ScopeItem.Area.values:
            sentence, options = AREA_HINTS.get(area, ("", ""))
            self.fields[f"{area}_text"] = forms.CharField(
                label=gettext_lazy("拟改造的内容"),
                max_length=200,
                required=False,
                widget=forms.TextInput(attrs={"placeholder": sentence}),
            )
            self.fields[f"{area}_options"] = forms.CharField(
                label=gettext_lazy("可选做法（每行一种，可不填）"),
                required=False,
                widget=forms.Textarea(attrs={"rows": 2, "placeholder": options}),
            )
            self.fields[f"{area}_budget"] = forms.DecimalField(
                label=gettext_lazy("估算投资（万元，可不填）"),
                max_digits=10,
                decimal_places=2,
                min_value=Decimal("0"),
                required=False,
                error_messages={
                    "invalid": gettext_lazy("请填写数字，如 120.5。"),
                    "max_decimal_places": gettext_lazy("最多两位小数。"),
                    "max_digits": gettext_lazy("这个数字太大了。"),
                    "max_whole_digits": gettext_lazy("这个数字太大了。"),
                    "min_value": gettext_lazy("投资不能是负数。"),
                },
            )

    # --- what the template lays out ---------------------------------------------------------

    def area_rows(self) -> list[dict]:
        return [
            {
                "area": area,
                "label": label,
                "text": self[f"{area}_text"],
                "options": self[f"{area}_options"],
                "budget": self[f"{area}_budget"],
            }
            for area, label in ScopeItem.Area.choices
        ]

    # --- checks -----------------------------------------------------------------------------

    def clean(self):
        data = super().clean()
        opens_on, closes_on = data.get("opens_on"), data.get("closes_on")
        if opens_on and closes_on:
            if closes_on < opens_on:
                self.add_error("closes_on", _("截止日期不能早于开始日期。"))
            elif closes_on < timezone.localdate():
                self.add_error("closes_on", _("截止日期已经过去了，请选今天或以后的日期。"))
        for area in ScopeItem.Area.values:
            text = data.get(f"{area}_text", "").strip()
            options = data.get(f"{area}_options", "")
            if not text and (options.strip() or data.get(f"{area}_budget") is not None):
                self.add_error(f"{area}_text", _("请写明这一方面拟改造的内容。"))
            try:
                data[f"{area}_options"] = _options(options, f"{area}_options")
            except forms.ValidationError as error:
                self.add_error(f"{area}_options", error)
        if data.get("ask_renovate") and not data.get("renovate_text", "").strip():
            self.add_error("renovate_text", _("请写明要居民表态的问题。"))
        if data.get("ask_management") and not data.get("management_text", "").strip():
            self.add_error("management_text", _("请写明要居民选择的问题。"))
        if not self.errors and not self.items():
            raise forms.ValidationError(
                _("请至少征询一项：同不同意改造、一个方面的改造内容，或改造后怎么管。")
            )
        return data

    def items(self) -> list[ItemDraft]:
        """The questions, in the order residents read them."""
        data = self.cleaned_data
        items = []
        if data.get("ask_renovate"):
            items.append(ItemDraft(ConsultationItem.Kind.RENOVATE, data["renovate_text"].strip()))
        for area in ScopeItem.Area.values:
            text = data.get(f"{area}_text", "").strip()
            if text:
                items.append(
                    ItemDraft(
                        ConsultationItem.Kind.SCOPE,
                        text,
                        area=area,
                        options=data.get(f"{area}_options", ""),
                        budget=data.get(f"{area}_budget"),
                    )
                )
        if data.get("ask_management"):
            ways = list(data.get("management_ways") or [])
            other = data.get("management_other", "").strip()
            if other and other not in ways:
                ways.append(other)
            items.append(
                ItemDraft(
                    ConsultationItem.Kind.MANAGEMENT,
                    data["management_text"].strip(),
                    options="\n".join(ways),
                )
            )
        return items

    def title_for(self, project: Project) -> str:
        return self.cleaned_data.get("title", "").strip() or default_title(project)


def default_title(project: Project) -> str:
    return (_("%(project)s 改造意愿征询") % {"project": project.name})[:100]


def open_consultation(
    *,
    actor,
    project: Project,
    title: str,
    opens_on: date,
    closes_on: date,
    participation: Fraction,
    approval: Fraction,
    items: list[ItemDraft],
) -> Consultation:
    """Opens a consultation with its questions, in one transaction. Only the bureau and the
    subdistrict office of the project may (the form offers no other project; this says so
    again for anybody who posts one)."""
    if not consultation_projects(actor).filter(pk=project.pk).exists():
        raise WorkflowError(_("您不能为这个项目发起意愿征询。"), status_code=403, field="project")
    if not items:
        raise WorkflowError(_("请至少征询一项。"), status_code=400)
    with transaction.atomic():
        consultation = Consultation.objects.create(
            project=project,
            title=title,
            opens_on=opens_on,
            closes_on=closes_on,
            participation_numerator=participation.numerator,
            participation_denominator=participation.denominator,
            approval_numerator=approval.numerator,
            approval_denominator=approval.denominator,
            created_by=actor,
        )
        ConsultationItem.objects.bulk_create(
            ConsultationItem(
                consultation=consultation,
                kind=item.kind,
                area=item.area,
                text=item.text[:200],
                options=item.options,
                budget=item.budget,
                position=position,
            )
            for position, item in enumerate(items)
        )
    return consultation


class ConsultationChangeForm(forms.ModelForm):
    """The change page: the same rule in words and plain choices, not four fraction fields."""

    participation = ShareField(label=gettext_lazy("参与户数至少占"))
    approval = ShareField(label=gettext_lazy("同意户数至少占参与户数的"))

    class Meta:
        model = Consultation
        fields = ["project", "title", "opens_on", "closes_on"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        consultation = self.instance
        participation = share_words(
            consultation.participation_numerator, consultation.participation_denominator
        )
        approval = share_words(consultation.approval_numerator, consultation.approval_denominator)
        if consultation.pk is None:
            participation, approval = DEFAULT_PARTICIPATION, DEFAULT_APPROVAL
        self.fields["participation"] = ShareField(
            label=gettext_lazy("参与户数至少占"), extra=participation, initial=participation
        )
        self.fields["approval"] = ShareField(
            label=gettext_lazy("同意户数至少占参与户数的"), extra=approval, initial=approval
        )
        self.fields["participation"].help_text = rule_sentence(participation, approval)

    def clean(self):
        data = super().clean()
        opens_on, closes_on = data.get("opens_on"), data.get("closes_on")
        if opens_on and closes_on and closes_on < opens_on:
            self.add_error("closes_on", _("截止日期不能早于开始日期。"))
        for name in ("participation", "approval"):
            share = data.get(name)
            if share is not None:
                setattr(self.instance, f"{name}_numerator", share.numerator)
                setattr(self.instance, f"{name}_denominator", share.denominator)
        return data
