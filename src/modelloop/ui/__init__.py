"""The web console: plain HTML, ES modules and CSS over the control-plane API, served at ``/ui/``.

No build step and no Node.js: the files under ``static/`` are what the browser runs, shipped in
the package as package data. Every page reads ``/api/v1`` with the signed-in token (kept in the
tab's sessionStorage, sent as a Bearer header); the role decides what is shown, the API decides
what is allowed.
"""
