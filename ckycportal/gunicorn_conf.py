"""gunicorn settings for the web container: `gunicorn -c python:ckycportal.gunicorn_conf ...`."""

bind = "0.0.0.0:8000"
workers = 3
timeout = 60
accesslog = "-"
# %(U)s is the path WITHOUT the query string: whatever someone types into a search (a PAN, say) never
# reaches the access log, which does not pass through Django's redacting log filter.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss'
forwarded_allow_ips = "*"  # behind the TLS proxy in front of the container
