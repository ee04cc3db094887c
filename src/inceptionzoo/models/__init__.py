"""Model families; importing this package registers every model."""
from . import inception_mnist  # noqa: F401
