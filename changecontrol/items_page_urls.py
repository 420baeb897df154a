"""Pages of traceability: matrix, items, impact, baselines, import."""

from django.urls import path

from changecontrol import items_views as views

urlpatterns = [
    path("products/<slug:product>/trace-matrix", views.trace_matrix_page, name="trace-matrix"),
    path("products/<slug:product>/items", views.item_list_page, name="item-list"),
    path("products/<slug:product>/items/import", views.items_import_page, name="items-import"),
    path("products/<slug:product>/items/<str:identifier>", views.item_detail_page, name="item-detail"),
    path("products/<slug:product>/items/<str:identifier>/impact", views.item_impact_page, name="item-impact"),
    path(
        "products/<slug:product>/links/<int:link_id>/clear-suspect",
        views.link_clear_suspect_page,
        name="link-clear-suspect",
    ),
    path("products/<slug:product>/baselines", views.baseline_compare_page, name="baseline-compare"),
]
