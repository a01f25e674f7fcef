"""The few views tokenshift's tests need besides Django's LoginView."""
import json

from django.contrib.auth import get_user_model, logout, update_session_auth_hash
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST


@require_GET
def me(request):
    """Who the session belongs to, from Django's own session and auth."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": "unauthenticated"}, status=401)
    return JsonResponse({"user_id": str(request.user.pk), "username": request.user.get_username()})


@csrf_exempt
@require_POST
def logout_view(request):
    """django.contrib.auth.logout: flushes the session (its row is deleted)."""
    logout(request)
    return HttpResponse(status=204)


@csrf_exempt
@require_POST
def password(request):
    """Sets a new password with set_password + save, as a password-change or
    reset form does. JSON {"password", "username"?, "keep_session"?}: without
    username, the session's user. keep_session calls update_session_auth_hash
    (the changing session stays logged in, with a new key); every other
    session of the user ends, by Django's own _auth_user_hash rule."""
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return JsonResponse({"error": "bad_json"}, status=400)
    if not isinstance(body, dict) or not isinstance(body.get("password"), str) or not body["password"]:
        return JsonResponse({"error": "password required"}, status=400)
    username = body.get("username")
    if username:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            return JsonResponse({"error": "no such user"}, status=404)
    elif request.user.is_authenticated:
        user = request.user
    else:
        return JsonResponse({"error": "unauthenticated"}, status=401)
    user.set_password(body["password"])
    user.save()
    if body.get("keep_session"):
        if not request.user.is_authenticated or request.user.pk != user.pk:
            return JsonResponse({"error": "keep_session needs the user's own session"}, status=400)
        update_session_auth_hash(request, user)
    return JsonResponse({"user_id": str(user.pk)})
