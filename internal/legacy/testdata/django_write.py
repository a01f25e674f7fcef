# Run by TestDjangoRealDjango with Debian's /usr/bin/python3: Django's own
# database session backend creates django_session in schema argv[1] of the
# test PostgreSQL and saves sessions there; prints one JSON line.
import json, sys, django
from django.conf import settings
schema, secret = sys.argv[1], sys.argv[2]
settings.configure(
    SECRET_KEY=secret, USE_TZ=True,
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions"],
    DATABASES={"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "test", "USER": "postgres",
                           "HOST": "127.0.0.1", "PORT": "5432", "OPTIONS": {"options": "-c search_path=" + schema}}},
)
django.setup()
from django.core.management import call_command
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
call_command("migrate", "sessions", verbosity=0)
pw = make_password("pw-of-user-5")
u = User(id=5, username="bob", password=pw)
out = {"password_hash": pw}
for name, extra in (("plain", {}), ("compressed", {"history": ["/page/%d" % i for i in range(200)]})):
    s = SessionStore()
    s.update({"_auth_user_id": "5", "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
              "_auth_user_hash": u.get_session_auth_hash(), **extra})
    s.set_expiry(3600)
    s.save()
    out[name] = s.session_key
print(json.dumps(out))
