"""gunicorn settings: `gunicorn -c gunicorn.conf.py`, behind nginx.

In production: deploy/systemd/qunzhong-web.service, deploy/nginx/qunzhong.conf.
"""

import multiprocessing
import os

wsgi_app = "supervision.wsgi"  # a WSGI app named on the command line wins
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = 60  # photo uploads on a slow network
graceful_timeout = 30
max_requests = 2000  # recycle workers now and then
max_requests_jitter = 1000  # workers that started together do not all restart together
accesslog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
