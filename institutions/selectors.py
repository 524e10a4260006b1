"""Reads for the administration pages (branches and users of the admin's institution)."""

from __future__ import annotations

from django.db.models import Count, Prefetch, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404

from .models import Branch, Institution, User


def institution_for(user: User) -> Institution:
    """The user's institution: that of their first branch, else the portal's (one per deployment)."""
    branch = user.branches.select_related("institution").order_by("pk").first()
    institution = branch.institution if branch else Institution.objects.order_by("pk").first()
    if institution is None:
        raise Http404("No institution is configured yet.")
    return institution


def branch_admin_list(user: User) -> QuerySet[Branch]:
    """Every branch of the admin's institution, active first, with how many users hold it."""
    return (
        Branch.objects.filter(institution=institution_for(user))
        .annotate(user_count=Count("users"))
        .order_by("-is_active", "code")
    )


def branch_admin_get(user: User, pk: int) -> Branch:
    return get_object_or_404(Branch.objects.filter(institution=institution_for(user)), pk=pk)


def user_admin_list(user: User, *, role: str = "", query: str = "") -> QuerySet[User]:
    """Users of the admin's institution (and those without a branch), with their branches in one query."""
    institution = institution_for(user)
    users = (
        User.objects.filter(branches__institution=institution) | User.objects.filter(branches__isnull=True)
    ).distinct()
    if role:
        users = users.filter(role=role)
    if query:
        users = users.filter(username__icontains=query)
    return users.prefetch_related(Prefetch("branches", queryset=Branch.objects.order_by("code"))).order_by(
        "-is_active", "username"
    )


def user_admin_get(user: User, pk: int) -> User:
    return get_object_or_404(user_admin_list(user), pk=pk)
