"""gunicorn settings for the web container: `gunicorn -c python:ckycportal.gunicorn_conf ...`."""

import os

bind = "0.0.0.0:8000"
workers = 3
timeout = 60
accesslog = "-"
# %(U)s is the path WITHOUT the query string: whatever someone types into a search (a PAN, say) never
# reaches the access log, which does not pass through Django's redacting log filter.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss'


def _forwarded_allow_ips() -> str:
    """The addresses or networks of the reverse proxy whose X-Forwarded-Proto (and Forwarded) headers gunicorn
    believes: anyone else could claim HTTPS. "*" is refused: name the proxy (a CIDR network will do)."""
    value = ",".join(
        part.strip() for part in os.environ.get("PORTAL_FORWARDED_ALLOW_IPS", "").split(",") if part.strip()
    )
    if "*" in value:
        raise ValueError("PORTAL_FORWARDED_ALLOW_IPS: name the reverse proxy's addresses or networks, not *")
    return value or "127.0.0.1,::1"


forwarded_allow_ips = _forwarded_allow_ips()
