# Generates django_fixtures.json with Debian's real Django (run with
# /usr/bin/python3 gen_django.py). Not run by the tests: its output is
# committed, so the tests need no Python.
import json, django
from django.conf import settings
settings.configure(SECRET_KEY="django-insecure-fixture-key-0123456789abcdef", USE_TZ=True,
                   INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions"],
                   PASSWORD_HASHERS=["django.contrib.auth.hashers.PBKDF2PasswordHasher"],
                   DATABASES={})
django.setup()
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import User
from django.test.utils import override_settings

s = SessionStore()
pw = make_password("correct horse", salt="fixturesalt1234567890")
u = User(id=42, username="alice", password=pw)
data = {"_auth_user_id": "42", "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
        "_auth_user_hash": u.get_session_auth_hash()}
big = dict(data, cart=["item-%d" % i for i in range(50)])  # compressible: '.'-prefixed zlib
out = {
    "django_version": django.get_version(),
    "secret_key": settings.SECRET_KEY,
    "password_hash": pw,
    "auth_hash": u.get_session_auth_hash(),
    "session_data": s.encode(data),
    "session_data_compressed": s.encode(big),
    "session_data_legacy": s._legacy_encode(data),
    "session_data_anonymous": s.encode({"cart": [1, 2]}),
}
with override_settings(DEFAULT_HASHING_ALGORITHM="sha1"):
    out["auth_hash_sha1"] = u.get_session_auth_hash()
assert s.decode(out["session_data_compressed"]) == big
assert out["session_data_compressed"].startswith(".")
print(json.dumps(out, indent=1))
