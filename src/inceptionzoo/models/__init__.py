"""Model families; importing this package registers every model."""
from . import googlenet, inception_mnist  # noqa: F401
