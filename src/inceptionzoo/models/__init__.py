"""Model families; importing this package registers every model."""
from . import googlenet, inception_mnist, inception_v3, inception_v4  # noqa: F401
