"""WSGI entry point for gunicorn: ``app.wsgi:app`` (gunicorn.conf.py sets it as ``wsgi_app``)."""

from app import create_app

app = create_app()
