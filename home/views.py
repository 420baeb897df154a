"""The home page: what needs this person today, shaped by their roles, with the 90-day charts."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from home import charts, dashboard


@login_required
def home(request):
    user = request.user
    panels = dashboard.dashboard_for(user)
    my_products = dashboard.my_products(user)
    context = {
        "dashboard": panels,
        "my_products": my_products,
        "my_role_names": sorted({role for row in my_products for role in row["roles"]}),
        "charts": charts.dashboard_charts(product_ids=panels.product_ids) if panels.product_ids else [],
    }
    return render(request, "home/dashboard.html", context)
