#!/usr/bin/env python3
"""manage.py of the legacy Django project of tokenshift's issue 12 tests."""
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "legacyproj.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
