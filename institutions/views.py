from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render

from .forms import InstitutionForm
from .models import Institution, Role
from .permissions import AuthedRequest, role_required
from .services import institution_configure


@role_required(Role.ADMIN)
def institution_settings(request: AuthedRequest) -> HttpResponse:
    institution = Institution.objects.order_by("pk").first()
    form = InstitutionForm(request.POST or None, instance=institution)
    if request.method == "POST" and form.is_valid():
        data = {name: form.cleaned_data[name] for name in InstitutionForm.Meta.fields}
        institution = institution_configure(
            actor=request.user, institution=institution, data=data, token=form.cleaned_data["new_token"]
        )
        messages.success(request, "Institution settings were saved.")
        return redirect("institutions:settings")
    return render(request, "institutions/institution_form.html", {"form": form, "institution": institution})
