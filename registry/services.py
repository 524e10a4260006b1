"""Following accepted records to the registry: the checking pass, its schedule and "check now"."""
