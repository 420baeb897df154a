from django.conf import settings


def custody(request):
    return {"custody_version": settings.CUSTODY_VERSION}
