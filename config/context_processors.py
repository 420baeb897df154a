"""What every page's template may read about Custody itself."""

from django.conf import settings


def custody(request):
    return {"custody_version": settings.CUSTODY_VERSION}
