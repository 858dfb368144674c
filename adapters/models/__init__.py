"""The model artifact store (the model registry): :class:`FilesystemModelStore`."""

from adapters.models.filesystem import FilesystemModelStore

__all__ = ["FilesystemModelStore"]
