"""Django settings for the SensorThings test peer: the smallest project that serves
django-ogc-sensorthings' v1.1 API from a throwaway SQLite file on the loopback interface.

Everything variable comes from the environment that `run.sh` sets, so one committed module
serves any port and any scratch folder.
"""

import os
from uuid import UUID

PORT = os.environ["STA_PORT"]
DATA_DIR = os.environ["STA_DATA_DIR"]

# The peer only ever listens on 127.0.0.1 for tests; the key guards nothing.
SECRET_KEY = "cityops-sensorthings-test-peer"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "sensorthings.versions.v1_1",
    "sensorthings.versions.v1_1.backends.django",
]

MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "cityops_sta.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(DATA_DIR, "sta.sqlite3"),
    }
}
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The Django backend stores UUIDs (it answers 500 on writes with integer ids), quoted in paths
# as `Datastreams('...')`; the service URL is what the server puts into `@iot.selfLink` and
# `@iot.nextLink`.
SENSORTHINGS_V1_1_SERVICE_URL = f"http://127.0.0.1:{PORT}/sensorthings"
SENSORTHINGS_V1_1_BACKEND_ADAPTER = (
    "sensorthings.versions.v1_1.backends.django.adapter.DjangoBackendAdapter"
)
SENSORTHINGS_V1_1_ID_TYPE = UUID
SENSORTHINGS_V1_1_ID_DELIMITER = "'"
SENSORTHINGS_V1_1_DOCS_ENABLED = False

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
