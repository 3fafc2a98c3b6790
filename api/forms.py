from django import forms
from django.utils.translation import gettext_lazy as _


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        label=_("用途"),
        max_length=60,
        help_text=_("写明这把密钥给谁用，如“监督小程序”“我的手机”，以后吊销时好认。"),
        widget=forms.TextInput(attrs={"placeholder": _("如：监督小程序")}),
    )
