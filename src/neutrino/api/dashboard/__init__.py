"""The dashboard served at ``/dashboard``: session, proxy, live events and its static assets (app.py)."""
