"""The example site's URLs, plus its media view (the site adds it only with DEBUG)."""

from example.urls import media
from example.urls import urlpatterns as site

urlpatterns = [*site, *media]
