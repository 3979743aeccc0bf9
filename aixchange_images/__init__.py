"""AIXchange Images: generate, review and publish solution card images, and account for their cost."""

__version__ = "0.1.0"
