"""Prepares the legacy Django project for a test: `tssetup.py migrate` applies
the migrations, then (with or without it) creates the users given as a JSON
list [{"username", "password", "email"}] on stdin with Django's own
create_user (its default hasher), and prints {"username": "id"} as JSON.
One interpreter for both: Django's start-up is the slow part."""
import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "legacyproj.settings")
import django  # noqa: E402

django.setup()
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402

if "migrate" in sys.argv[1:]:
    call_command("migrate", verbosity=0, interactive=False)
users = json.load(sys.stdin)
User = get_user_model()
ids = {}
for u in users:
    user = User.objects.create_user(u["username"], u.get("email") or "", u["password"])
    ids[u["username"]] = str(user.pk)
print(json.dumps(ids))
