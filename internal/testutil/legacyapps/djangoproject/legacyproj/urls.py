from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

urlpatterns = [
    # Django's own login view and form (CSRF, the session's _auth_user_* keys).
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("me", views.me),
    path("logout", views.logout_view),
    path("password", views.password),
]
