from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from thumbnailer import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path(settings.MEDIA_URL.strip("/") + "/<path:path>", views.media, name="media"),
    path("", include("thumbnailer.urls")),
]

handler400 = "thumbnailer.views.error_400"
handler404 = "thumbnailer.views.error_404"
handler500 = "thumbnailer.views.error_500"
