"""Log-in, sessions, two-factor authentication, and the demo users that make run starts with."""
