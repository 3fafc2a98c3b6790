from django import forms
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from .models import Project, Subdistrict


class ProjectFilterForm(forms.Form):
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

    def filter(self, projects: QuerySet[Project]) -> QuerySet[Project]:
        data = self.cleaned_data
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
