"""HTTP endpoints (Django REST framework views) of tapestry_media."""
