"""Pages of traceability: matrix, items, impact, baselines, import."""

from django.urls import path

from traceability import views

urlpatterns = [
    path("products/<slug:product>/trace-matrix", views.trace_matrix_page, name="trace-matrix"),
    path("products/<slug:product>/items", views.item_list_page, name="item-list"),
    path("products/<slug:product>/items/import", views.items_import_page, name="items-import"),
    path("products/<slug:product>/items/new", views.item_create_page, name="item-create"),
    path("products/<slug:product>/items/<str:identifier>", views.item_detail_page, name="item-detail"),
    path("products/<slug:product>/items/<str:identifier>/edit", views.item_edit_page, name="item-edit"),
    path("products/<slug:product>/items/<str:identifier>/links", views.item_link_create_page, name="item-link-create"),
    path("products/<slug:product>/items/<str:identifier>/impact", views.item_impact_page, name="item-impact"),
    path(
        "products/<slug:product>/links/<int:link_id>/clear-suspect",
        views.link_clear_suspect_page,
        name="link-clear-suspect",
    ),
    path("products/<slug:product>/baselines", views.baseline_compare_page, name="baseline-compare"),
]
