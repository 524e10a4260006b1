from django.apps import AppConfig


class UploadsConfig(AppConfig):
    name = "uploads"
    verbose_name = "KwikID uploads"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the start-up checks
