from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from trialdesk.edc.accounts.models import User
from trialdesk.edc.accounts.service import create_user
from trialdesk.edc.audit import trail
from trialdesk.edc.permissions import ROLES
from trialdesk.edc.web import refuse, requires
from trialdesk.trial.errors import ConductError


@login_required
def password_change(request: HttpRequest) -> HttpResponse:
    form = PasswordChangeForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        User.objects.filter(pk=user.pk).update(must_change_password=False)
        update_session_auth_hash(request, user)
        trail.append(user, "password_change", model="accounts.User", object_id=str(user.pk), form="user")
        messages.success(request, "Your password is changed.")
        return redirect("dashboard")
    forced = getattr(request.user, "must_change_password", False)
    return render(request, "edc/form.html", {"form": form, "title": "Change your password",
                                             "lead": "An administrator created your account: choose your own password before you go on."
                                             if forced else "", "submit": "Change password"})


class NewUserForm(forms.Form):
    username = forms.CharField(max_length=150)
    first_name = forms.CharField(max_length=150)
    last_name = forms.CharField(max_length=150)
    email = forms.EmailField(required=False)
    role = forms.ChoiceField(choices=list(ROLES.items()))
    password = forms.CharField(widget=forms.PasswordInput, help_text="a temporary password; the user must change it at first login")


@requires("manage_users")
def users(request: HttpRequest) -> HttpResponse:
    form = NewUserForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            create_user(d["username"], d["role"], d["password"], first_name=d["first_name"], last_name=d["last_name"],
                        email=d["email"], by=request.user)
        except ConductError as e:
            refuse(form, e)
        else:
            messages.success(request, f"Account {d['username']} created; they must change the password at first login.")
            return redirect("users")
    return render(request, "edc/users.html", {"form": form, "users": User.objects.order_by("username")})
