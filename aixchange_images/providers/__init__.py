"""Image providers: one module each, a `Provider` subclass in each (see `base`)."""
