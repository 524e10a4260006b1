"""What people read the portal through: the dashboard, the audit log and notifications."""
