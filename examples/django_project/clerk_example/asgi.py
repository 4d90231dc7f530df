"""ASGI entry point: ``uvicorn --app-dir examples/django_project clerk_example.asgi:application``
(the middleware then runs in async mode)."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clerk_example.settings")

application = get_asgi_application()
