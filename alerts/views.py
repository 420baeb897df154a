"""Alert pages: a product's subscriptions (administrators change them) and its delivery log (members read it).

Products come in through `access.get_visible_or_404`: a product the person holds no role on is 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from alerts import services
from alerts.models import AlertSubscription, Delivery, DeliveryAttempt, EventKind
from changecontrol.access import product_for
from changecontrol.models import Product, Role
from changecontrol.roles import has_role
from common.errors import DomainError

PAGE_SIZE = 50


def _may_configure(user, product: Product) -> bool:
    # Webhook targets receive product facts and are called from inside the network: administrators only.
    return has_role(user, product, Role.ADMIN)


def _settings_page(request, product: Product, *, new_secret: str = "", new_subscription=None, status: int = 200):
    subscriptions = AlertSubscription.objects.filter(product=product).select_related("created_by")
    return render(
        request,
        "alerts/settings.html",
        {
            "product": product,
            "subscriptions": subscriptions,
            "may_configure": _may_configure(request.user, product),
            "event_kinds": EventKind.choices,
            "channels": AlertSubscription.Channel.choices,
            "body_formats": AlertSubscription.BodyFormat.choices,
            "new_secret": new_secret,
            "new_subscription": new_subscription,
            "form": request.POST if request.method == "POST" else {},
        },
        status=status,
    )


@login_required
def alert_settings(request, product: str):
    product = product_for(request, product)
    if request.method != "POST":
        return _settings_page(request, product)
    if not _may_configure(request.user, product):
        raise PermissionDenied(f"only an administrator of {product.key} can change where its alerts go")
    try:
        subscription, secret = services.alert_subscription_create(
            actor=request.user,
            product=product,
            event_kind=request.POST.get("event_kind", ""),
            channel=request.POST.get("channel", ""),
            target=request.POST.get("target", ""),
            body_format=request.POST.get("body_format", "custody") or "custody",
        )
    except DomainError as error:
        messages.error(request, f"Not subscribed: {error.detail}.")
        return _settings_page(request, product, status=400)
    messages.success(request, f"Subscribed {subscription.target} to {subscription.get_event_kind_display()} alerts.")
    # Rendered, not redirected: the secret is shown on this one response and never again.
    return _settings_page(request, product, new_secret=secret, new_subscription=subscription)


@login_required
@require_POST
def alert_subscription_toggle(request, product: str, subscription_id: int):
    product = product_for(request, product)
    subscription = get_object_or_404(AlertSubscription, product=product, pk=subscription_id)
    if not _may_configure(request.user, product):
        raise PermissionDenied(f"only an administrator of {product.key} can change where its alerts go")
    services.alert_subscription_set_active(
        actor=request.user, subscription=subscription, active=not subscription.active
    )
    messages.success(request, f"{subscription.target} {'paused' if subscription.active else 'resumed'}.")
    return redirect("alert-settings", product=product.key)


@login_required
def delivery_log(request, product: str):
    product = product_for(request, product)
    deliveries = (
        Delivery.objects.filter(alert__product=product)
        .select_related("alert", "subscription")
        .prefetch_related(Prefetch("attempt_log", queryset=DeliveryAttempt.objects.order_by("at", "id")))
        .order_by("-created_at", "-id")
    )
    state = request.GET.get("state", "")
    if state in Delivery.State.values:
        deliveries = deliveries.filter(state=state)
    page = Paginator(deliveries, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "alerts/delivery_log.html",
        {"product": product, "page": page, "states": Delivery.State.choices, "state": state},
    )
