"""gunicorn settings, read from the working directory: `gunicorn wsgi:app`."""

import multiprocessing
import os

bind = os.environ.get("IDP_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("IDP_WORKERS", multiprocessing.cpu_count() * 2 + 1))
accesslog = "-"
# The path without its query string and no Referer: both may carry codes or tokens.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss "%(a)s"'
forwarded_allow_ips = os.environ.get("IDP_FORWARDED_ALLOW_IPS", "127.0.0.1")
