"""URLs of the public host (no tenant): the platform admin, health, metrics and API docs. Every
other path answers 401 ``tenant_required``."""

from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt

from callcenter.admin_sites import public_admin_site
from callcenter.urls import common_urlpatterns
from callcenter.views import tenant_required

urlpatterns = [
    *common_urlpatterns,
    path("admin/", public_admin_site.urls),
    re_path(r"^.*$", csrf_exempt(tenant_required)),
]

handler404 = "callcenter.errors.handler404"
handler500 = "callcenter.errors.handler500"
handler400 = "callcenter.errors.handler400"
handler403 = "callcenter.errors.handler403"
